"""Where built timelines live, and finding one again.

A store is a cache: the file ``<bundle>.exuvia-cache/timeline-<key>-<options>.sqlite``
next to the bundle, or under ``$XDG_CACHE_HOME/exuvia`` (default
``~/.cache/exuvia``) when the bundle's directory is not writable. ``key`` is
the manifest's SHA-256 (a hash of what was read for a bundle without one),
``options`` a hash of the schema version and the time zone. A store is built
under a temporary name and renamed when complete; the bundle is only read.

Opening again is cheap: a store records the bundle file's signature (device,
inode, size, times), so an unchanged bundle is not read at all; a changed
signature means one scan of the bundle to learn its key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from forensics.errors import BundleError, OutputError
from forensics.scan.sidecar import signature as scan_signature
from forensics.timeline.build import Progress, build_store, scan
from forensics.timeline.bundleio import bundle_signature
from forensics.timeline.logtime import resolve_tz, tz_name
from forensics.timeline.query import Timeline
from forensics.timeline.store import SCHEMA_VERSION, GrowingHooks


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exuvia"


def cache_dirs(bundle: Path) -> list[Path]:
    """Where a bundle's timeline may be: beside it first, then the user's cache."""
    return [bundle.parent / f"{bundle.name}.exuvia-cache", user_cache_dir()]


def options_key(tz: str) -> str:
    return hashlib.sha256(f"schema={SCHEMA_VERSION};tz={tz}".encode()).hexdigest()[:8]


def _try_open(path: Path) -> Timeline | None:
    try:
        return Timeline(path)
    except (BundleError, sqlite3.Error, OSError):
        return None


def _remember_signature(path: Path, sig: str) -> None:
    """Record the bundle's current signature in a store found by its key (best effort)."""
    with contextlib.suppress(sqlite3.Error, OSError):
        con = sqlite3.connect(path, timeout=0.5)
        try:
            con.execute("UPDATE meta SET value = ? WHERE key = 'bundle_sig'", (f'"{sig}"',))
            con.commit()
        finally:
            con.close()


STALE_S = 24 * 3600


def _sweep(d: Path) -> None:
    """Remove the work directories of builds that were killed (over a day old)."""
    now = time.time()
    for work in d.glob(".timeline-*.tmp"):
        with contextlib.suppress(OSError):
            if now - work.stat().st_mtime > STALE_S:
                shutil.rmtree(work, ignore_errors=True)


def _same_scan(tl: Timeline, bundle: Path) -> bool:
    """Whether the store was built with the scan results that are beside the bundle now
    (`exuvia scan` adds or replaces them without touching the bundle)."""
    manifest = tl.meta.get("manifest_sha256")
    now = scan_signature(bundle, manifest if isinstance(manifest, str) else None)
    return (tl.meta.get("scan_sig") or "") == now


def find_cached(bundle: Path, tz: str, dirs: list[Path]) -> Timeline | None:
    """A store built for this very bundle file (same signature), without reading it."""
    sig = bundle_signature(bundle)
    opt = options_key(tz)
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob(f"timeline-*-{opt}.sqlite")):
            tl = _try_open(f)
            if tl is None:
                continue
            if tl.meta.get("bundle_sig") == sig and _same_scan(tl, bundle):
                return tl
            tl.close()
    return None


def open_timeline(
    bundle: str | Path,
    *,
    tz: str = "UTC",
    rebuild: bool = False,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    growing: GrowingHooks | None = None,
) -> Timeline:
    """The timeline of ``bundle``: from the cache, or built now (and cached).

    ``tz`` applies to log times without a zone (ValueError when unknown).
    ``growing``: when it is built now, it can be read while it grows
    (:mod:`forensics.timeline.growing`): ``growing.started(path)`` names the
    growing store (under the work directory's name, never a finished store's),
    ``growing.sealing()`` comes before it is sealed and moved to its final name.
    Raises BundleError for a file that is not a bundle, OutputError when no
    cache directory is writable.
    """
    path = Path(bundle)
    if not path.is_file():
        raise BundleError(f"cannot open {path}: no such file")
    zone = resolve_tz(tz)
    tzn = tz_name(zone)
    dirs = [Path(cache_dir)] if cache_dir is not None else cache_dirs(path)
    if not rebuild:
        found = find_cached(path, tzn, dirs)
        if found is not None:
            return found
    note = progress or (lambda _m: None)
    note("scanning the bundle")
    sc = scan(path)
    name = f"timeline-{sc.key[:24]}-{options_key(tzn)}.sqlite"
    if not rebuild:
        for d in dirs:
            tl = _try_open(d / name)
            if tl is not None and tl.meta.get("key") == sc.key and _same_scan(tl, path):
                tl.close()
                _remember_signature(d / name, bundle_signature(path))
                return Timeline(d / name)
            if tl is not None:
                tl.close()
    errors: list[str] = []
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o750)
            _sweep(d)
            work = Path(tempfile.mkdtemp(dir=d, prefix=".timeline-", suffix=".tmp"))
        except OSError as err:
            errors.append(f"{d}: {err.strerror}")
            continue
        try:
            build_store(path, work / "timeline.sqlite", zone, sc, progress, growing=growing)
            os.replace(work / "timeline.sqlite", d / name)
        except sqlite3.Error as err:
            raise OutputError(f"building the timeline in {d} failed: {err}") from err
        except OSError as err:
            raise OutputError(f"building the timeline in {d} failed: {err.strerror}") from err
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return Timeline(d / name)
    raise OutputError("no writable directory for the timeline cache: " + "; ".join(errors))
