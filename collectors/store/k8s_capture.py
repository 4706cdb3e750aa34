"""A pod's bundle sealed into the store instead of a local file (``-o s3://…``).

One pod (``exuvia capture k8s://NS/POD -o s3://BUCKET/PREFIX/NAME.exv``,
:func:`capture_pod_to_store`) or each pod of a fleet (collectors/store/fleet_sink.py).
The agent's stream is received into a local spool as for any k8s capture (it is
checked against the agent's checkpoints before a byte of the final bundle is
written); the final bundle is then assembled straight into a multipart upload
of ``<key>.partial`` (no local copy of it) and sealed by the seal step every
store capture shares (collectors/store/seal.py): copied by the store to
``<key>`` or ``<key>.incomplete`` with the retention and ``If-None-Match: *``,
the ``.partial`` removed, the custody log put as ``<final key>.custody.jsonl``.

The upload is created before the pod is asked anything (so a bucket that is
not writable is refused before an agent is added). One pod on the main thread
(``signals=True``): the first SIGINT/SIGTERM while the agent streams cuts the
stream, and what came is sealed ``.incomplete`` (``interrupted (SIGINT): …``),
as a fleet does; one after the stream is noted and the seal goes on; one before
the stream, or a second one, interrupts as before (nothing stored: the upload
is aborted).
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from collectors.capture import CaptureOptions, CaptureResult, Progress
from collectors.k8s.assemble import Outcome
from collectors.k8s.capture import K8sCapture, K8sOptions
from collectors.k8s.client import KubeClient
from collectors.k8s.inject import Injection
from collectors.k8s.stream import StreamResult, cut
from collectors.store.capture import StoreCaptureResult, kept_locally, preflight, stderr_retry
from collectors.store.client import Store, StoreError
from collectors.store.fallback import LocalParts
from collectors.store.lock import LockSpec
from collectors.store.seal import (
    BUNDLE_TYPE,
    CUSTODY_SUFFIX,
    INCOMPLETE_SUFFIX,
    PARTIAL_SUFFIX,
    Digest,
    Sealed,
    object_metadata,
    seal_staged,
)
from collectors.store.upload import MultipartWriter
from collectors.store.uri import S3Url

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class K8sStoreCapture(K8sCapture):
    """``opts.output`` is a local path used only for the agent's spool (its
    ``.agent-stream`` sibling); the bundle goes to ``url``. The caller has run
    the preflight (bucket, lock, keys not taken) before any pod was touched."""

    def __init__(
        self,
        uri: str,
        opts: CaptureOptions,
        k8s: K8sOptions,
        *,
        store: Store,
        url: S3Url,
        lock: LockSpec,
        progress: Progress | None = None,
        client: KubeClient | None = None,
        signals: bool = False,
        fallback: LocalParts | None = None,
        keep_split: bool = False,
    ) -> None:
        """``fallback``: where the parts go when the store stops answering mid-upload
        (a fleet's journal, collectors/store/fallback.py); None: the capture fails.
        ``keep_split``: a bundle sealed while the store is still gone, kept in two
        places (the upload, the local parts), is a result (``split`` says where),
        to be finished by collectors/store/journal.py; else it is an error."""
        super().__init__(uri, opts, k8s, progress=progress, client=client)
        self.store = store
        self.url = url
        self.lock = lock
        self.until = lock.until()
        self.retention = lock.describe(self.until)
        self.meta = object_metadata({"exuvia-target": uri[:512]})
        self.signals = signals
        self.sealed: Sealed | None = None
        #: the signal that cut the stream (``signals=True``), if one did
        self.interrupted = ""
        self._writer: MultipartWriter | None = None
        self._channel: Any = None
        self._streamed = False
        self.fallback = fallback
        #: the upload of ``.partial`` was created (the store answered before the pod was asked)
        self.upload_started = False
        self.keep_split = keep_split
        #: where the sealed bundle is when the store was gone at the seal (``keep_split``)
        self.split = ""

    def _retry(self, msg: str) -> None:
        self.custody.record("store.retry", message=msg)
        stderr_retry(msg)

    def _degraded(self, msg: str) -> None:
        where = str(self.fallback.path) if self.fallback is not None else ""
        self.custody.record("store.fallback", message=msg, directory=where)
        stderr_retry(msg)

    def run(self) -> CaptureResult:
        staging = self.url.sibling(PARTIAL_SUFFIX)
        if self.fallback is not None:
            self.fallback.refuse_existing()
        # first: a store that does not take the upload is refused before the pod is touched
        self._writer = MultipartWriter(
            self.store, staging.bucket, staging.key, on_retry=self._retry, track_sha256=False,
            create_args={"Metadata": self.meta, "ContentType": BUNDLE_TYPE},
            fallback=self.fallback, on_fallback=self._degraded,
        )  # fmt: skip
        self.upload_started = True
        self.custody.record("store.upload.started", url=str(self.url),
                            endpoint=self.store.endpoint, **self.retention)  # fmt: skip
        old: dict[int, Any] = {}
        if self.signals and threading.current_thread() is threading.main_thread():
            old = {s: signal.signal(s, self._on_signal) for s in _SIGNALS}
        try:
            return super().run()
        except BaseException:
            self._writer.abort()  # never completed: no object (a completed one is kept)
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.interrupted or (self._channel is None and not self._streamed):
            raise KeyboardInterrupt  # before the stream, or a second one: nothing stored
        self.interrupted = name
        if self._channel is not None:
            cut(self._channel)  # receive() returns what came; it is sealed incomplete
        else:  # the stream is whole: the bundle is sealed as it is
            sys.stderr.write(f"exuvia: {name}: the stream is whole; sealing the bundle "
                             "(again to abandon it)\n")  # fmt: skip

    def _stream(self, kc: KubeClient, inj: Injection, argv: list[str], spool: Path) -> StreamResult:
        result = super()._stream(_Watched(kc, self), inj, argv, spool)  # type: ignore[arg-type]
        self._channel = None
        self._streamed = True
        if self.interrupted and result.broken:
            result.broken = f"interrupted ({self.interrupted}): {result.broken}"
            self.custody.record("capture.interrupted", signal=self.interrupted)
        return result

    def _open_output(self, partial: Path) -> BinaryIO:
        """The upload created in run(), before the pod was touched."""
        return self._writer  # type: ignore[return-value]

    def _close_output(self, raw: BinaryIO) -> None:
        """Completed in _seal (after the assembly said complete or not)."""

    def _seal(self, out: Path, partial: Path, outcome: Outcome) -> tuple[Path, Path]:
        assert self._writer is not None
        digest = Digest(outcome.manifest_sha256, outcome.file_sha256, outcome.file_bytes,
                        outcome.complete)  # fmt: skip
        try:
            staged = self._writer.complete()
        except StoreError as err:  # the store still gone when the kept parts go up
            local = self.fallback
            if local is None or not local.used:
                raise
            seal = (digest.manifest_sha256, digest.file_sha256, digest.file_bytes)
            kept = kept_locally(self.custody, self._writer, local,
                                self.url.sibling(PARTIAL_SUFFIX), err, seal,
                                complete=digest.complete)  # fmt: skip
            if not self.keep_split:
                raise kept from None
            self.split = str(kept)
            final = self.url if digest.complete else self.url.sibling(INCOMPLETE_SUFFIX)
            return Path(final.name), Path(final.name + CUSTODY_SUFFIX)
        if self._writer.resumed:
            where = str(self.fallback.path) if self.fallback else ""
            self.custody.record("store.resumed", parts=self._writer.resumed, directory=where)
        self.sealed = seal_staged(
            self.store, self.url, staged, digest, custody=self.custody, lock=self.lock,
            until=self.until, meta=self.meta, signer=self.opts.signer,
        )  # fmt: skip
        # the names the case records (case.json names files relative to the case)
        return Path(self.sealed.final.name), Path(self.sealed.custody_url.name)


class _Watched:
    """The capture's KubeClient, whose exec channel the signal handler can cut."""

    def __init__(self, kc: KubeClient, cap: K8sStoreCapture) -> None:
        self._kc = kc
        self._cap = cap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kc, name)

    def exec(self, *a: Any, **kw: Any) -> Any:
        channel = self._kc.exec(*a, **kw)
        self._cap._channel = channel
        return channel


