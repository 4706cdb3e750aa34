"""``--scan`` of a bundle sealed into the store, read back from it as a stream.

No local copy of the bundle is made: the object's body is read once by the same
code as ``exuvia scan BUNDLE`` (forensics/scan/bundle.py, each scanned member's
SHA-256 checked against the manifest in the same read), and the results file
(forensics/scan/sidecar.py) is put beside the bundle as ``<key>.yara.json``,
with the bundle's lock and ``If-None-Match: *``, as it lies beside a local one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.store.client import Store
from collectors.store.lock import LockSpec
from collectors.store.seal import META_MANIFEST_SHA, SCAN_SUFFIX, put_small
from collectors.store.uri import S3Url

if TYPE_CHECKING:
    from forensics.scan.engine import ScanLimits
    from forensics.scan.model import ScanResult
    from forensics.scan.rules import CompiledRules


@dataclass
class StoredScan:
    result: ScanResult
    url: S3Url
    sha256: str
    bytes: int
    version_id: str | None


def scan_object(
    store: Store, url: S3Url, rules: CompiledRules, limits: ScanLimits, lock: LockSpec
) -> StoredScan:
    """Scan the object at ``url`` and put its results beside it; what was put."""
    from forensics.scan.bundle import scan_bundle  # noqa: PLC0415 - the engine on demand
    from forensics.scan.sidecar import render_result  # noqa: PLC0415

    with store.body(url.bucket, url.key) as body:
        result = scan_bundle(body, rules, limits, name=url.name)
    data = render_result(result)
    side = url.sibling(SCAN_SUFFIX)
    done = put_small(store, side, data, lock, until=lock.until(),
                     meta={META_MANIFEST_SHA: result.manifest_sha256 or ""},
                     content_type="application/json")  # fmt: skip
    return StoredScan(result, side, hashlib.sha256(data).hexdigest(), len(data),
                      done.get("VersionId"))  # fmt: skip
