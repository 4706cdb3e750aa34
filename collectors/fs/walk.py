"""A walk of the target's root that can never leave it.

Every directory is opened relative to its parent with O_NOFOLLOW|O_DIRECTORY
(never by a path string through /proc/<pid>/root), so a symlink anywhere, even
one swapped in during the walk, cannot lead outside. Directories are opened with
O_NOATIME so listing them leaves their access times alone; a directory whose
identity changed between listing and descending is skipped and recorded.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from collectors.fs.statx import Stat, fstatx, statx
from forensics.records import Skip, skip_from_oserror

COLLECTOR = "filesystem"
O_NOATIME = getattr(os, "O_NOATIME", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: how many ancestor directory fds the walk keeps open at once
MAX_OPEN_CHAIN = 128
#: a directory still to walk: its path components and the (dev, ino) seen when listed
_Pending = tuple[tuple[bytes, ...], tuple[tuple[int, int], int]]


@dataclass(slots=True)
class WalkEntry:
    """One entry. ``dir_fd`` + ``name`` address it; the fd is valid only until the
    walk is resumed."""

    path: bytes
    name: bytes
    dir_fd: int
    st: Stat
    link_target: bytes | None = None
    #: True: in the overlay upper layer (written since the container started);
    #: None: no upper layer visible, so unknown
    changed: bool | None = None


@dataclass(slots=True)
class Whiteout:
    """An overlay whiteout: ``path`` was deleted since the container started."""

    path: bytes
    st: Stat
    opaque_dir: bool = False


#: an upper-layer directory with more names than this is not held in memory:
#: each name of the merged directory is then looked up in it with statx
UPPER_NAMES_MAX = 65536


@dataclass(slots=True)
class _UpperDir:
    """The overlay upper layer's copy of one directory: which names it has
    (written since the container started) and which of them are whiteouts."""

    fd: int
    names: set[bytes] | None  # None: too many to hold, so probed one by one
    whiteouts: list[bytes]

    def __contains__(self, name: bytes) -> bool:
        if self.names is not None:
            return name in self.names
        try:
            statx(self.fd, name)
        except OSError:
            return False
        return True


def _upper_listing(chain: _Chain, comps: tuple[bytes, ...]) -> _UpperDir | None:
    """The upper layer's copy of a directory; None if absent.

    Memory stays bounded whatever the directory holds: at most UPPER_NAMES_MAX
    names are kept, and only whiteout names besides (a whiteout is a 0:0
    character device, so only character devices are stat'ed).
    """
    try:
        fd, _ = chain.open(comps) if comps else (chain.root_fd, False)
    except OSError:
        return None
    names: set[bytes] | None = set()
    whiteouts: list[bytes] = []
    try:
        with os.scandir(fd) as listing:
            for entry in listing:
                name = os.fsencode(entry.name)
                if names is not None:
                    names.add(name)
                    if len(names) > UPPER_NAMES_MAX:
                        names = None
                if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                    continue
                if entry.is_symlink():
                    continue
                try:
                    if _is_whiteout(statx(fd, name)):
                        whiteouts.append(name)
                except OSError:
                    continue
    except OSError:
        return None
    whiteouts.sort()
    return _UpperDir(fd, names, whiteouts)


def _is_whiteout(st: Stat) -> bool:
    return st.kind == "chardev" and st.rdev == (0, 0)


class _Chain:
    """Open fds of the directories on the current path: a window of at most
    MAX_OPEN_CHAIN of the deepest ones, so a walk 2,000 levels down keeps few
    descriptors open and still opens each directory from its parent's fd."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        #: every component of the current path; fds[i] is the fd of names[: i + 1]
        self.names: list[bytes] = []
        self.fds: dict[int, int] = {}
        self.noatime_refused = False

    def _open(self, parent: int, name: bytes) -> int:
        if O_NOATIME and not self.noatime_refused:
            try:
                return os.open(name, DIR_FLAGS | O_NOATIME, dir_fd=parent)
            except PermissionError:
                self.noatime_refused = True
        return os.open(name, DIR_FLAGS, dir_fd=parent)

    def _truncate(self, depth: int) -> None:
        for level in [lv for lv in self.fds if lv >= depth]:
            os.close(self.fds.pop(level))
        del self.names[depth:]

    def open(self, comps: tuple[bytes, ...]) -> tuple[int, bool]:
        """fd of the directory at ``comps`` (kept by the chain; second value: False)."""
        common = 0
        while (
            common < len(self.names) and common < len(comps) and self.names[common] == comps[common]
        ):
            common += 1
        self._truncate(common)
        # the open levels are the window's: contiguous and ending at common - 1;
        # when the window no longer reaches that far up, start again at the root
        level = common - 1
        if level in self.fds:
            fd = self.fds[level]
        else:
            level, fd = -1, self.root_fd
        # the path beyond it is (re)opened one component at a time
        del self.names[level + 1 :]
        for i in range(level + 1, len(comps)):
            try:
                fd = self._open(fd, comps[i])
            except OSError:
                self._truncate(i)
                raise
            self.fds[i] = fd
            self.names.append(comps[i])
            if len(self.fds) > MAX_OPEN_CHAIN:
                os.close(self.fds.pop(min(self.fds)))
        return fd, False

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        self.names.clear()


def _errname(err: OSError) -> str | None:
    return errno.errorcode.get(err.errno or 0)


def walk(
    root_fd: int,
    *,
    no_descend: frozenset[bytes] = frozenset(),
    max_depth: int = 4096,
    upper_fd: int | None = None,
) -> Iterator[WalkEntry | Whiteout | Skip]:
    """Depth-first, name-ordered walk below ``root_fd``; yields entries and skips.

    ``no_descend``: absolute paths (pseudo filesystems) whose directory entry is
    recorded but whose contents are not. ``upper_fd``: the overlay upper layer
    (a host directory), read alongside to mark changes and deletions.
    """
    root_st = fstatx(root_fd)
    yield WalkEntry(b"/", b"", root_fd, root_st, changed=None)
    chain = _Chain(root_fd)
    upper = _Chain(upper_fd) if upper_fd is not None else None
    stack: list[tuple[tuple[bytes, ...], tuple[tuple[int, int], int]]] = [
        ((), (root_st.dev, root_st.ino))
    ]
    noatime_reported = False
    try:
        while stack:
            comps, ident = stack.pop()
            path = b"/" + b"/".join(comps)
            try:
                fd, owned = chain.open(comps) if comps else (root_fd, False)
            except OSError as err:
                yield _dir_skip(path, err)
                continue
            if chain.noatime_refused and not noatime_reported:
                noatime_reported = True
                yield Skip(
                    COLLECTOR,
                    _t(path),
                    "kernel refused O_NOATIME; directory access times may have changed",
                    "EPERM",
                )
            try:
                here = fstatx(fd)
                if (here.dev, here.ino) != ident:
                    yield Skip(
                        COLLECTOR, _t(path), "directory was replaced during the walk; not descended"
                    )
                    continue
                try:
                    names = _sorted_names(fd)
                except OSError as err:
                    yield skip_from_oserror(COLLECTOR, _t(path), err, "cannot list directory")
                    continue
                subdirs: list[_Pending] = []
                base = path if path != b"/" else b""
                in_upper = _upper_listing(upper, comps) if upper is not None else None
                if in_upper is not None:
                    for uname in in_upper.whiteouts:
                        try:
                            ust = statx(in_upper.fd, uname)
                        except OSError:
                            continue
                        if _is_whiteout(ust):
                            yield Whiteout(base + b"/" + uname, ust)
                for name in names:
                    child = base + b"/" + name
                    try:
                        st = statx(fd, name)
                    except OSError as err:
                        reason = (
                            "vanished during the walk"
                            if err.errno == errno.ENOENT
                            else (f"cannot stat: {err.strerror}")
                        )
                        yield Skip(
                            COLLECTOR, child.decode("utf-8", "replace"), reason, _errname(err)
                        )
                        continue
                    changed = None
                    if upper is not None:
                        changed = in_upper is not None and name in in_upper
                    entry = WalkEntry(child, name, fd, st, changed=changed)
                    kind = st.kind
                    if kind == "symlink":
                        try:
                            entry.link_target = os.readlink(name, dir_fd=fd)
                        except OSError as err:
                            yield skip_from_oserror(COLLECTOR, _t(child), err, "cannot read link")
                    yield entry
                    if kind == "dir":
                        if child in no_descend:
                            yield Skip(
                                COLLECTOR,
                                _t(child),
                                "pseudo filesystem: contents not walked (its mount is recorded)",
                            )
                        elif len(comps) + 1 >= max_depth:
                            yield Skip(
                                COLLECTOR,
                                _t(child),
                                f"deeper than {max_depth} levels; not descended",
                            )
                        else:
                            subdirs.append(((*comps, name), (st.dev, st.ino)))
                stack.extend(reversed(subdirs))
            finally:
                if owned:
                    os.close(fd)
    finally:
        chain.close()
        if upper is not None:
            upper.close()


def _sorted_names(fd: int) -> list[bytes]:
    """The directory's names as bytes, sorted; encoded in place, so a directory
    of a million names never holds both a str and a bytes copy of them all."""
    names: list[Any] = os.listdir(fd)
    for i, n in enumerate(names):
        names[i] = os.fsencode(n)
    names.sort()
    return names


def _t(path: bytes) -> str:
    return path.decode("utf-8", "replace")


def _dir_skip(path: bytes, err: OSError) -> Skip:
    if err.errno in (errno.ELOOP, errno.ENOTDIR):
        return Skip(
            COLLECTOR,
            _t(path),
            "directory was replaced by a non-directory during the walk; not followed",
            _errname(err),
        )
    if err.errno == errno.ENOENT:
        return Skip(COLLECTOR, _t(path), "directory vanished during the walk", "ENOENT")
    return skip_from_oserror(COLLECTOR, _t(path), err, "cannot open directory")
