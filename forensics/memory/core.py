"""ELF core layout: the header, program headers and notes of a process core.

Pure: it is given the mappings (from /proc/PID/maps), which of their bytes will
be stored, and the process facts; it returns the bytes that come before the
first segment's data and each segment's file offset. The whole layout is known
before any memory is read, so a core can be streamed region by region into a
bundle member of a size fixed in advance (no seeking, no buffering).

Only x86-64 has NT_PRSTATUS/NT_PRPSINFO layouts here; on another machine the
core still has PT_LOAD, NT_FILE and NT_AUXV (what gdb needs to read memory).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

PAGE = 4096
ET_CORE = 4
EM_X86_64 = 62
EM_AARCH64 = 183
PT_LOAD = 1
PT_NOTE = 4
PF_X, PF_W, PF_R = 1, 2, 4
NT_PRSTATUS = 1
NT_PRPSINFO = 3
NT_AUXV = 6
NT_FILE = 0x46494C45
#: e_phnum is 16 bits; PN_XNUM (extended numbering) is not produced
MAX_SEGMENTS = 0xFFFE

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_NHDR = struct.Struct("<III")
# struct elf_prpsinfo (x86-64): state, sname, zomb, nice, flag, uid, gid, pid,
# ppid, pgrp, sid, fname[16], psargs[80]
_PRPSINFO = struct.Struct("<bcbb4xQIIiiii16s80s")
_PRSTATUS_SIZE = 336  # struct elf_prstatus (x86-64)
_PRSTATUS_HEAD = struct.Struct("<iiih2xQQiiii")  # up to pr_sid; times and regs follow

MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}


@dataclass(frozen=True, slots=True)
class Segment:
    """One mapping in the core: ``filesz`` bytes of it stored (0: listed only)."""

    start: int
    end: int
    perms: str  # "rwxp" as in maps
    filesz: int


@dataclass(frozen=True, slots=True)
class FileMapping:
    """A file-backed mapping for NT_FILE (``pgoff`` in bytes, as maps shows it)."""

    start: int
    end: int
    pgoff: int
    path: bytes


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    """What /proc gives without ptrace, for NT_PRPSINFO and NT_PRSTATUS."""

    pid: int
    ppid: int = 0
    pgrp: int = 0
    sid: int = 0
    uid: int = 0
    gid: int = 0
    state: str = "R"
    nice: int = 0
    flags: int = 0
    comm: bytes = b""
    args: bytes = b""
    threads: tuple[int, ...] = ()
    #: per thread, from /proc/PID/task/TID/syscall (readable without ptrace while
    #: the thread is blocked): (syscall nr or -1, arg1..arg6, sp, pc)
    syscalls: dict[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class CoreLayout:
    """The bytes before the first segment and where each segment's data goes."""

    head: bytes
    offsets: list[int] = field(default_factory=list)
    size: int = 0


def _flags(perms: str) -> int:
    out = 0
    if perms[:1] == "r":
        out |= PF_R
    if perms[1:2] == "w":
        out |= PF_W
    if perms[2:3] == "x":
        out |= PF_X
    return out


def _note(name: bytes, ntype: int, desc: bytes) -> bytes:
    name0 = name + b"\0"
    return b"".join(
        (
            _NHDR.pack(len(name0), len(desc), ntype),
            name0,
            b"\0" * ((-len(name0)) % 4),
            desc,
            b"\0" * ((-len(desc)) % 4),
        )
    )


def prpsinfo(p: ProcessFacts) -> bytes:
    state = p.state[:1] or "R"
    numeric = "RSDTZW".find(state)
    return _PRPSINFO.pack(
        max(numeric, 0),
        state.encode("ascii", "replace")[:1],
        1 if state == "Z" else 0,
        max(-128, min(127, p.nice)),
        p.flags,
        p.uid & 0xFFFFFFFF,
        p.gid & 0xFFFFFFFF,
        p.pid,
        p.ppid,
        p.pgrp,
        p.sid,
        p.comm[:15],
        p.args.replace(b"\0", b" ").rstrip()[:79],
    )


# user_regs_struct (x86-64) slots of what /proc/PID/task/TID/syscall gives
_ORIG_RAX, _RIP, _CS, _RSP, _SS = 15, 16, 17, 19, 20
_ARG_SLOTS = (14, 13, 12, 7, 9, 8)  # rdi, rsi, rdx, r10, r8, r9
_NREGS = 27


