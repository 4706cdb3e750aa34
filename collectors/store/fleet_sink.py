"""A fleet case captured straight into the store: ``-o s3://BUCKET/PREFIX/``.

The layout is the one ``exuvia push CASE_DIR s3://BUCKET/PREFIX/`` produces, so
``exuvia verify s3://BUCKET/PREFIX/`` verifies it as a case: each pod's bundle
as ``PREFIX/<bundle name>`` (``.incomplete`` when cut) with its custody log
beside it, sealed into the store by collectors.store.k8s_capture; then
``case.custody.jsonl``, ``case.json.sig`` (``--sign``) and ``case.json`` last.

case.json is put ONCE, when the fleet ends (interrupted or not), never
rewritten while pods finish: under object lock a locked object cannot be
replaced, and ``If-None-Match: *`` refuses a second version, so a case prefix
holds a case.json only when the fleet is over. While the fleet runs, the case's
running case.json and custody log are kept in a local scratch directory (with
the agents' spools), removed once they are in the store.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from collectors.capture import CaptureOptions, Progress
from collectors.k8s.capture import K8sCapture, K8sOptions
from collectors.k8s.client import KubeClient
from collectors.store.client import Store, StoreError
from collectors.store.k8s_capture import K8sStoreCapture
from collectors.store.lock import LockSpec
from collectors.store.seal import put_small
from collectors.store.uri import S3Url
from forensics.case.format import CASE_FILE, CUSTODY_FILE, SIGNATURE_FILE


class FleetStoreSink:
    def __init__(self, store: Store, url: S3Url, lock: LockSpec) -> None:
        self.store = store
        self.base = url if url.is_prefix else S3Url(url.bucket, url.key + "/")
        self.lock = lock
        self.local = Path(tempfile.mkdtemp(prefix="exuvia-case-"))

    @property
    def location(self) -> str:
        return str(self.base)

    def preflight(self) -> None:
        """Once, before any pod is touched: the bucket answers, has object lock
        (unless --no-lock), and nothing is stored under the case prefix yet."""
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

    def capture(  # noqa: PLR0917 - the fleet's one call site
        self, uri: str, opts: CaptureOptions, k8s: K8sOptions, api: KubeClient, file: str,
        progress: Progress | None = None,
    ) -> K8sCapture:  # fmt: skip
        """The single-pod capture of one bundle, sealed as ``PREFIX/<file>``."""
        return K8sStoreCapture(uri, opts, k8s, progress=progress, client=api, store=self.store,
                               url=self.base.child(file), lock=self.lock)  # fmt: skip

    def finish(self, directory: Path) -> None:
        """The sealed case's files, case.json last; the scratch directory is removed
        once they are stored (kept, and named in the error, when they are not)."""
        until = self.lock.until()
        names = [n for n in (CUSTODY_FILE, SIGNATURE_FILE, CASE_FILE) if (directory / n).exists()]
        try:
            for name in names:
                data = (directory / name).read_bytes()
                put_small(self.store, self.base.child(name), data, self.lock, until=until,
                          meta={})  # fmt: skip
        except (StoreError, OSError) as err:
            raise StoreError(
                f"{err}; the bundles are stored, the sealed case files are kept in {directory}/ "
                f"(put them under {self.base} by hand)"
            ) from None
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.local, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {"url": str(self.base), "endpoint": self.store.endpoint,
                **self.lock.describe(self.lock.until())}  # fmt: skip
