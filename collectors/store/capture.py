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
from typing import Any

from collectors.capture import Capture, CaptureOptions, Progress, signed_details
from collectors.store.client import Store, StoreError
from collectors.store.copy import copy_version, remove_version
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
) -> StoreCaptureResult:
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
    writer = MultipartWriter(
        store, url.bucket, staging.key, part_size=part_size, on_retry=retry, track_sha256=False,
        create_args={"Metadata": meta, "ContentType": "application/x-exuvia-bundle"},
    )  # fmt: skip
    try:
        manifest_sha, file_sha, file_bytes = cap.write(writer, output=str(url))  # type: ignore[arg-type]
    except (OutputError, CaptureInterrupted, OSError) as err:
        aborted = writer.abort()
        what = "aborted" if aborted else "left unfinished (never completed; no object exists)"
        raise StoreError(f"{err}; the upload to {staging} was {what}, nothing was stored") from None
    except BaseException:
        writer.abort()
        raise
    try:
        staged = writer.complete()
    except BaseException:
        writer.abort()
        raise
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
