"""``exuvia push``: upload existing evidence with the capture's guarantees.

Each bundle is verified before it leaves (a bundle that fails is refused), goes
up through a multipart upload that never replaces an existing key, carries the
manifest's and the file's SHA-256 as object metadata, and is read back and
hashed after (the checksum after upload). Its custody sidecar follows, with a
``store.pushed`` entry naming the bucket, key, version id and retention. A case
directory is pushed bundle by bundle, ``case.json`` last, so a case prefix
holds a ``case.json`` only when everything it names is there.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.store.capture import PUSH_RECORD_SUFFIX, preflight
from collectors.store.client import Store, StoreError
from collectors.store.fetch import CASE_FILE
from collectors.store.lock import LockSpec
from collectors.store.seal import (
    CUSTODY_SUFFIX,
    META_FILE_SHA,
    META_MANIFEST_SHA,
    object_metadata,
    put_small,
)
from collectors.store.upload import PART_SIZE, MultipartWriter
from collectors.store.uri import S3Url
from forensics.bundle import verify_bundle
from forensics.bundle.seal import sidecar_path
from forensics.case import is_case, load_case, verify_case
from forensics.custody import default_operator
from forensics.timeutil import iso_ns, now_ns

CHUNK = 1 << 20


@dataclass
class Pushed:
    url: str
    bytes: int
    file_sha256: str
    manifest_sha256: str | None
    version_id: str | None
    retention: dict[str, Any]


@dataclass
class PushResult:
    items: list[Pushed] = field(default_factory=list)


def _stream_up(
    store: Store, path: Path, url: S3Url, *, create_args: dict[str, Any],
    on_retry: Callable[[str], None], part_size: int,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """Upload ``path`` to ``url``; returns (SHA-256 of what was sent, store's answer)."""
    w = MultipartWriter(store, url.bucket, url.key, create_args=create_args,
                        part_size=part_size, on_retry=on_retry)  # fmt: skip
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                w.write(chunk)
        done = w.complete()
    except OSError as err:
        w.abort()
        raise StoreError(f"reading {path} failed: {err.strerror}; upload aborted") from None
    except BaseException:
        w.abort()
        raise
    assert w.sha256 is not None
    return w.sha256.hexdigest(), done


def read_back_sha256(store: Store, url: S3Url) -> str:
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    with store.body(url.bucket, url.key) as body:
        while chunk := body.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def push_bundle(
    store: Store, path: Path, url: S3Url, lock: LockSpec, *,
    on_retry: Callable[[str], None] = lambda _m: None, part_size: int = PART_SIZE,
    verified: bool = False, meta: dict[str, str] | None = None,
) -> Pushed:  # fmt: skip
    """``meta``: more object metadata (a salvaged bundle's source)."""
    if not verified:
        report = verify_bundle(path)
        if not report.ok:
            first = report.failures()[:1] or report.problems[:1] or ["it does not verify"]
            raise StoreError(f"{path} does not verify ({first[0]}); not pushed")
        file_sha, manifest_sha = report.file_sha256, report.manifest_sha256
    else:
        file_sha, manifest_sha = "", ""
    preflight(store, url, lock)
    until = lock.until()
    retention = lock.describe(until)
    meta = {
        **(meta or {}),
        **({META_FILE_SHA: file_sha, META_MANIFEST_SHA: manifest_sha} if file_sha else {}),
    }
    sent, done = _stream_up(
        store, path, url,
        create_args={"Metadata": object_metadata(meta),
                     "ContentType": "application/x-exuvia-bundle", **lock.put_args(until)},
        on_retry=on_retry, part_size=part_size,
    )  # fmt: skip
    if file_sha and sent != file_sha:
        raise StoreError(f"{path} changed while it was uploaded; {url} does not hold what verified")
    back = read_back_sha256(store, url)
    if back != sent:
        raise StoreError(f"read back, {url} has SHA-256 {back[:16]}…, not {sent[:16]}…")
    version = done.get("VersionId")
    side_local = sidecar_path(path)
    side_data = b""
    try:
        fd = os.open(side_local, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            side_data = f.read()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise StoreError(f"cannot read {side_local}: {err.strerror}") from None
    entry = {
        "action": "store.pushed", "ts_ns": (ts := now_ns()), "ts": iso_ns(ts),
        "examiner": default_operator(), "host": socket.gethostname(),
        "details": {"path": str(path), "bucket": url.bucket, "key": url.key,
                    "version_id": version, "file_sha256": sent,
                    "manifest_sha256": manifest_sha or None, "endpoint": store.endpoint,
                    **retention},
    }  # fmt: skip
    # the push is recorded after the sealed custody sidecar when there is one (the
    # seal's own lines stay as they were); without one, in a record of its own
    record = json.dumps(entry, sort_keys=True).encode() + b"\n"
    if side_data:
        target, body = CUSTODY_SUFFIX, side_data.rstrip(b"\n") + b"\n" + record
    else:
        target, body = PUSH_RECORD_SUFFIX, record
    put_small(store, url.sibling(target), body, lock, until=until,
              meta={META_FILE_SHA: sent, META_MANIFEST_SHA: manifest_sha,
                    "exuvia-bundle-version-id": str(version or "")})  # fmt: skip
    return Pushed(str(url), path.stat().st_size, sent, manifest_sha or None, version, retention)


def _regular_files(directory: Path) -> list[Path]:
    out = []
    for name in sorted(os.listdir(directory)):
        st = os.lstat(directory / name)
        if stat.S_ISREG(st.st_mode):
            out.append(directory / name)
    return out


def push_case(
    store: Store, directory: Path, url: S3Url, lock: LockSpec, *,
    on_retry: Callable[[str], None] = lambda _m: None, part_size: int = PART_SIZE,
) -> PushResult:  # fmt: skip
    if not is_case(directory):
        raise StoreError(f"{directory} is not a case directory (no case.json)")
    report = verify_case(directory)
    if not report.ok:
        first = (report.problems or [f for b in report.bundles for f in b.failures()] or ["?"])[0]
        raise StoreError(f"case {directory} does not verify ({first}); not pushed")
    base = url if url.is_prefix else S3Url(url.bucket, url.key + "/")
    case = load_case(directory)
    bundles = {b.file for b in case.bundles if b.file}
    files = _regular_files(directory)
    # refuse before anything goes up
    preflight(store, base.child(CASE_FILE), lock)
    for f in files:
        if store.exists(base.bucket, base.child(f.name).key):
            raise StoreError(f"{base.child(f.name)} already exists; refusing to overwrite evidence")
    result = PushResult()
    sidecars = {f.name + CUSTODY_SUFFIX for f in files if f.name in bundles}
    sidecars |= {f.name + PUSH_RECORD_SUFFIX for f in files if f.name in bundles}
    for f in files:
        if f.name in bundles:
            result.items.append(push_bundle(store, f, base.child(f.name), lock,
                                            on_retry=on_retry, part_size=part_size))  # fmt: skip
    until = lock.until()
    rest = [f for f in files if f.name not in bundles and f.name not in sidecars]
    rest.sort(key=lambda f: f.name == CASE_FILE)  # case.json last
    for f in rest:
        target = base.child(f.name)
        sent, done = _stream_up(
            store, f, target,
            create_args={"Metadata": object_metadata({}), **lock.put_args(until)},
            on_retry=on_retry, part_size=part_size)  # fmt: skip
        if read_back_sha256(store, target) != sent:
            raise StoreError(f"read back, {target} differs from {f}")
        result.items.append(Pushed(str(target), f.stat().st_size, sent, None,
                                   done.get("VersionId"), lock.describe(until)))  # fmt: skip
    return result
