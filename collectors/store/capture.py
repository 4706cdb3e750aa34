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

from collectors.capture import Capture, CaptureOptions, Progress, signed_details
from collectors.store.client import Store, StoreError
from collectors.store.copy import copy_version, remove_version
from collectors.store.fallback import LocalParts
from collectors.store.lock import LockSpec
from collectors.store.upload import PART_SIZE, MultipartWriter
from collectors.store.uri import S3Url
from collectors.targets.base import TargetInfo
from forensics import __version__
from forensics.errors import CaptureInterrupted, OutputError

CUSTODY_SUFFIX = ".custody.jsonl"
#: the metadata a captured or pushed object carries
META_FILE_SHA = "exuvia-file-sha256"
META_MANIFEST_SHA = "exuvia-manifest-sha256"
#: where the bundle is streamed while it is captured (no retention: removed after the copy)
PARTIAL_SUFFIX = ".partial"
#: an interrupted capture's sealed bundle (verifies for what it holds)
INCOMPLETE_SUFFIX = ".incomplete"
#: ``exuvia push``'s record when the bundle had no custody sidecar to append it to
PUSH_RECORD_SUFFIX = ".pushed.jsonl"


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


def stderr_retry(msg: str) -> None:
    """Retries are visible: one line on stderr each."""
    sys.stderr.write(f"exuvia: store: {msg}\n")
    sys.stderr.flush()


def taken_keys(key: str) -> tuple[str, ...]:
    """Every key a capture to ``key`` may create: none may exist before it starts."""
    return (key, key + PARTIAL_SUFFIX, key + INCOMPLETE_SUFFIX, key + CUSTODY_SUFFIX,
            key + INCOMPLETE_SUFFIX + CUSTODY_SUFFIX, key + PUSH_RECORD_SUFFIX)  # fmt: skip


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


def object_metadata(extra: dict[str, str]) -> dict[str, str]:
    meta = {"exuvia-tool": f"exuvia {__version__}"}
    meta.update(extra)
    return meta


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
        create_args={"Metadata": meta, "ContentType": "application/x-exuvia-bundle"},
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
        raise kept_locally(cap, writer, local, staging, err, (manifest_sha, file_sha, file_bytes),
                           complete=not cap.incomplete) from None  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    if writer.resumed:
        cap.custody.record("store.resumed", parts=writer.resumed, directory=str(local.path
                           if local else ""))  # fmt: skip
    complete = not cap.incomplete
    final = url if complete else url.sibling(INCOMPLETE_SUFFIX)
    # from here on the sealed bundle exists as <key>.partial: a failure leaves it there
    meta = {**meta, META_MANIFEST_SHA: manifest_sha, META_FILE_SHA: file_sha}
    try:
        done = copy_version(
            store, url.bucket, src_key=staging.key, src_version=staged.get("VersionId"),
            size=file_bytes, dst_key=final.key,
            create_args={"Metadata": meta, "ContentType": "application/x-exuvia-bundle",
             **lock.put_args(until)},
        )  # fmt: skip
    except StoreError as err:
        raise StoreError(
            f"{err}; the sealed bundle is kept as {staging} (it verifies; no retention on it)"
        ) from None
    version = done.get("VersionId")
    cap.custody.record("store.copied", source=str(staging), source_version_id=staged.get(
        "VersionId"), destination=str(final), version_id=version)  # fmt: skip
    kept = remove_version(store, url.bucket, staging.key, staged.get("VersionId"))
    warnings = list(cap.warnings)
    if kept:
        cap.custody.record("store.partial.kept", object=str(staging), reason=kept)
        warnings.append(f"{staging} (a copy of the bundle) could not be removed: {kept}")
    else:
        cap.custody.record("store.partial.removed", object=str(staging),
                           version_id=staged.get("VersionId"))  # fmt: skip
    cap.custody.record(
        "bundle.sealed",
        path=str(final),
        bucket=url.bucket,
        key=final.key,
        version_id=version,
        manifest_sha256=manifest_sha,
        file_sha256=file_sha,
        bytes=file_bytes,
        complete=complete,
        **retention,
        **signed_details(opts.signer),
    )
    custody_url = final.sibling(CUSTODY_SUFFIX)
    put_small(
        store, custody_url, cap.custody.to_jsonl(), lock, until=until,
        meta={META_MANIFEST_SHA: manifest_sha, META_FILE_SHA: file_sha,
              "exuvia-bundle-version-id": str(version or "")},
    )  # fmt: skip
    return StoreCaptureResult(
        url=str(final),
        complete=complete,
        incomplete_reason="; ".join(cap.incomplete),
        manifest_sha256=manifest_sha,
        file_sha256=file_sha,
        file_bytes=file_bytes,
        counts=dict(cap.counts),
        skips=cap.skips.total,
        custody_url=str(custody_url),
        version_id=version,
        retention=retention,
        signed_by=opts.signer.fingerprint if opts.signer else None,
        warnings=warnings,
    )


def kept_locally(  # noqa: PLR0917 - one call site
    cap: Capture,
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
        "parts_here": kept, "manifest_sha256": manifest_sha, "file_sha256": file_sha,
        "bytes": file_bytes, "complete": complete,
    }  # fmt: skip
    cap.custody.record("store.kept_locally", directory=str(local.path), **{
        k: v for k, v in doc.items() if k not in ("format", "version")})  # fmt: skip
    described = local.describe(doc)
    custody = cap.custody.write_sidecar(local.path / "bundle")
    return StoreError(
        f"{err}; the sealed bundle ({'complete' if complete else 'INCOMPLETE'}, manifest "
        f"sha256 {manifest_sha}) is kept in two places: parts {_ranges(in_store)} in the "
        f"unfinished upload {writer.upload_id} of {staging}, parts {_ranges(kept)} in "
        f"{local.path}/ ({described.name} and {custody.name} there say which); nothing is lost"
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


def put_small(
    store: Store,
    url: S3Url,
    data: bytes,
    lock: LockSpec,
    *,
    until: Any,
    meta: dict[str, str],
) -> dict[str, Any]:
    """One small object, never over an existing one, with the same lock."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    out: dict[str, Any] = store.call(
        f"storing {url}",
        store.client.put_object,
        Bucket=url.bucket,
        Key=url.key,
        Body=data,
        IfNoneMatch="*",
        ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        Metadata=object_metadata(meta),
        **lock.put_args(until),
    )
    return out
