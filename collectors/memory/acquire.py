"""Each process of the target -> one ELF core member ``memory/<pid>.core``.

The core's layout is computed from /proc/PID/maps before any page is read, so
the member's size is fixed up front and its bytes stream straight into the
bundle writer (a 4 GiB process needs no 4 GiB of RAM). Per region: SHA-256 of
its bytes as stored, what was read, what was never touched (zero, not read),
and what the kernel refused (zeros, reported as skips). Per process: the start
and end (UTC ns) of its read, the smear window — the core is not an atomic
snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collectors import procfs
from collectors.context import CollectContext
from collectors.memory.hashing import BackgroundHash, BufferRing
from collectors.memory.maps import UNTOUCHED, Mapping, parse_maps, split_untouched, why_not
from collectors.memory.read import CHUNK, MemReader, RegionRead
from collectors.memory.signals import DeferredSignals, Interrupted
from collectors.processes import namespace_members
from forensics.bundle.writer import BundleWriter, MemberStream, padded
from forensics.errors import CaptureInterrupted
from forensics.memory.core import (
    MACHINES,
    MAX_SEGMENTS,
    CoreLayout,
    FileMapping,
    ProcessFacts,
    Segment,
    layout,
)
from forensics.records import Record, Skip, skip_from_oserror
from forensics.textsafe import fsdecode_safe
from forensics.timeutil import iso_ns, now_ns

if TYPE_CHECKING:
    from forensics.scan.engine import ChunkScanner

COLLECTOR = "memory"
MEMBER_DIR = "memory/"
MAPS_CAP = 64 << 20
#: untouched runs at least this long are left out of the core (shorter: zeros)
UNTOUCHED_MIN = 1 << 20
#: reused read buffers (x CHUNK bytes): enough to keep both hashers busy
RING_SLOTS = 8


def member_name(pid: int) -> str:
    """The bundle member of a process's core (stable: scanners rely on it)."""
    return f"{MEMBER_DIR}{pid}.core"


@dataclass
class MemoryOptions:
    mode: str = "anon"  # anon | all
    #: bytes stored per process and over all processes (None: no limit)
    max_size: int | None = None
    #: host pids to take (None: every process of the target's PID namespace)
    pids: tuple[int, ...] | None = None
    #: pids never taken: the in-pod agent's own processes, which share the target's
    #: PID namespace (not the target's; listed in the target facts as the agent's)
    exclude: tuple[int, ...] = ()


@dataclass
class MemoryStats:
    """What the manifest says of the memory acquisition."""

    processes: list[dict[str, Any]] = field(default_factory=list)
    not_captured: list[dict[str, Any]] = field(default_factory=list)
    stored_bytes: int = 0


def _read(path: str, cap: int = procfs.MAX_READ) -> bytes:
    data, _truncated = procfs.read_capped(path, cap)
    return data


def _facts(proc_dir: str, pid: int) -> ProcessFacts:
    """NT_PRPSINFO/NT_PRSTATUS facts from stat, status, cmdline and task/."""
    kw: dict[str, Any] = {}
    try:
        st = procfs.parse_stat(_read(f"{proc_dir}/stat"))
        kw.update(
            ppid=st.ppid, pgrp=st.pgrp, sid=st.session, state=st.state, flags=st.flags, comm=st.comm
        )
    except (OSError, ValueError):
        pass
    try:
        status = procfs.parse_status(_read(f"{proc_dir}/status"))
        kw["uid"] = int(status.get("Uid", "0").split()[0])
        kw["gid"] = int(status.get("Gid", "0").split()[0])
    except (OSError, ValueError, IndexError):
        pass
    with contextlib.suppress(OSError):
        kw["args"] = _read(f"{proc_dir}/cmdline", 4096)
    with contextlib.suppress(OSError):
        tids = (int(t) for t in os.listdir(f"{proc_dir}/task") if t.isdigit())
        kw["threads"] = tuple(sorted(tids))
    kw["syscalls"] = {
        tid: sc
        for tid in kw.get("threads", (pid,))
        if (sc := _syscall(f"{proc_dir}/task/{tid}/syscall")) is not None
    }
    return ProcessFacts(pid=pid, **kw)


