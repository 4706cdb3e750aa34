"""A fleet case captured straight into the store: ``-o s3://BUCKET/PREFIX/``.

The layout is the one ``exuvia push CASE_DIR s3://BUCKET/PREFIX/`` produces, so
``exuvia verify s3://BUCKET/PREFIX/`` verifies it as a case: each pod's bundle
as ``PREFIX/<bundle name>`` (``.incomplete`` when cut) with its custody log
beside it, sealed into the store by collectors.store.k8s_capture; then
``case.custody.jsonl``, ``case.json.sig`` (``--sign``) and ``case.json`` last.

case.json is put ONCE, when the fleet ends (interrupted or not), never
rewritten while pods finish: under object lock a locked object cannot be
replaced, and ``If-None-Match: *`` refuses a second version, so a case prefix
holds a case.json only when the fleet is over. While the fleet runs, the case
is journalled in a local directory, ``DIR/exuvia-journal-BUCKET_PREFIX/`` (DIR:
``--fallback-dir``, ``$EXUVIA_FALLBACK_DIR`` or the current directory, the
single-target fallback's rule), named on stderr before any pod is touched:
case.json rewritten atomically as each pod finishes and the case custody log,
as for a local case, with the agents' spools. It is removed once the case is in
the store; after ``kill -9`` it is what says what the case held, and
``exuvia push JOURNAL s3://BUCKET/PREFIX/`` (collectors/store/journal.py)
finishes the case from it.

When the store stops answering mid-case, each pod's bundle falls back as a
single target's does: the parts the store did not take go to
``JOURNAL/<bundle>.partial.parts/`` (collectors/store/fallback.py), and a pod
whose upload cannot even be started is captured as a local bundle into the
journal; case.json says where each one is.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from collectors.capture import CaptureOptions, CaptureResult, Progress
from collectors.k8s.capture import K8sCapture, K8sOptions
from collectors.k8s.client import KubeClient
from collectors.store.client import Store, StoreError, StoreUnreachable
from collectors.store.fallback import LocalParts
from collectors.store.k8s_capture import K8sStoreCapture
from collectors.store.lock import LockSpec
from collectors.store.seal import PARTIAL_SUFFIX
from collectors.store.uri import S3Url
from forensics.errors import OutputError

JOURNAL_PREFIX = "exuvia-journal-"


def journal_name(base: S3Url) -> str:
    """``exuvia-journal-BUCKET_PREFIX`` (``/`` and anything unusual as ``_``)."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", f"{base.bucket}_{base.key.strip('/')}".strip("_"))
    return JOURNAL_PREFIX + slug[:200]


