"""Browse a live target's root interactively: list, read a head, hash on demand.

Read-only and confined the same way as the capture's walk: where we may, a
kernel-enforced read-only, noatime view of the target's mount namespace
(collectors.fs.readonly_view); otherwise /proc/<pid>/root with O_NOATIME, and
``view_note`` says so. Every path is resolved one component at a time from the
root with ``O_NOFOLLOW|O_DIRECTORY``; a symlink is shown with its target and
never followed; files are opened ``O_NOFOLLOW|O_NONBLOCK`` and only when
regular. "Changed since start" comes from the overlay upper layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from collectors.fs.mounts import parse_mountinfo, root_mount
from collectors.fs.readonly_view import ReadOnlyView, open_readonly_view
from collectors.fs.statx import Stat, fstatx, statx
from collectors.fs.walk import DIR_FLAGS, O_NOATIME, WalkEntry, Whiteout, walk
from forensics.errors import AccessDenied, ExuviaError, TargetGone

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class DirEntry:
    path: bytes
    name: bytes
    st: Stat | None  # None: could not stat (``error`` says why)
    link_target: bytes | None = None
    changed: bool | None = None  # None: unknown (no upper layer)
    error: str | None = None

    @property
    def kind(self) -> str:
        return self.st.kind if self.st is not None else "?"


@dataclass(frozen=True, slots=True)
class ChangedEntry:
    path: bytes
    kind: str  # "file", "dir", ..., or "deleted"
    size: int | None
    mtime_ns: int | None


def split_path(path: bytes) -> tuple[bytes, ...]:
    """``b"/a/b"`` -> (b"a", b"b"); "." and "" dropped; ".." refused."""
    comps = tuple(c for c in path.split(b"/") if c not in (b"", b"."))
    if b".." in comps:
        raise ExuviaError(f"path {path!r} has '..': give an absolute path inside the target")
    return comps


def _open_noatime(name: bytes | str, flags: int, dir_fd: int | None) -> int:
    if O_NOATIME:
        try:
            return os.open(name, flags | O_NOATIME, dir_fd=dir_fd)
        except PermissionError:
            pass
    return os.open(name, flags, dir_fd=dir_fd)


class TargetRoot:
    """The target's root, held open. ``close()`` when done."""

    def __init__(self, pid: int, procfs: str = "/proc", upperdir: str | None = None) -> None:
        self.pid = pid
        view = open_readonly_view(procfs, pid)
        self._view: ReadOnlyView | None = None
        if isinstance(view, ReadOnlyView):
            self._view = view
            self.root_fd = os.dup(view.root_fd)
            self.view_note = "kernel-enforced read-only, noatime view"
        else:
            try:
                self.root_fd = _open_noatime(
                    f"{procfs}/{pid}/root", os.O_RDONLY | os.O_DIRECTORY, None
                )
            except FileNotFoundError as err:
                raise TargetGone(f"process {pid} is gone") from err
            except PermissionError as err:
                raise AccessDenied(f"cannot open {procfs}/{pid}/root: permission denied") from err
            self.view_note = f"/proc/{pid}/root with O_NOATIME (no read-only view: {view})"
        self.upper_fd: int | None = None
        self.upper_note = ""
        self._open_upper(procfs, upperdir)

    def _open_upper(self, procfs: str, upperdir: str | None) -> None:
        upper = upperdir
        if upper is None:
            try:
                with open(f"{procfs}/{self.pid}/mountinfo", "rb") as f:
                    root = root_mount(parse_mountinfo(f.read()))
            except OSError:
                root = None
            if root is not None and root.fstype == "overlay":
                upper = root.overlay.get("upperdir")
        if not upper:
            self.upper_note = "changed-since-start unknown: the root is not an overlay"
            return
        try:
            self.upper_fd = _open_noatime(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, None)
        except OSError as err:
            self.upper_note = f"changed-since-start unknown: {upper}: {err.strerror}"

    def close(self) -> None:
        for fd in (self.root_fd, self.upper_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.upper_fd = None
        if self._view is not None:
            self._view.close()
            self._view = None

    # -- resolution --------------------------------------------------------------
    def _open_dir(self, base: int, comps: tuple[bytes, ...]) -> int:
        """A new fd for the directory at ``comps`` below ``base``, never following
        a symlink (ELOOP/ENOTDIR come out as OSError)."""
        fd = os.dup(base)
        try:
            for c in comps:
                nfd = _open_noatime(c, DIR_FLAGS, fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def list_dir(self, path: bytes) -> list[DirEntry]:
        """The entries of directory ``path`` (dirs first, then by name)."""
        comps = split_path(path)
        fd = self._open_dir(self.root_fd, comps)
        try:
            names = sorted(os.fsencode(n) for n in os.listdir(fd))
            upper = self._upper_names(comps)
            base = b"/" + b"/".join(comps) if comps else b""
            out: list[DirEntry] = []
            for name in names:
                child = base + b"/" + name
                changed = None if upper is None else name in upper
                try:
                    st = statx(fd, name)
                except OSError as err:
                    out.append(DirEntry(child, name, None, changed=changed, error=err.strerror))
                    continue
                link = None
                if st.kind == "symlink":
                    with contextlib.suppress(OSError):
                        link = os.readlink(name, dir_fd=fd)
                out.append(DirEntry(child, name, st, link, changed))
        finally:
            os.close(fd)
        out.sort(key=lambda e: (e.kind != "dir", e.name))
        return out

    def _upper_names(self, comps: tuple[bytes, ...]) -> set[bytes] | None:
        if self.upper_fd is None:
            return None
        try:
            fd = self._open_dir(self.upper_fd, comps)
        except OSError:
            return set()  # not in the upper layer: nothing below changed
        try:
            return {os.fsencode(n) for n in os.listdir(fd)}
        except OSError:
            return set()
        finally:
            os.close(fd)

    def changed(self, limit: int = 10_000) -> Iterator[ChangedEntry]:
        """Entries written or deleted since the container started (the upper layer)."""
        if self.upper_fd is None:
            return
        n = 0
        for item in walk(self.upper_fd):
            if n >= limit:
                return
            if isinstance(item, Whiteout):
                n += 1
                yield ChangedEntry(item.path, "deleted", None, item.st.mtime_ns)
            elif isinstance(item, WalkEntry) and item.path != b"/":
                n += 1
                st = item.st
                yield ChangedEntry(item.path, st.kind, st.size, st.mtime_ns)

    # -- content -----------------------------------------------------------------
    def _open_file(self, path: bytes) -> int:
        comps = split_path(path)
        if not comps:
            raise ExuviaError("/ is a directory")
        dfd = self._open_dir(self.root_fd, comps[:-1])
        try:
            st = statx(dfd, comps[-1])
            if st.kind != "file":
                raise ExuviaError(f"{path.decode('utf-8', 'replace')} is a {st.kind}, not a file")
            fd = _open_noatime(comps[-1], FILE_FLAGS, dfd)
        finally:
            os.close(dfd)
        got = fstatx(fd)
        if (got.dev, got.ino) != (st.dev, st.ino) or not stat.S_ISREG(got.mode):
            os.close(fd)
            raise ExuviaError(f"{path.decode('utf-8', 'replace')} was replaced while opened")
        return fd

    def read_head(self, path: bytes, limit: int = 64 << 10) -> tuple[bytes, int]:
        """The first ``limit`` bytes of a regular file, and its size."""
        fd = self._open_file(path)
        try:
            size = os.fstat(fd).st_size
            return os.pread(fd, limit, 0), size
        finally:
            os.close(fd)

    def sha256(self, path: bytes) -> tuple[str, int]:
        """SHA-256 and byte count of a regular file, read to its end."""
        fd = self._open_file(path)
        digest = hashlib.sha256()
        total = 0
        try:
            while chunk := os.read(fd, CHUNK):
                digest.update(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
        return digest.hexdigest(), total

    def estimate(self, no_descend: frozenset[bytes]) -> tuple[int, int]:
        """(entries, bytes of regular files) below the root, for a capture's ETA."""
        entries = size = 0
        for item in walk(self.root_fd, no_descend=no_descend):
            if not isinstance(item, WalkEntry):
                continue
            st = item.st
            entries += 1
            if st.kind == "file":
                size += st.size
        return entries, size