def prstatus(p: ProcessFacts, tid: int) -> bytes:
    """One thread's prstatus: ids, and of the registers only the stack pointer,
    program counter and syscall arguments /proc gives for a blocked thread (the
    rest are zero: no ptrace, no stop)."""
    head = _PRSTATUS_HEAD.pack(0, 0, 0, 0, 0, 0, tid, p.ppid, p.pgrp, p.sid)
    regs = [0] * _NREGS
    sc = p.syscalls.get(tid)
    if sc is not None and len(sc) == 9:
        regs[_ORIG_RAX] = sc[0] & 0xFFFFFFFFFFFFFFFF
        for slot, value in zip(_ARG_SLOTS, sc[1:7], strict=True):
            regs[slot] = value & 0xFFFFFFFFFFFFFFFF
        regs[_RSP], regs[_RIP] = sc[7] & 0xFFFFFFFFFFFFFFFF, sc[8] & 0xFFFFFFFFFFFFFFFF
        regs[_CS], regs[_SS] = 0x33, 0x2B  # the x86-64 user code and stack segments
    times = b"\0" * 64  # pr_utime, pr_stime, pr_cutime, pr_cstime (struct timeval)
    body = head + times + struct.pack(f"<{_NREGS}Q", *regs)
    return body + b"\0" * (_PRSTATUS_SIZE - len(body))


def nt_file(files: list[FileMapping], page: int = PAGE) -> bytes:
    table = [struct.pack("<QQ", len(files), page)]
    names = []
    for f in files:
        table.append(struct.pack("<QQQ", f.start, f.end, f.pgoff // page))
        names.append(f.path.replace(b"\0", b"?") + b"\0")
    return b"".join(table) + b"".join(names)


def notes(facts: ProcessFacts, machine: int, auxv: bytes | None, files: list[FileMapping]) -> bytes:
    parts: list[bytes] = []
    if machine == EM_X86_64:
        # the first NT_PRSTATUS is the thread gdb selects: the process's main one
        tids = [facts.pid, *(t for t in facts.threads if t != facts.pid)]
        parts.append(_note(b"CORE", NT_PRSTATUS, prstatus(facts, tids[0])))
        parts.append(_note(b"CORE", NT_PRPSINFO, prpsinfo(facts)))
        parts.extend(_note(b"CORE", NT_PRSTATUS, prstatus(facts, t)) for t in tids[1:])
    if auxv:
        parts.append(_note(b"CORE", NT_AUXV, auxv))
    if files:
        parts.append(_note(b"CORE", NT_FILE, nt_file(files)))
    return b"".join(parts)


def layout(
    segments: list[Segment],
    facts: ProcessFacts,
    *,
    machine: int = EM_X86_64,
    auxv: bytes | None = None,
    files: list[FileMapping] | None = None,
) -> CoreLayout:
    """The core's head (ELF header, program headers, notes, padding to a page)
    and the file offset of each segment's data, in order; ``size`` is the
    whole core's length."""
    if len(segments) > MAX_SEGMENTS:
        raise ValueError(f"{len(segments)} segments: more than an ELF core can number")
    note = notes(facts, machine, auxv, files or [])
    phnum = 1 + len(segments)
    note_off = _EHDR.size + phnum * _PHDR.size
    data_off = note_off + len(note)
    data_off += (-data_off) % PAGE
    ident = b"\x7fELF" + bytes((2, 1, 1, 0)) + b"\0" * 8  # 64-bit, LE, current, SysV
    ehdr = _EHDR.pack(
        ident, ET_CORE, machine, 1, 0, _EHDR.size, 0, 0, _EHDR.size, _PHDR.size, phnum, 64, 0, 0
    )
    phdrs = [_PHDR.pack(PT_NOTE, 0, note_off, 0, 0, len(note), 0, 4)]
    offsets = []
    off = data_off
    for s in segments:
        if s.filesz > s.end - s.start or s.filesz < 0:
            raise ValueError(f"segment {s.start:#x}: filesz {s.filesz} outside its mapping")
        offsets.append(off)
        phdrs.append(
            _PHDR.pack(PT_LOAD, _flags(s.perms), off, s.start, 0, s.filesz, s.end - s.start, PAGE)
        )
        off += s.filesz
    head = ehdr + b"".join(phdrs) + note
    head += b"\0" * (data_off - len(head))
    return CoreLayout(head=head, offsets=offsets, size=off)


def locate(regions: list[dict[str, Any]], core_offset: int) -> dict[str, Any]:
    """Where a core byte offset is in the process, from its ``memory`` record's
    regions: ``address`` and the region's ``region_start``/``region_kind``/
    ``region_perms``; nothing for the core's head (or a region the record does not
    describe in whole numbers: a bundle's records are input like any other)."""
    for r in regions:
        base, n, start = r.get("core_offset", 0), r.get("stored", 0), r.get("start")
        if not (type(base) is int and type(n) is int and type(start) is int):
            continue
        if n > 0 and base <= core_offset < base + n:
            return {
                "address": start + core_offset - base,
                "region_start": start,
                "region_kind": str(r.get("kind", "?")),
                "region_perms": str(r.get("perms", "?")),
            }
    return {}