def capture_pod_to_store(  # noqa: PLR0917 - the command's one call site
    uri: str,
    opts: CaptureOptions,
    k8s: K8sOptions,
    store: Store,
    url: S3Url,
    lock: LockSpec,
    progress: Progress | None = None,
) -> StoreCaptureResult:
    """One pod's bundle into ``url``: refused before the pod is touched when the
    bucket, its lock or the key is not right; the agent's spool lives in a private
    scratch directory (``$TMPDIR/exuvia-pod-*``), removed once the bundle is
    sealed (kept, and said, when the capture fails: it holds what the agent sent)."""
    preflight(store, url, lock)
    scratch = Path(tempfile.mkdtemp(prefix="exuvia-pod-"))
    opts.output = scratch / url.name
    cap = K8sStoreCapture(uri, opts, k8s, store=store, url=url, lock=lock, progress=progress,
                          signals=True)  # fmt: skip
    try:
        res = cap.run()
    except BaseException:
        if any(p.stat().st_size for p in scratch.iterdir()):
            sys.stderr.write(f"exuvia: the agent's stream received so far is kept in {scratch}/\n")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    sealed = cap.sealed
    assert sealed is not None
    warnings = sealed.warnings(res.warnings, url.sibling(PARTIAL_SUFFIX))
    return StoreCaptureResult(
        url=str(sealed.final),
        complete=res.complete,
        incomplete_reason=res.incomplete_reason,
        manifest_sha256=res.manifest_sha256,
        file_sha256=res.file_sha256,
        file_bytes=res.file_bytes,
        counts=dict(res.counts),
        skips=res.skips,
        custody_url=str(sealed.custody_url),
        version_id=sealed.version_id,
        retention=cap.retention,
        signed_by=res.signed_by,
        warnings=warnings,
        interrupted=cap.interrupted,
    )
