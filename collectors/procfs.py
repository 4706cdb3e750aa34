"""Small, bytes-safe readers and parsers for procfs.

Everything here reads through a configurable procfs root (never the global
``/proc`` alone) and caps every read. Parsers take bytes and raise ValueError on
malformed input; readers raise OSError and let the collector decide whether the
error means "the process is gone" (:func:`is_gone`) or something worth a Skip.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

MAX_READ = 1 << 20  # bytes per /proc file
MAX_FDS = 100_000  # fds looked at per process

_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ESRCH})

# capability(7) bit numbers, as of Linux 6.x (CAP_LAST_CAP == 40)
CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}
PF_KTHREAD = 0x00200000


def is_gone(err: OSError) -> bool:
    """True when the error means the process (or the file) no longer exists."""
    return err.errno in _GONE_ERRNOS


def read_capped(path: str, cap: int = MAX_READ) -> tuple[bytes, bool]:
    """The first ``cap`` bytes of ``path`` and whether there was more."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        chunks: list[bytes] = []
        total = 0
        while total <= cap:
            chunk = os.read(fd, min(1 << 16, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        return data[:cap], True
    return data, False


def readlink(path: str) -> bytes:
    """The exact bytes of a symlink's target (e.g. ``/proc/N/exe``)."""
    return os.readlink(os.fsencode(path))


def list_pids(procfs: str) -> list[int]:
    """Every numeric entry of the procfs root (thread-group leaders), sorted."""
    return sorted(int(name) for name in os.listdir(procfs) if name.isdigit())


def parse_ns_link(target: bytes) -> int:
    """The inode of a namespace link target such as ``pid:[4026531836]``."""
    lb, rb = target.rfind(b"["), target.rfind(b"]")
    if lb < 0 or rb < lb:
        raise ValueError(f"not a namespace link: {target!r}")
    return int(target[lb + 1 : rb])


def pidns_inode(procfs: str, pid: int) -> int:
    """The inode of ``/proc/<pid>/ns/pid`` (raises OSError, ValueError)."""
    return parse_ns_link(readlink(f"{procfs}/{pid}/ns/pid"))


def nspid_depth(procfs: str, pid: int) -> int:
    """How many PID namespaces (from the reader's down) ``pid`` is visible in."""
    raw, _ = read_capped(f"{procfs}/{pid}/status")
    chain = parse_status(raw).get("NSpid", "")
    return len(chain.split())


def pidns_members(
    procfs: str, ns_inode: int, depth: int | None = None
) -> tuple[list[int], list[tuple[int, OSError]]]:
    """Host pids whose PID namespace is ``ns_inode``, and the pids that failed.

    Processes that exit while we look are silently left out. When ns/pid is
    not readable (EACCES: a process more privileged than us), a process whose
    NSpid chain length differs from ``depth`` (the target's) cannot be in the
    target's namespace and is left out too; the rest are returned as failed so
    the caller can record them.
    """
    members: list[int] = []
    failed: list[tuple[int, OSError]] = []
    for pid in list_pids(procfs):
        try:
            if pidns_inode(procfs, pid) == ns_inode:
                members.append(pid)
        except OSError as err:
            if is_gone(err):
                continue
            try:
                if depth is not None and nspid_depth(procfs, pid) != depth:
                    continue
            except OSError:
                pass
            failed.append((pid, err))
        except ValueError:
            continue
    return members, failed


@dataclass(frozen=True, slots=True)
class StatInfo:
    """The fields of ``/proc/N/stat`` that exuvia uses (ticks, pages as given)."""

    pid: int
    comm: bytes
    state: str
    ppid: int
    pgrp: int
    session: int
    tty_nr: int
    flags: int
    utime: int
    stime: int
    num_threads: int
    starttime: int
    vsize: int
    rss_pages: int


def parse_stat(raw: bytes) -> StatInfo:
    """Parse ``/proc/N/stat``; comm may hold spaces and parentheses.

    comm is everything between the first '(' and the LAST ')', which is safe
    because no later field can contain ')'.
    """
    lp, rp = raw.find(b"("), raw.rfind(b")")
    if lp < 0 or rp < lp:
        raise ValueError("stat: no (comm)")
    rest = raw[rp + 1 :].split()
    if len(rest) < 22:
        raise ValueError(f"stat: only {len(rest)} fields after comm")

    # rest[0] is field 3 (state); field n is rest[n - 3]
    def f(n: int) -> int:
        return int(rest[n - 3])

    return StatInfo(
        pid=int(raw[:lp]),
        comm=raw[lp + 1 : rp],
        state=rest[0].decode("ascii", "replace"),
        ppid=f(4),
        pgrp=f(5),
        session=f(6),
        tty_nr=f(7),
        flags=f(9),
        utime=f(14),
        stime=f(15),
        num_threads=f(20),
        starttime=f(22),
        vsize=f(23),
        rss_pages=f(24),
    )


def parse_status(raw: bytes) -> dict[str, str]:
    """``Key:\\tvalue`` lines of ``/proc/N/status`` as a dict of stripped strings."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_ids(value: str) -> dict[str, int]:
    """A status ``Uid:``/``Gid:`` value as {real, effective, saved, fs}."""
    parts = [int(x) for x in value.split()]
    if len(parts) != 4:
        raise ValueError(f"expected 4 ids, got {value!r}")
    return dict(zip(("real", "effective", "saved", "fs"), parts, strict=True))


def parse_int_list(value: str) -> list[int]:
    return [int(x) for x in value.split()]


def decode_caps(hex_mask: str) -> list[str]:
    """Names of the capability bits set in a status ``Cap*:`` hex mask."""
    mask = int(hex_mask, 16)
    names: list[str] = []
    bit = 0
    while mask >> bit:
        if mask >> bit & 1:
            names.append(CAP_NAMES[bit] if bit < len(CAP_NAMES) else f"CAP_{bit}")
        bit += 1
    return names


def split_nul(raw: bytes) -> list[bytes]:
    """NUL-separated strings (cmdline, environ); a trailing NUL ends the last one."""
    if not raw:
        return []
    parts = raw.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return parts


def parse_environ(raw: bytes) -> list[tuple[bytes, bytes]]:
    """(name, value) pairs in order; an entry without '=' has an empty value."""
    out: list[tuple[bytes, bytes]] = []
    for entry in split_nul(raw):
        name, _, value = entry.partition(b"=")
        out.append((name, value))
    return out


def parse_maps(raw: bytes) -> list[tuple[bytes, bool]]:
    """Distinct mapped path names of ``/proc/N/maps`` and whether each is deleted.

    Anonymous mappings (no name) are left out; pseudo names such as ``[heap]``
    are kept. Order is first appearance.
    """
    seen: dict[bytes, bool] = {}
    for line in raw.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        name = parts[5]
        deleted = name.endswith(b" (deleted)")
        if deleted:
            name = name[: -len(b" (deleted)")]
        if name not in seen:
            seen[name] = deleted
    return list(seen.items())


def parse_fdinfo(raw: bytes) -> dict[str, int | str]:
    """``pos`` (int), ``flags`` (octal string as shown), ``mnt_id`` and ``ino`` (int)."""
    out: dict[str, int | str] = {}
    for line in raw.decode("ascii", "replace").splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "flags":
            out["flags"] = value
        elif key in ("pos", "mnt_id", "ino") and value.isdigit():
            out[key] = int(value)
    return out


def iter_fds(procfs: str, pid: int, cap: int = MAX_FDS) -> Iterator[tuple[int, bytes | None]]:
    """(fd, readlink target) for up to ``cap`` fds; a target is None if it vanished.

    Raises OSError if the fd directory cannot be listed. Yields one extra
    ``(-1, None)`` when the cap was hit, so the caller can record a Skip.
    """
    base = f"{procfs}/{pid}/fd"
    count = 0
    with os.scandir(base) as it:
        for entry in it:
            if not entry.name.isdigit():
                continue
            if count >= cap:
                yield -1, None
                return
            count += 1
            try:
                target: bytes | None = readlink(f"{base}/{entry.name}")
            except OSError:
                target = None
            yield int(entry.name), target


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def boot_time_ns() -> int:
    """Boot time as CLOCK_REALTIME - CLOCK_BOOTTIME (UTC ns).

    Sampled a few times; the sample with the tightest realtime bracket wins,
    so a preemption between the two clock reads does not skew the result.
    """
    best: tuple[int, int] | None = None
    for _ in range(5):
        r1 = time.clock_gettime_ns(time.CLOCK_REALTIME)
        b = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        r2 = time.clock_gettime_ns(time.CLOCK_REALTIME)
        gap = r2 - r1
        if best is None or gap < best[0]:
            best = (gap, (r1 + r2) // 2 - b)
    assert best is not None
    return best[1]


START_CLOCK = "CLOCK_REALTIME-CLOCK_BOOTTIME + stat.starttime/SC_CLK_TCK"


def start_ns(boot_ns: int, starttime_ticks: int, ticks_per_s: int) -> int:
    """Absolute UTC ns of a process start from its stat starttime."""
    return boot_ns + starttime_ticks * 1_000_000_000 // ticks_per_s
