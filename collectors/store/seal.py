"""The seal step every capture into the store ends with, whatever produced the bundle.

A local target's stream (collectors/store/capture.py) and a pod's bundle
assembled from its agent's stream (collectors/store/k8s_capture.py, one pod or
each pod of a fleet) both end the same way, here: the completed ``<key>.partial``
is copied by the store to ``<key>`` (complete) or ``<key>.incomplete``
(interrupted but sealed) with the retention and ``If-None-Match: *``, the
``.partial`` version is removed (or kept, and said), the custody log records
``store.copied``, ``store.partial.removed|kept`` and ``bundle.sealed`` (bucket,
key, version id, hashes, retention; ``store.staged`` before them: the completed
``.partial`` and its version), and goes up as ``<final key>.custody.jsonl``
carrying the manifest's and the file's SHA-256 as metadata.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collectors.capture import signed_details
from collectors.store.client import Store, StoreError
from collectors.store.copy import copy_version, remove_version
from collectors.store.lock import LockSpec
from collectors.store.uri import S3Url
from forensics import __version__

if TYPE_CHECKING:
    from forensics.custody import CustodyLog
    from forensics.signing import Signer

CUSTODY_SUFFIX = ".custody.jsonl"
#: the metadata a captured or pushed object carries
META_FILE_SHA = "exuvia-file-sha256"
META_MANIFEST_SHA = "exuvia-manifest-sha256"
#: where the bundle is streamed while it is captured (no retention: removed after the copy)
PARTIAL_SUFFIX = ".partial"
#: an interrupted capture's sealed bundle (verifies for what it holds)
INCOMPLETE_SUFFIX = ".incomplete"
#: ``--scan`` results of a pod's bundle, beside it (forensics/scan/sidecar.py's name)
SCAN_SUFFIX = ".yara.json"
BUNDLE_TYPE = "application/x-exuvia-bundle"


@dataclass(frozen=True)
class Digest:
    """What the sealed stream was: the manifest's and the file's SHA-256, its size."""

    manifest_sha256: str
    file_sha256: str
    file_bytes: int
    complete: bool


@dataclass
class Sealed:
    final: S3Url
    version_id: str | None
    custody_url: S3Url
    #: why the ``.partial`` (a copy of the bundle) could not be removed, if it could not
    partial_kept: str | None

    def warnings(self, before: Iterable[str], staging: S3Url) -> list[str]:
        """The capture's warnings, and the kept ``.partial`` if it could not go."""
        out = list(before)
        if self.partial_kept:
            out.append(f"{staging} (a copy of the bundle) could not be removed: "
                       f"{self.partial_kept}")  # fmt: skip
        return out


def object_metadata(extra: dict[str, str]) -> dict[str, str]:
    meta = {"exuvia-tool": f"exuvia {__version__}"}
    meta.update(extra)
    return meta


def seal_staged(
    store: Store,
    url: S3Url,
    staged: dict[str, Any],
    digest: Digest,
    *,
    custody: CustodyLog,
    lock: LockSpec,
    until: Any,
    meta: dict[str, str],
    signer: Signer | None,
) -> Sealed:
    """``staged``: the store's answer completing ``<url>.partial`` (its ``VersionId``)."""
    staging = url.sibling(PARTIAL_SUFFIX)
    final = url if digest.complete else url.sibling(INCOMPLETE_SUFFIX)
    retention = lock.describe(until)
    # from here on the sealed bundle exists as <key>.partial: a failure leaves it there
    meta = {**meta, META_MANIFEST_SHA: digest.manifest_sha256, META_FILE_SHA: digest.file_sha256}
    src_version = staged.get("VersionId")
    custody.record("store.staged", object=str(staging), version_id=src_version,
                   bytes=digest.file_bytes)  # fmt: skip
    try:
        done = copy_version(
            store, url.bucket, src_key=staging.key, src_version=src_version,
            size=digest.file_bytes, dst_key=final.key,
            create_args={"Metadata": meta, "ContentType": BUNDLE_TYPE, **lock.put_args(until)},
        )  # fmt: skip
    except StoreError as err:
        raise StoreError(
            f"{err}; the sealed bundle is kept as {staging} (it verifies; no retention on it)"
        ) from None
    version = done.get("VersionId")
    custody.record("store.copied", source=str(staging), source_version_id=src_version,
                   destination=str(final), version_id=version)  # fmt: skip
    kept = remove_version(store, url.bucket, staging.key, src_version)
    if kept:
        custody.record("store.partial.kept", object=str(staging), reason=kept)
    else:
        custody.record("store.partial.removed", object=str(staging), version_id=src_version)
    custody.record(
        "bundle.sealed", path=str(final), bucket=url.bucket, key=final.key, version_id=version,
        manifest_sha256=digest.manifest_sha256, file_sha256=digest.file_sha256,
        bytes=digest.file_bytes, complete=digest.complete, **retention, **signed_details(signer),
    )  # fmt: skip
    custody_url = final.sibling(CUSTODY_SUFFIX)
    put_small(
        store, custody_url, custody.to_jsonl(), lock, until=until,
        meta={META_MANIFEST_SHA: digest.manifest_sha256, META_FILE_SHA: digest.file_sha256,
              "exuvia-bundle-version-id": str(version or "")},
    )  # fmt: skip
    return Sealed(final, version, custody_url, kept)


def put_small(
    store: Store,
    url: S3Url,
    data: bytes,
    lock: LockSpec,
    *,
    until: Any,
    meta: dict[str, str],
    content_type: str | None = None,
) -> dict[str, Any]:
    """One small object, never over an existing one, with the same lock."""
    extra = {"ContentType": content_type} if content_type else {}
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
        **extra,
    )
    return out
