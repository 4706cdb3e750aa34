"""A pod's bundle sealed into the store instead of a local file (a fleet's ``-o s3://``).

The agent's stream is received into a local spool as for any k8s capture (it is
checked against the agent's checkpoints before a byte of the final bundle is
written); the final bundle is then assembled straight into a multipart upload
of ``<key>.partial`` (no local copy of it) and sealed the way a single target's
store capture is (collectors/store/capture.py): copied by the store to
``<key>`` or ``<key>.incomplete`` with the retention and ``If-None-Match: *``,
the ``.partial`` removed, the custody log put as ``<final key>.custody.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from collectors.capture import CaptureOptions, Progress, signed_details
from collectors.k8s.assemble import Outcome
from collectors.k8s.capture import K8sCapture, K8sOptions
from collectors.k8s.client import KubeClient
from collectors.store.capture import (
    CUSTODY_SUFFIX,
    INCOMPLETE_SUFFIX,
    META_FILE_SHA,
    META_MANIFEST_SHA,
    PARTIAL_SUFFIX,
    object_metadata,
    put_small,
    stderr_retry,
)
from collectors.store.client import Store, StoreError
from collectors.store.copy import copy_version, remove_version
from collectors.store.lock import LockSpec
from collectors.store.upload import MultipartWriter
from collectors.store.uri import S3Url

BUNDLE_TYPE = "application/x-exuvia-bundle"


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
    ) -> None:
        super().__init__(uri, opts, k8s, progress=progress, client=client)
        self.store = store
        self.url = url
        self.lock = lock
        self.until = lock.until()
        self.retention = lock.describe(self.until)
        self.meta = object_metadata({"exuvia-target": uri[:512]})
        self._writer: MultipartWriter | None = None

    def _retry(self, msg: str) -> None:
        self.custody.record("store.retry", message=msg)
        stderr_retry(msg)

    def _open_output(self, partial: Path) -> BinaryIO:
        staging = self.url.sibling(PARTIAL_SUFFIX)
        self.custody.record("store.upload.started", url=str(self.url),
                            endpoint=self.store.endpoint, **self.retention)  # fmt: skip
        self._writer = MultipartWriter(
            self.store, staging.bucket, staging.key, on_retry=self._retry, track_sha256=False,
            create_args={"Metadata": self.meta, "ContentType": BUNDLE_TYPE},
        )  # fmt: skip
        return self._writer  # type: ignore[return-value]

    def _close_output(self, raw: BinaryIO) -> None:
        """Completed in _seal (after the assembly said complete or not)."""

    def _write(self, kc: KubeClient, **kw: Any) -> Outcome:
        try:
            return super()._write(kc, **kw)
        except BaseException:
            if self._writer is not None:
                self._writer.abort()
            raise

    def _seal(self, out: Path, partial: Path, outcome: Outcome) -> tuple[Path, Path]:
        w = self._writer
        assert w is not None
        try:
            staged = w.complete()
        except BaseException:
            w.abort()
            raise
        staging = self.url.sibling(PARTIAL_SUFFIX)
        final = self.url if outcome.complete else self.url.sibling(INCOMPLETE_SUFFIX)
        meta = {**self.meta, META_MANIFEST_SHA: outcome.manifest_sha256,
                META_FILE_SHA: outcome.file_sha256}  # fmt: skip
        try:
            done = copy_version(
                self.store, final.bucket, src_key=staging.key,
                src_version=staged.get("VersionId"), size=outcome.file_bytes, dst_key=final.key,
                create_args={"Metadata": meta, "ContentType": BUNDLE_TYPE,
                             **self.lock.put_args(self.until)},
            )  # fmt: skip
        except StoreError as err:
            raise StoreError(
                f"{err}; the sealed bundle is kept as {staging} (it verifies; no retention on it)"
            ) from None
        version = done.get("VersionId")
        self.custody.record("store.copied", source=str(staging), destination=str(final),
                            source_version_id=staged.get("VersionId"),
                            version_id=version)  # fmt: skip
        kept = remove_version(self.store, final.bucket, staging.key, staged.get("VersionId"))
        if kept:
            self.custody.record("store.partial.kept", object=str(staging), reason=kept)
        else:
            self.custody.record("store.partial.removed", object=str(staging),
                                version_id=staged.get("VersionId"))  # fmt: skip
        self.custody.record(
            "bundle.sealed", path=str(final), bucket=final.bucket, key=final.key,
            version_id=version, manifest_sha256=outcome.manifest_sha256,
            file_sha256=outcome.file_sha256, bytes=outcome.file_bytes,
            complete=outcome.complete, **self.retention, **signed_details(self.opts.signer),
        )  # fmt: skip
        custody = final.sibling(CUSTODY_SUFFIX)
        put_small(self.store, custody, self.custody.to_jsonl(), self.lock, until=self.until,
                  meta={META_MANIFEST_SHA: outcome.manifest_sha256,
                        META_FILE_SHA: outcome.file_sha256,
                        "exuvia-bundle-version-id": str(version or "")})  # fmt: skip
        # the names the case records (case.json names files relative to the case)
        return Path(final.name), Path(custody.name)
