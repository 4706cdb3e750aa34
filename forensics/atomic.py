"""Writing a small file so that its name only ever holds a whole version of it.

A temporary file in the same directory, written, fsync'ed, renamed over the
final name, and the directory fsync'ed: a crash leaves the old version or the
new one under the name, never half of one.

What is kept *beside* a bundle and never in it (the examiner's notes,
forensics/notes.py; scan results, forensics/scan/sidecar.py) is written this
way, at :func:`sidecar_path`: ``<bundle><suffix>`` when the bundle's directory
is writable, else a place under :func:`user_cache_dir`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from forensics.errors import OutputError


def write_atomic(
    path: Path, data: bytes | bytearray, what: str = "file", mode: int = 0o640
) -> None:
    """Replace ``path`` with ``data``; OutputError (naming ``what``) on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as err:
        raise OutputError(f"cannot write the {what} {path}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        sync_dir(path.parent)
    except OSError as err:
        raise OutputError(f"cannot write the {what} {path}: {err.strerror}") from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def user_cache_dir(sub: str) -> Path:
    """``$XDG_CACHE_HOME/exuvia/<sub>`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exuvia" / sub


def sidecar_path(bundle: Path, suffix: str, fallback: Path | None) -> Path:
    """Where a file kept beside ``bundle`` is written: ``<bundle><suffix>``, or
    ``fallback`` (when there is one) if the bundle's directory is not writable."""
    beside = bundle.with_name(bundle.name + suffix)
    if fallback is None or os.access(bundle.parent, os.W_OK):
        return beside
    return fallback


def sync_dir(directory: Path) -> None:
    """fsync a directory, so a rename in it is durable (best effort where refused)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
