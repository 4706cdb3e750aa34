"""Capture straight into the store: the bundle is streamed as a multipart upload.

Life cycle (the store's form of the local ``.partial`` -> rename): everything
is refused before the target is touched when the bucket is missing, not
writable (the upload is created first), lacks object lock (unless
``--no-lock``), or when the key, its ``.partial``, ``.incomplete`` or custody
object already exists (one ListObjectsV2 of the key's prefix). The bundle is
streamed to ``<key>.partial`` (no retention, so it can be removed); once it is
sealed, that object is completed and copied by the store itself to ``<key>``
when the capture is complete, or to ``<key>.incomplete`` when it was
interrupted (SIGINT/SIGTERM, the target gone, a collector failed) but sealed,
with the retention and ``If-None-Match: *``; then the ``.partial`` version is
removed. S3 cannot rename, and the object of an upload exists only under the
key it was started with: the copy is what lets an interrupted capture keep what
it captured without a complete-looking object. A capture whose stream breaks
before it is sealed (kill -9, the store gone) leaves an unfinished or aborted
upload of ``<key>.partial`` and no object. Then the custody log (with the
bucket, key, version id and retention) goes up as ``<final
key>.custody.jsonl``, carrying the manifest's and the file's SHA-256 as object
metadata.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.capture import Capture, CaptureOptions, Progress
from collectors.store.client import Store, StoreError
from collectors.store.fallback import LocalParts
from collectors.store.lock import LockSpec
from collectors.store.seal import (
    BUNDLE_TYPE,
    CUSTODY_SUFFIX,
    INCOMPLETE_SUFFIX,
    PARTIAL_SUFFIX,
    SCAN_SUFFIX,
    Digest,
    object_metadata,
    seal_staged,
)
from collectors.store.upload import PART_SIZE, MultipartWriter
from collectors.store.uri import S3Url
from collectors.targets.base import TargetInfo
from forensics.custody import CustodyLog
from forensics.errors import CaptureInterrupted, OutputError

#: ``exuvia push``'s record when the bundle had no custody sidecar to append it to
PUSH_RECORD_SUFFIX = ".pushed.jsonl"
#: every key a capture may create, its scan results included
TAKEN_SUFFIXES = ("", PARTIAL_SUFFIX, INCOMPLETE_SUFFIX, CUSTODY_SUFFIX,
                  INCOMPLETE_SUFFIX + CUSTODY_SUFFIX, PUSH_RECORD_SUFFIX, SCAN_SUFFIX,
                  INCOMPLETE_SUFFIX + SCAN_SUFFIX)  # fmt: skip


@dataclass
class StoreCaptureResult:
    url: str
    complete: bool
    incomplete_reason: str
    manifest_sha256: str
    file_sha256: str
    file_bytes: int
    counts: dict[str, int]
    skips: int
    custody_url: str
    version_id: str | None
    retention: dict[str, Any]
    signed_by: str | None = None
    #: one line each: what was asked for and not done (--memory of a process)
    warnings: list[str] = field(default_factory=list)
    #: the signal that cut a pod's stream (its bundle is then ``.incomplete``), if one did
    interrupted: str = ""


def stderr_retry(msg: str) -> None:
    """Retries are visible: one line on stderr each."""
    sys.stderr.write(f"exuvia: store: {msg}\n")
    sys.stderr.flush()


def taken_keys(key: str) -> tuple[str, ...]:
    """Every key a capture to ``key`` may create: none may exist before it starts."""
    return tuple(key + suffix for suffix in TAKEN_SUFFIXES)


def preflight(store: Store, url: S3Url, lock: LockSpec) -> None:
    """Refuse before anything is captured: bad key, missing bucket, no lock, key taken."""
    if url.is_prefix or not url.name:
        raise OutputError(f"{url}: give the object's name (s3://BUCKET/PREFIX/NAME.exv)")
    enabled = store.bucket_lock_enabled(url.bucket)
    if lock.use_lock and not enabled:
        raise StoreError(
            f"bucket {url.bucket} does not have object lock enabled; evidence there could be "
            "deleted or overwritten (use a bucket created with object lock, or --no-lock)"
        )
    # one listing of the key's prefix instead of a HEAD per name
    present = set(store.list_keys(url.bucket, url.key))
    for key in taken_keys(url.key):
        if key in present:
            raise StoreError(
                f"s3://{url.bucket}/{key} already exists; refusing to overwrite evidence"
            )


def capture_to_store(
    target: TargetInfo,
    opts: CaptureOptions,
    store: Store,
    url: S3Url,
    lock: LockSpec,
    *,
    progress: Progress | None = None,
    part_size: int = PART_SIZE,
    on_retry: Callable[[str], None] = stderr_retry,
    fallback: Path | None = None,
) -> StoreCaptureResult:
    """``fallback``: the local directory the parts go to when the store stops
    answering mid-upload (fallback.py); None: the capture fails instead."""
    local = LocalParts(fallback, url.name + PARTIAL_SUFFIX) if fallback is not None else None
    if local is not None:
        local.refuse_existing()
    preflight(store, url, lock)
    until = lock.until()
    retention = lock.describe(until)
    cap = Capture(target, opts, progress)
    cap.custody.record("store.upload.started", url=str(url), endpoint=store.endpoint,
                       part_size=part_size, **retention)  # fmt: skip

    def retry(msg: str) -> None:
        cap.custody.record("store.retry", message=msg)
        on_retry(msg)

    meta = object_metadata({"exuvia-target": target.uri[:512]})
    staging = url.sibling(PARTIAL_SUFFIX)

    def degraded(msg: str) -> None:
        cap.custody.record("store.fallback", message=msg,
                           directory=str(local.path if local else ""))  # fmt: skip
        on_retry(msg)

    writer = MultipartWriter(
        store, url.bucket, staging.key, part_size=part_size, on_retry=retry, track_sha256=False,
        create_args={"Metadata": meta, "ContentType": BUNDLE_TYPE},
        fallback=local, on_fallback=degraded,
    )  # fmt: skip
    try:
        manifest_sha, file_sha, file_bytes = cap.write(writer, output=str(url))  # type: ignore[arg-type]
    except (OutputError, CaptureInterrupted, OSError) as err:
        aborted = writer.abort()
        if local is not None and local.used:
            raise StoreError(
                f"{err}; the bundle was not sealed; what was captured is in the "
                f"unfinished upload of {staging} and in {local.path}"
            ) from None
        what = "aborted" if aborted else "left unfinished (never completed; no object exists)"
        raise StoreError(f"{err}; the upload to {staging} was {what}, nothing was stored") from None
    except BaseException:
        writer.abort()
        raise
    try:
        staged = writer.complete()
    except StoreError as err:  # the store still gone (or refusing) when the kept parts go up
        if local is None or not local.used:
            writer.abort()
            raise
        raise kept_locally(cap.custody, writer, local, staging, err,
                           (manifest_sha, file_sha, file_bytes),
                           complete=not cap.incomplete) from None  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    if writer.resumed:
        cap.custody.record("store.resumed", parts=writer.resumed, directory=str(local.path
                           if local else ""))  # fmt: skip
    complete = not cap.incomplete
    sealed = seal_staged(
        store, url, staged, Digest(manifest_sha, file_sha, file_bytes, complete),
        custody=cap.custody, lock=lock, until=until, meta=meta, signer=opts.signer,
    )  # fmt: skip
    warnings = sealed.warnings(cap.warnings, staging)
    return StoreCaptureResult(
        url=str(sealed.final),
        complete=complete,
        incomplete_reason="; ".join(cap.incomplete),
        manifest_sha256=manifest_sha,
        file_sha256=file_sha,
        file_bytes=file_bytes,
        counts=dict(cap.counts),
        skips=cap.skips.total,
        custody_url=str(sealed.custody_url),
        version_id=sealed.version_id,
        retention=retention,
        signed_by=opts.signer.fingerprint if opts.signer else None,
        warnings=warnings,
    )


def kept_locally(  # noqa: PLR0917 - a local target's and a fleet pod's
    custody: CustodyLog,
    writer: MultipartWriter,
    local: LocalParts,
    staging: S3Url,
    err: StoreError,
    seal: tuple[str, str, int],
    *,
    complete: bool,
) -> StoreError:
    """The store is still gone when the bundle is sealed: say where every part
    is (``upload.json`` and the custody log beside the local parts)."""
    manifest_sha, file_sha, file_bytes = seal
    in_store = [int(p["PartNumber"]) for p in writer.uploaded()]
    kept = local.numbers()
    doc = {
        "format": "exuvia-store-fallback", "version": 1,
        "bucket": staging.bucket, "key": staging.key, "upload_id": writer.upload_id,
        "endpoint": writer.store.endpoint, "parts_in_store": writer.uploaded(),
        "part_checksums": writer.part_checksums,
        "parts_here": kept, "manifest_sha256": manifest_sha, "file_sha256": file_sha,
        "bytes": file_bytes, "complete": complete,
    }  # fmt: skip
    custody.record("store.kept_locally", directory=str(local.path), **{
        k: v for k, v in doc.items() if k not in ("format", "version")})  # fmt: skip
    described = local.describe(doc)
    sidecar = custody.write_sidecar(local.path / "bundle")
    return StoreError(
        f"{err}; the sealed bundle ({'complete' if complete else 'INCOMPLETE'}, manifest "
        f"sha256 {manifest_sha}) is kept in two places: parts {_ranges(in_store)} in the "
        f"unfinished upload {writer.upload_id} of {staging}, parts {_ranges(kept)} in "
        f"{local.path}/ ({described.name} and {sidecar.name} there say which); nothing is lost"
    )


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(out)
