"""Bring evidence from the store into the exuvia cache, never beside the evidence.

The object is streamed (bounded memory) to ``$XDG_CACHE_HOME/exuvia/store/…``
under a temporary name and renamed when whole, with its custody sidecar
object when there is one. ``verify``/``info`` use a private directory that is
removed afterwards; ``timeline``/``replay`` keep the copy, keyed by the
object's version (or ETag), so a second look does not download it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collectors.store.client import Store, StoreError
from collectors.store.seal import CUSTODY_SUFFIX, META_FILE_SHA
from collectors.store.uri import S3Url

CHUNK = 1 << 20
CASE_FILE = "case.json"


def store_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exuvia" / "store"


def download(store: Store, url: S3Url, dest: Path) -> str:
    """Stream ``url`` to ``dest`` (via ``dest.tmp``); returns the file's SHA-256."""
    tmp = dest.with_name(dest.name + ".tmp")
    digest = hashlib.sha256()
    try:
        with store.body(url.bucket, url.key) as body, tmp.open("wb") as out:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"writing the cache copy of {url} failed: {err.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.rename(tmp, dest)
    return digest.hexdigest()


class Fetched:
    """A bundle (or a case) copied from the store, and what the store says of it."""

    def __init__(self, local: Path, url: S3Url, head: dict[str, Any], file_sha256: str) -> None:
        self.local = local
        self.url = url
        self.head = head
        self.file_sha256 = file_sha256

    @property
    def metadata(self) -> dict[str, str]:
        meta: dict[str, str] = self.head.get("Metadata") or {}
        return meta

    def store_problems(self) -> list[str]:
        """The object's metadata must agree with the bytes downloaded."""
        want = self.metadata.get(META_FILE_SHA)
        if want and want != self.file_sha256:
            return [f"the object's {META_FILE_SHA} metadata ({want[:16]}…) differs from its bytes"]
        return []


def fetch_bundle(store: Store, url: S3Url, directory: Path) -> Fetched:
    """The bundle and, if present, its custody sidecar, into ``directory``."""
    if not url.name:
        raise StoreError(f"{url}: name a bundle object or a case prefix")
    head = store.head(url.bucket, url.key)
    directory.mkdir(parents=True, exist_ok=True)
    local = directory / url.name
    sha = download(store, url, local)
    side = url.sibling(CUSTODY_SUFFIX)
    if store.exists(side.bucket, side.key):
        download(store, side, directory / side.name)
    return Fetched(local, url, head, sha)


def is_case_prefix(store: Store, url: S3Url) -> bool:
    base = url.key if url.is_prefix else url.key + "/"
    return store.exists(url.bucket, base + CASE_FILE)


def fetch_case(store: Store, url: S3Url, directory: Path) -> Path:
    """Every object directly under the case prefix, into ``directory``."""
    base = url.key if url.is_prefix else url.key + "/"
    directory.mkdir(parents=True, exist_ok=True)
    for key in store.list_keys(url.bucket, base):
        name = key[len(base) :]
        if not name or "/" in name or name in (".", ".."):
            continue  # nested prefixes are not part of a case directory
        download(store, S3Url(url.bucket, key), directory / name)
    return directory


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private directory under the store cache, removed afterwards."""
    root = store_cache_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    d = Path(tempfile.mkdtemp(prefix="fetch-", dir=root))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def cached_bundle(store: Store, url: S3Url) -> Path:
    """A kept copy for timeline/replay, keyed by the object's version or ETag."""
    head = store.head(url.bucket, url.key)
    tag = str(head.get("VersionId") or head.get("ETag") or "")
    key = hashlib.sha256(f"{url}\0{tag}".encode()).hexdigest()[:24]
    directory = store_cache_dir() / key
    local = directory / url.name
    if local.is_file() and local.stat().st_size == int(head.get("ContentLength") or -1):
        return local
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    download(store, url, local)
    side = url.sibling(CUSTODY_SUFFIX)
    if store.exists(side.bucket, side.key):
        download(store, side, directory / side.name)
    return local
