"""statx(2) through libc: nanosecond times and birth time, never following symlinks.

Python 3.11 has no os.statx; this is the one place that calls it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import struct
import threading
from typing import NamedTuple

AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_STATX_DONT_SYNC = 0x4000
STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
STATX_MNT_ID = 0x1000
_MASK = STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID

# struct statx: see include/uapi/linux/stat.h (256 bytes)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_statx = getattr(_libc, "statx", None)
if _statx is not None:
    # No argtypes: (int, bytes, int, int, buffer) convert to (int, char *, int,
    # unsigned, void *) as they are, and per-call argument conversion was half the
    # cost of a statx from Python. Every caller passes exactly those types.
    _statx.restype = ctypes.c_int


class Stat(NamedTuple):
    """What statx said about one entry. Times are UTC ns; ``btime_ns`` may be None.

    A named tuple: immutable like the frozen dataclass it was, and four times
    cheaper to build, which counts at one per entry walked.
    """

    mode: int
    uid: int
    gid: int
    size: int
    ino: int
    nlink: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    btime_ns: int | None
    dev: tuple[int, int]
    rdev: tuple[int, int]
    mnt_id: int | None

    @property
    def kind(self) -> str:
        return file_kind(self.mode)


_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
}


def file_kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "unknown")


# the whole fixed part of struct statx in one unpack: head, four timestamps, tail
_ALL = struct.Struct("=IIQIIIH2xQQQQ" + "qI4x" * 4 + "IIIIQ")
_BUF = ctypes.create_string_buffer(256)  # the walk is single-threaded: one buffer serves


def statx(dir_fd: int, name: bytes, *, empty_path: bool = False) -> Stat:
    """statx(dir_fd, name) without following a final symlink; raises OSError."""
    if _statx is None:
        return _fallback(dir_fd, name, empty_path)
    buf = (
        _BUF
        if threading.current_thread() is threading.main_thread()
        else (ctypes.create_string_buffer(256))
    )
    flags = AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC | (AT_EMPTY_PATH if empty_path else 0)
    if _statx(dir_fd, name, flags, _MASK, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fsdecode(name))
    (
        mask, _blksize, _attrs, nlink, uid, gid, mode, ino, size, blocks, _amask,
        a_s, a_n, b_s, b_n, c_s, c_n, m_s, m_n,
        rdev_maj, rdev_min, dev_maj, dev_min, mnt_id,
    ) = _ALL.unpack_from(buf, 0)  # fmt: skip
    return Stat(
        mode=mode,
        uid=uid,
        gid=gid,
        size=size,
        ino=ino,
        nlink=nlink,
        blocks=blocks,
        atime_ns=a_s * 1_000_000_000 + a_n,
        mtime_ns=m_s * 1_000_000_000 + m_n,
        ctime_ns=c_s * 1_000_000_000 + c_n,
        btime_ns=b_s * 1_000_000_000 + b_n if mask & STATX_BTIME else None,
        dev=(dev_maj, dev_min),
        rdev=(rdev_maj, rdev_min),
        mnt_id=mnt_id if mask & STATX_MNT_ID else None,
    )


def fstatx(fd: int) -> Stat:
    return statx(fd, b"", empty_path=True)


def _fallback(dir_fd: int, name: bytes, empty_path: bool) -> Stat:
    st = os.fstat(dir_fd) if empty_path else os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    return Stat(
        mode=st.st_mode,
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size,
        ino=st.st_ino,
        nlink=st.st_nlink,
        blocks=st.st_blocks,
        atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        btime_ns=None,
        dev=(os.major(st.st_dev), os.minor(st.st_dev)),
        rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)),
        mnt_id=None,
    )