def parse_syscall(raw: bytes) -> tuple[int, ...] | None:
    """/proc/PID/task/TID/syscall: "NR a1..a6 SP PC" (in a syscall), "-1 SP PC"
    (blocked elsewhere) or "running" -> (nr, a1..a6, sp, pc), or None."""
    parts = raw.split()
    try:
        if len(parts) == 9:
            return (int(parts[0]), *(int(x, 16) for x in parts[1:]))
        if len(parts) == 3 and parts[0] == b"-1":
            return (-1, 0, 0, 0, 0, 0, 0, int(parts[1], 16), int(parts[2], 16))
    except ValueError:
        return None
    return None


#: a thread on a CPU at the moment of reading says "running" and gives no registers; a sleeping
#: loop is off-CPU again within microseconds, so ask again a few times before giving up
SYSCALL_TRIES = 50
SYSCALL_RETRY_S = 0.002


def _syscall(path: str) -> tuple[int, ...] | None:
    """Reading it waits for the thread to be off-CPU; it never stops the thread."""
    for attempt in range(SYSCALL_TRIES):
        try:
            raw = _read(path, 512)
        except OSError:
            return None
        if raw.strip() != b"running":
            return parse_syscall(raw)
        if attempt + 1 < SYSCALL_TRIES:
            time.sleep(SYSCALL_RETRY_S)
    return None


@dataclass
class _Plan:
    maps: list[Mapping]
    segments: list[Segment]
    reasons: list[str | None]  # why a mapping is not (fully) stored


def plan(maps: list[Mapping], mode: str, budget: int | None) -> _Plan:
    """Which bytes of each mapping go into the core, within ``budget`` bytes."""
    segs: list[Segment] = []
    reasons: list[str | None] = []
    left = budget
    for m in maps:
        why = why_not(m, mode)
        size = 0 if why else m.size
        if size and left is not None and size > left:
            size = left - left % 4096
            why = f"over --memory-max: {m.size - size} of {m.size} bytes not stored"
        if left is not None:
            left -= size
        segs.append(Segment(m.start, m.end, m.perms, size))
        reasons.append(why)
    return _Plan(maps, segs, reasons)


@dataclass
class _CoreWrite:
    """One core being written: where its bytes and skips go."""

    pid: int
    reader: MemReader
    stream: MemberStream
    member_h: Any
    skips: list[Skip]
    #: (region hasher, member hasher): two threads, so hashing uses the other CPUs
    hashers: tuple[BackgroundHash, BackgroundHash]
    signals: DeferredSignals
    ring: BufferRing
    scanner: ChunkScanner | None


