"""Capture straight into the store: the bundle is streamed as a multipart upload.

Life cycle: everything is refused before the target is touched when the bucket
is missing, not writable (the upload is created first), lacks object lock
(unless ``--no-lock``), or when the key, its ``.incomplete`` or its custody
object already exists. The object appears under its key only when the sealed
bundle is complete (``complete_multipart_upload`` is the last call, with
``If-None-Match: *``). A capture that is interrupted, or whose upload fails,
has its upload aborted and is reported as such: it never leaves a
complete-looking object. Then the custody log (with the bucket, key, version
id and retention) goes up as ``<key>.custody.jsonl``, carrying the manifest's
and the file's SHA-256 as object metadata.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collectors.capture import Capture, CaptureOptions, Progress, signed_details
from collectors.store.client import Store, StoreError
from collectors.store.lock import LockSpec
from collectors.store.upload import PART_SIZE, MultipartWriter
from collectors.store.uri import S3Url
from collectors.targets.base import TargetInfo
from forensics import __version__
from forensics.errors import CaptureInterrupted, OutputError

CUSTODY_SUFFIX = ".custody.jsonl"
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
    for key in (url.key, url.key + ".incomplete", url.key + CUSTODY_SUFFIX,
                url.key + PUSH_RECORD_SUFFIX):  # fmt: skip
        if store.exists(url.bucket, key):
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
    writer = MultipartWriter(
        store, url.bucket, url.key, part_size=part_size, on_retry=retry, track_sha256=False,
        create_args={"Metadata": meta, "ContentType": "application/x-exuvia-bundle",
                     **lock.put_args(until)},
    )  # fmt: skip
    try:
        manifest_sha, file_sha, file_bytes = cap.write(writer, output=str(url))  # type: ignore[arg-type]
    except (OutputError, CaptureInterrupted, OSError) as err:
        aborted = writer.abort()
        what = "aborted" if aborted else "left unfinished (never completed; no object exists)"
        raise StoreError(f"{err}; the upload to {url} was {what}, nothing was stored") from None
    except BaseException:
        writer.abort()
        raise
    if cap.incomplete:
        aborted = writer.abort()
        reason = "; ".join(cap.incomplete)
        raise StoreError(
            f"capture INCOMPLETE ({reason}); the upload to {url} was "
            f"{'aborted' if aborted else 'left unfinished'}: no object was created"
        )
    try:
        done = writer.complete()
    except BaseException:
        writer.abort()
        raise
    version = done.get("VersionId")
    cap.custody.record(
        "bundle.sealed",
        path=str(url),
        bucket=url.bucket,
        key=url.key,
        version_id=version,
        manifest_sha256=manifest_sha,
        file_sha256=file_sha,
        bytes=file_bytes,
        complete=True,
        **retention,
        **signed_details(opts.signer),
    )
    custody_url = url.sibling(CUSTODY_SUFFIX)
    put_small(
        store, custody_url, cap.custody.to_jsonl(), lock, until=until,
        meta={"exuvia-manifest-sha256": manifest_sha, "exuvia-file-sha256": file_sha,
         "exuvia-bundle-version-id": str(version or "")},
    )  # fmt: skip
    return StoreCaptureResult(
        url=str(url),
        complete=True,
        incomplete_reason="",
        manifest_sha256=manifest_sha,
        file_sha256=file_sha,
        file_bytes=file_bytes,
        counts=dict(cap.counts),
        skips=cap.skips.total,
        custody_url=str(custody_url),
        version_id=version,
        retention=retention,
        signed_by=opts.signer.fingerprint if opts.signer else None,
        warnings=list(cap.warnings),
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
