"""A cheap, repeatable sample of the target's processes for a live process tree.

Lighter than collectors.processes (no fds, maps or environment): stat, status,
cmdline and the exe link of each member of the target's PID namespace. CPU
percent comes from the ticks used between this sample and the previous one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from collectors import procfs
from collectors.context import CollectContext
from collectors.processes import last_nspid, namespace_members
from forensics.textsafe import fsdecode_safe


@dataclass(frozen=True, slots=True)
class ProcRow:
    pid: int  # on the host
    nspid: int | None  # inside the target's namespace
    ppid: int  # host pid of the parent
    name: str
    cmdline: tuple[str, ...]
    exe: str | None
    exe_deleted: bool
    exe_memfd: bool
    state: str
    threads: int
    rss_bytes: int
    cpu_percent: float | None  # None on the first sample
    start_ns: int
    uid: int | None

    @property
    def suspicious(self) -> bool:
        """Running from a deleted file or from memory only."""
        return self.exe_deleted or self.exe_memfd


class ProcessSampler:
    """Call ``sample()`` repeatedly; each call is one consistent-enough snapshot."""

    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self._ticks = procfs.clock_ticks()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._boot = procfs.boot_time_ns()
        self._prev: dict[tuple[int, int], int] = {}  # (pid, starttime) -> cpu ticks
        self._prev_t: float | None = None

    def sample(self) -> list[ProcRow]:
        """Rows in tree order is the caller's business; here sorted by host pid.

        Raises TargetGone when the target has exited."""
        members, _skips = namespace_members(self.ctx, "processes")
        now = time.monotonic()
        elapsed = None if self._prev_t is None else max(now - self._prev_t, 1e-6)
        cur: dict[tuple[int, int], int] = {}
        rows: list[ProcRow] = []
        for pid in sorted(members):
            row = self._read(pid, elapsed, cur)
            if row is not None:
                rows.append(row)
        self._prev, self._prev_t = cur, now
        return rows

    def _read(
        self, pid: int, elapsed: float | None, cur: dict[tuple[int, int], int]
    ) -> ProcRow | None:
        base = f"{self.ctx.procfs}/{pid}"
        try:
            st = procfs.parse_stat(procfs.read_capped(f"{base}/stat")[0])
            status = procfs.parse_status(procfs.read_capped(f"{base}/status")[0])
        except (OSError, ValueError):
            return None  # exited meanwhile
        try:
            cmd = tuple(
                fsdecode_safe(a) for a in procfs.split_nul(procfs.read_capped(f"{base}/cmdline")[0])
            )
        except OSError:
            cmd = ()
        try:
            exe: str | None = fsdecode_safe(procfs.readlink(f"{base}/exe"))
        except OSError:
            exe = None
        ticks = st.utime + st.stime
        cur[(pid, st.starttime)] = ticks
        cpu = None
        if elapsed is not None:
            before = self._prev.get((pid, st.starttime))
            delta = ticks - before if before is not None else ticks
            cpu = 100.0 * delta / self._ticks / elapsed
        uid_text = status.get("Uid", "").split()
        return ProcRow(
            pid=pid,
            nspid=last_nspid(status),
            ppid=st.ppid,
            name=fsdecode_safe(st.comm),
            cmdline=cmd,
            exe=exe,
            exe_deleted=bool(exe and exe.endswith(" (deleted)")),
            exe_memfd=bool(exe and exe.startswith("/memfd:")),
            state=st.state,
            threads=st.num_threads,
            rss_bytes=st.rss_pages * self._page,
            cpu_percent=cpu,
            start_ns=procfs.start_ns(self._boot, st.starttime, self._ticks),
            uid=int(uid_text[0]) if uid_text and uid_text[0].isdigit() else None,
        )


def tree_order(rows: list[ProcRow]) -> list[tuple[int, ProcRow]]:
    """(depth, row) in depth-first order: parents before children, siblings by pid;
    roots are rows whose parent is not in the sample."""
    rows = sorted(rows, key=lambda r: r.pid)
    by_pid = {r.pid: r for r in rows}
    children: dict[int, list[ProcRow]] = {}
    roots: list[ProcRow] = []
    for r in rows:
        if r.ppid in by_pid and r.ppid != r.pid:
            children.setdefault(r.ppid, []).append(r)
        else:
            roots.append(r)
    out: list[tuple[int, ProcRow]] = []
    stack = [(0, r) for r in reversed(roots)]
    seen: set[int] = set()
    while stack:
        depth, r = stack.pop()
        if r.pid in seen:
            continue
        seen.add(r.pid)
        out.append((depth, r))
        stack.extend((depth + 1, c) for c in reversed(children.get(r.pid, [])))
    return out