class FleetStoreSink:
    def __init__(self, store: Store, url: S3Url, lock: LockSpec, *, state_dir: Path) -> None:
        self.store = store
        self.base = url if url.is_prefix else S3Url(url.bucket, url.key + "/")
        self.lock = lock
        #: the case journal (not made before the preflight)
        self.local = state_dir / journal_name(self.base)
        self._made = False
        #: ``--scan``: the rules (absolute path, SHA-256), recorded in ``store.case`` so
        #: that ``exuvia push JOURNAL`` scans the bundles it finishes with the same rules
        self.scan: dict[str, Any] | None = None

    @property
    def location(self) -> str:
        return str(self.base)

    def preflight(self) -> None:
        """Once, before any pod is touched: the bucket answers, has object lock
        (unless --no-lock), nothing is stored under the case prefix yet, and the
        journal directory is new; then it is made and named on stderr."""
        if self.lock.use_lock and not self.store.bucket_lock_enabled(self.base.bucket):
            raise StoreError(
                f"bucket {self.base.bucket} does not have object lock enabled; evidence there "
                "could be deleted or overwritten (use a bucket created with object lock, or "
                "--no-lock)"
            )
        taken = self.store.list_keys(self.base.bucket, self.base.key)
        if taken:
            raise StoreError(
                f"{self.base} already holds {len(taken)} object(s) (s3://{self.base.bucket}/"
                f"{taken[0]}); a case needs a new prefix, refusing to mix evidence"
            )
        if os.path.lexists(self.local):
            raise OutputError(
                f"{self.local} already exists (the journal of an earlier case into "
                f"{self.base}?); refusing to overwrite it"
            )
        try:
            self.local.mkdir(mode=0o750, parents=True)
        except OSError as err:
            raise OutputError(
                f"cannot create the case journal {self.local}: {err.strerror}"
            ) from None
        self._made = True
        sys.stderr.write(
            f"exuvia: case journal: {self.local}/ (case.json and its custody log while the "
            f"fleet runs; removed once the case is in {self.base}; after a crash: exuvia push "
            f"{self.local} {self.base})\n"
        )
        sys.stderr.flush()

    def capture(  # noqa: PLR0917 - the fleet's one call site
        self, uri: str, opts: CaptureOptions, k8s: K8sOptions, api: KubeClient, file: str,
        progress: Progress | None = None,
    ) -> _PodCapture:  # fmt: skip
        """The single-pod capture of one bundle, sealed as ``PREFIX/<file>``."""
        return _PodCapture(self, uri, opts, k8s, api, file, progress)

    def finish(self, directory: Path) -> None:
        """The sealed case into the store, bundles kept in the journal first and
        case.json last; the journal is removed once everything is stored (kept,
        and named in the error, when it is not)."""
        from collectors.store.journal import push_journal  # noqa: PLC0415 - a cycle otherwise

        push_journal(self.store, directory, self.base, self.lock)

    def cleanup(self) -> None:
        """Remove the journal when the fleet was refused before anything was captured."""
        if self._made and self.local.is_dir() and not any(self.local.iterdir()):
            shutil.rmtree(self.local, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {"url": str(self.base), "endpoint": self.store.endpoint,
                "journal": str(self.local), **self.lock.describe(self.lock.until()),
                **({"scan": self.scan} if self.scan else {})}  # fmt: skip


class _PodCapture:
    """One pod of the fleet: into the store, its parts into the journal when the
    store stops answering mid-upload; a local bundle in the journal when the
    store does not answer before the pod is touched (the upload cannot start)."""

    def __init__(  # noqa: PLR0917
        self, sink: FleetStoreSink, uri: str, opts: CaptureOptions, k8s: K8sOptions,
        api: KubeClient, file: str, progress: Progress | None,
    ) -> None:  # fmt: skip
        self.sink, self.uri, self.opts, self.k8s, self.api = sink, uri, opts, k8s, api
        self.file, self.progress = file, progress

    def run(self) -> CaptureResult:
        local = LocalParts(self.sink.local, self.file + PARTIAL_SUFFIX)
        cap = K8sStoreCapture(self.uri, self.opts, self.k8s, progress=self.progress,
                              client=self.api, store=self.sink.store,
                              url=self.sink.base.child(self.file), lock=self.sink.lock,
                              fallback=local, keep_split=True)  # fmt: skip
        try:
            res = cap.run()
        except StoreUnreachable as err:
            if cap.upload_started:
                raise
            why = str(err)
        else:
            if not cap.split:
                return res
            sys.stderr.write(f"exuvia: store: {cap.split}\n")
            # the case says where it is until `exuvia push JOURNAL` finishes it
            note = f"kept in two places while the store was gone: {cap.split}"
            reason = "; ".join(r for r in (res.incomplete_reason, note) if r)
            return dataclasses.replace(res, incomplete_reason=reason)
        sys.stderr.write(f"exuvia: store: {why}; {self.uri} is captured into "
                         f"{self.sink.local}/ instead, nothing is lost\n")  # fmt: skip
        local_cap = K8sCapture(self.uri, self.opts, self.k8s, progress=self.progress,
                               client=self.api)  # fmt: skip
        local_cap.custody.record("store.fallback", message=why, directory=str(self.sink.local),
                                 url=str(self.sink.base.child(self.file)))  # fmt: skip
        return local_cap.run()