class MemoryCollector:
    """Cores of the target's processes into ``writer``; yields records and skips."""

    def __init__(
        self,
        ctx: CollectContext,
        writer: BundleWriter,
        opts: MemoryOptions,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.writer = writer
        self.opts = opts
        self.stats = MemoryStats()
        self.machine = MACHINES.get(platform.machine(), 0)
        self.left = opts.max_size
        self.on_done = on_done or (lambda _d: None)
        #: ``capture --scan``: each core's bytes are also scanned as they stream
        #: (forensics.scan.engine.ChunkScanner); the matches land in :attr:`yara`
        self.scanner: ChunkScanner | None = None
        #: ``yara_match``/``yara_skip`` record data of the cores scanned
        self.yara: list[dict[str, Any]] = []

    def run(self) -> Iterator[Record | Skip]:
        self._hashers = (BackgroundHash(), BackgroundHash())
        self._ring = BufferRing(self._hashers, RING_SLOTS, CHUNK)
        try:
            yield from self._run()
        finally:
            for hasher in self._hashers:
                hasher.close()

    def _run(self) -> Iterator[Record | Skip]:
        pids, skips = namespace_members(self.ctx, COLLECTOR)
        yield from skips
        if self.opts.exclude:
            pids = [p for p in pids if p not in self.opts.exclude]
        if self.opts.pids is not None:
            wanted = set(self.opts.pids)
            for pid in sorted(wanted - set(pids)):
                yield self._not_captured(pid, "not a process of the target's PID namespace")
            pids = [p for p in pids if p in wanted]
        for pid in pids:
            if self.left is not None and self.left <= 0:
                yield self._not_captured(pid, "--memory-max reached over all processes")
                continue
            yield from self._process(pid)

    def _not_captured(self, pid: int, reason: str, err: OSError | None = None) -> Skip:
        self.stats.not_captured.append({"pid": pid, "reason": reason})
        if err is not None:
            return skip_from_oserror(COLLECTOR, f"pid {pid}", err, reason)
        return Skip(COLLECTOR, f"pid {pid}", f"memory not captured: {reason}")

    def _process(self, pid: int) -> Iterator[Record | Skip]:
        proc_dir = f"{self.ctx.procfs}/{pid}"
        try:
            reader = MemReader(proc_dir)
        except OSError as err:
            why = "process exited" if procfs.is_gone(err) else "cannot open /proc/PID/mem"
            yield self._not_captured(pid, why, err)
            return
        with reader:
            try:
                maps = parse_maps(_read(f"{proc_dir}/maps", MAPS_CAP))
            except OSError as err:
                yield self._not_captured(pid, "cannot read /proc/PID/maps", err)
                return
            maps = self._split(reader, maps)
            if len(maps) > MAX_SEGMENTS:
                extra = len(maps) - MAX_SEGMENTS
                yield Skip(
                    COLLECTOR, f"pid {pid}", f"{extra} mappings past the ELF limit not stored"
                )
                maps = maps[:MAX_SEGMENTS]
            try:
                auxv: bytes | None = _read(f"{proc_dir}/auxv", 1 << 16)
            except OSError:
                auxv = None
            yield from self._core(pid, reader, maps, auxv, _facts(proc_dir, pid))

    def _split(self, reader: MemReader, maps: list[Mapping]) -> list[Mapping]:
        """Private anonymous mappings cut around their untouched runs of >= 1 MiB,
        so a huge, mostly unused mapping costs no core bytes (pagemap, before the
        read: pages touched after this are in the smear, not in the core)."""
        out: list[Mapping] = []
        for m in maps:
            if (
                m.private_anonymous
                and m.size >= UNTOUCHED_MIN
                and why_not(m, self.opts.mode) is None
            ):
                spans = reader.untouched_spans(m.start, m.size, UNTOUCHED_MIN)
                if spans:
                    out.extend(split_untouched(m, spans))
                    continue
            out.append(m)
        return out if len(out) <= MAX_SEGMENTS else maps

    def _core(
        self,
        pid: int,
        reader: MemReader,
        maps: list[Mapping],
        auxv: bytes | None,
        facts: ProcessFacts,
    ) -> Iterator[Record | Skip]:
        self._reader = reader
        regions: list[dict[str, Any]] = []
        skips: list[Skip] = []
        p = plan(maps, self.opts.mode, self._budget())
        files = [FileMapping(m.start, m.end, m.offset, m.path) for m in maps if m.file_backed]
        lay = layout(p.segments, facts, machine=self.machine or 62, auxv=auxv, files=files)
        name = member_name(pid)
        signals = DeferredSignals()
        with signals:  # from the member's header to its end (signals.py)
            interrupted, summary = self._stream_core(
                pid=pid, name=name, p=p, lay=lay, signals=signals, regions=regions, skips=skips
            )
        # the pending signal was delivered when the block above ended; if its
        # handler did not raise (not the capture's), stop anyway: the core is cut
        if interrupted or summary is None:
            raise CaptureInterrupted(f"interrupted while reading the memory of pid {pid}")
        yield from skips
        yield Record("memory", {**summary, "comm": fsdecode_safe(facts.comm), "regions": regions})

    def _stream_core(
        self,
        *,
        pid: int,
        name: str,
        p: _Plan,
        lay: CoreLayout,
        signals: DeferredSignals,
        regions: list[dict[str, Any]],
        skips: list[Skip],
    ) -> tuple[bool, dict[str, Any] | None]:
        """Write the core member; (interrupted, summary when whole)."""
        stream = self.writer.begin_member(name, lay.size)
        member_h = hashlib.sha256()
        member_h.update(lay.head)
        stream.write(lay.head)
        if self.scanner is not None:
            self.scanner.begin(name, None)
            self.scanner.feed(lay.head)
        hashers = self._hashers
        start = now_ns()
        w = _CoreWrite(
            pid, self._reader, stream, member_h, skips, hashers, signals, self._ring, self.scanner
        )
        try:
            for m, seg, off, why in zip(p.maps, p.segments, lay.offsets, p.reasons, strict=True):
                regions.append(self._region(w, m, seg, off, why))
        except Interrupted:
            # keep the tar stream whole: the rest of the member is zeros, and say so
            hashers[1].wait()
            entry = stream.finish(padded(member_h, stream.remaining).hexdigest())
            self.stats.not_captured.append(
                {
                    "pid": pid,
                    "member": name,
                    "sha256": entry.sha256,
                    "reason": f"capture interrupted during the read: {name} is zeros "
                    f"from byte {entry.size - entry.short_by}",
                }
            )
            return True, None
        return False, self._finish(pid, name, p, w, start, regions=regions)

    def _scanned(self, pid: int, name: str, sha256: str, regions: list[dict[str, Any]]) -> None:
        """The scan of the core just written: matches placed at their addresses."""
        assert self.scanner is not None
        matches, skips = self.scanner.end(sha256)
        now = now_ns()
        for m in matches:
            m.pid, m.regions = pid, regions
            self.yara.append({**m.to_dict(), "copied": True, "ts_ns": now})
        for sk in skips:
            self.yara.append({**sk.to_dict(), "pid": pid, "path": None, "ts_ns": now})

    def _finish(
        self,
        pid: int,
        name: str,
        p: _Plan,
        w: _CoreWrite,
        start: int,
        *,
        regions: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Close a whole core; its summary (manifest, custody, record)."""
        end = now_ns()
        w.hashers[1].wait()
        entry = w.stream.finish(w.member_h.hexdigest())
        if self.scanner is not None:
            self._scanned(pid, name, entry.sha256, regions)
        stored = sum(s.filesz for s in p.segments)
        self.stats.stored_bytes += stored
        if self.left is not None:
            self.left -= stored
        summary = {
            "pid": pid,
            "member": name,
            "sha256": entry.sha256,
            "size": entry.size,
            "stored_bytes": stored,
            "mode": self.opts.mode,
            "read_start_ns": start,
            "read_start": iso_ns(start),
            "read_end_ns": end,
            "read_end": iso_ns(end),
        }
        self.stats.processes.append(summary)
        self.on_done(summary)
        return summary

    @staticmethod
    def _region(
        w: _CoreWrite, m: Mapping, seg: Segment, core_offset: int, why: str | None
    ) -> dict[str, Any]:
        """Stream one mapping's stored bytes; its entry in the record."""
        pid, stream, member_h, skips = w.pid, w.stream, w.member_h, w.skips
        region: dict[str, Any] = {
            "start": m.start,
            "end": m.end,
            "perms": m.perms,
            "kind": m.kind,
            "path": fsdecode_safe(m.path) if m.path else None,
            "offset": m.offset,
            "core_offset": core_offset,
            "stored": seg.filesz,
        }
        if why:
            region["not_stored"] = why
            if not by_choice(why):
                skips.append(Skip(COLLECTOR, f"pid {pid} {m.start:#x}-{m.end:#x}", why))
        if not seg.filesz:
            return region
        h = hashlib.sha256()
        region_hash, member_hash = w.hashers
        mine, whole = (h,), (member_h,)

        check = w.signals.check
        ring = w.ring
        scanner = w.scanner

        def out(data: bytes | memoryview) -> None:
            check()  # before anything of this chunk is hashed or written
            # one read, three hashes: region and member on the two hash threads,
            # the bundle file's in stream.write, here (the sink's own)
            region_hash.update(mine, data)
            member_hash.update(whole, data)
            ring.sent()
            stream.write(data)
            if scanner is not None:
                scanner.feed(bytes(data))

        got = w.reader.read_region(m, seg.filesz, out, ring.take)
        region_hash.wait()
        region.update(sha256=h.hexdigest(), read=got.read_bytes, untouched=got.untouched_bytes)
        if got.unreadable:
            region["unreadable"] = [[a, n, r] for a, n, r in got.unreadable]
            skips.extend(_holes(pid, got))
        return region

    def _budget(self) -> int | None:
        per = self.opts.max_size
        if per is None:
            return None
        return min(per, self.left if self.left is not None else per)


def by_choice(why: str) -> bool:
    """A mapping left out because of the mode (not a loss: no skip recorded)."""
    return why == UNTOUCHED or why.startswith(("file-backed", "pseudo mapping"))


def _holes(pid: int, got: RegionRead) -> Iterator[Skip]:
    for addr, n, reason in got.unreadable:
        yield Skip(COLLECTOR, f"pid {pid} {addr:#x}-{addr + n:#x}", f"stored as zeros: {reason}")
