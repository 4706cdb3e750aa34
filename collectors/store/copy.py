"""A server-side copy of one object version to a key that must not exist yet.

S3 has no rename, and CopyObject's ``If-None-Match`` is not honoured by every
store (versitygw 1.8 ignores it), so the copy is a multipart upload whose parts
are ``UploadPartCopy`` ranges of the source version, completed with
``If-None-Match: *``: the destination appears whole, once, or not at all.
"""

from __future__ import annotations

import contextlib
from typing import Any

from collectors.store.client import Store

#: S3's largest part (and largest single copy)
MAX_COPY_PART = 5 << 30


def copy_version(
    store: Store,
    bucket: str,
    *,
    src_key: str,
    src_version: str | None,
    size: int,
    dst_key: str,
    create_args: dict[str, Any],
    part_size: int = MAX_COPY_PART,
) -> dict[str, Any]:
    """Copy ``src_key`` (that version) to ``dst_key``; returns the completion's answer."""
    what = f"copying s3://{bucket}/{src_key} to s3://{bucket}/{dst_key}"
    source: dict[str, str] = {"Bucket": bucket, "Key": src_key}
    if src_version:
        source["VersionId"] = src_version
    upload = store.call(what, store.client.create_multipart_upload,
                        Bucket=bucket, Key=dst_key, **create_args)["UploadId"]  # fmt: skip
    try:
        parts = []
        offsets = range(0, max(size, 1), part_size)
        for number, start in enumerate(offsets, 1):
            ranged = {"CopySourceRange": f"bytes={start}-{min(size, start + part_size) - 1}"}
            resp = store.call(
                what, store.client.upload_part_copy, Bucket=bucket, Key=dst_key,
                UploadId=upload, PartNumber=number, CopySource=source,
                **(ranged if len(offsets) > 1 else {}),
            )  # fmt: skip
            parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
        done: dict[str, Any] = store.call(
            what, store.client.complete_multipart_upload, Bucket=bucket, Key=dst_key,
            UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*",
        )  # fmt: skip
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be what failed: its error follows
            store.client.abort_multipart_upload(Bucket=bucket, Key=dst_key, UploadId=upload)
        raise
    return done


def remove_version(store: Store, bucket: str, key: str, version: str | None) -> str | None:
    """Delete one version; None when done, else why not (one line, never raises)."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        args["VersionId"] = version
    try:
        store.call(f"removing s3://{bucket}/{key}", store.client.delete_object, **args)
    except Exception as err:  # noqa: BLE001 - StoreError: kept, and said so
        return str(err)
    return None
