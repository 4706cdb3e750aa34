"""The ELF core layout (forensics/memory/core.py) and maps parsing/selection.

Cores are checked with pyelftools and against binutils' readelf (the golden
reference); the real end-to-end proof (gdb opens a captured core) is in
tests/integration/test_memory.py.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from collectors.memory.acquire import parse_syscall, plan
from collectors.memory.maps import parse_maps, split_untouched, why_not
from forensics.memory.core import FileMapping, ProcessFacts, Segment, layout, locate

MAPS = b"""\
00400000-00401000 r--p 00000000 00:2a 123 /app/bin
00401000-0047a000 r-xp 00001000 00:2a 123 /app/bin
004a6000-004a9000 rw-p 000a5000 00:2a 123 /app/bin
0169a000-016bc000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
7f0000100000-7f0000101000 ---p 00000000 00:00 0\x20
7f0000200000-7f0000201000 rw-s 00000000 00:01 9 /memfd:payload (deleted)
7f0000300000-7f0000301000 r-xp 00000000 00:2a 77 /tmp/dropped (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7ffd00100000-7ffd00104000 r--p 00000000 00:00 0 [vvar]
7ffd00104000-7ffd00106000 r-xp 00000000 00:00 0 [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
garbage line
"""


def test_maps_kinds_and_anon_selection() -> None:
    maps = parse_maps(MAPS)
    assert len(maps) == 12
    kinds = [m.kind for m in maps]
    assert kinds == [
        "file",
        "file",
        "file",
        "heap",
        "anon",
        "anon",
        "memfd",
        "deleted",
        "stack",
        "pseudo",
        "vdso",
        "pseudo",
    ]
    taken = [m.start for m in maps if why_not(m, "anon") is None]
    assert taken == [
        0x4A6000,
        0x169A000,
        0x7F0000000000,
        0x7F0000200000,
        0x7F0000300000,
        0x7FFD00000000,
        0x7FFD00104000,
    ]
    all_taken = [m.start for m in maps if why_not(m, "all") is None]
    assert 0x400000 in all_taken and 0x401000 in all_taken
    assert 0x7F0000100000 not in all_taken  # ---p guard
    assert 0xFFFFFFFFFF600000 not in all_taken
    assert maps[6].path == b"/memfd:payload" and maps[6].deleted


def test_plan_respects_the_budget() -> None:
    maps = parse_maps(MAPS)
    p = plan(maps, "all", 0x30000)
    assert sum(s.filesz for s in p.segments) <= 0x30000
    cut = [r for r in p.reasons if r and "memory-max" in r]
    assert cut, "a region over the budget says so"


def _core(tmp_path: Path) -> tuple[bytes, list[int]]:
    segs = [
        Segment(0x400000, 0x402000, "r-xp", 0x2000),
        Segment(0x600000, 0x601000, "rw-p", 0),
        Segment(0x7F0000000000, 0x7F0000003000, "rw-p", 0x1000),
    ]
    sc = (230, 0, 0, 0x7FFC0000, 0, 13, 0, 0x7FFD1000, 0x45E5F3)  # blocked in clock_nanosleep
    facts = ProcessFacts(
        syscalls={4243: sc},
        pid=4242,
        ppid=1,
        pgrp=4242,
        sid=4242,
        uid=1000,
        gid=1000,
        comm=b"victim",
        args=b"/victim\0--flag\0",
        threads=(4242, 4243),
    )
    files = [FileMapping(0x400000, 0x402000, 0x1000, b"/victim")]
    auxv = struct.pack("<QQQQ", 6, 4096, 0, 0)  # AT_PAGESZ, AT_NULL
    lay = layout(segs, facts, auxv=auxv, files=files)
    body = lay.head + b"A" * 0x2000 + b"B" * 0x1000
    assert len(body) == lay.size
    return body, lay.offsets


def test_layout_reads_back_with_pyelftools(tmp_path: Path) -> None:
    body, offsets = _core(tmp_path)
    elf = ELFFile(io.BytesIO(body))
    assert elf.header.e_type == "ET_CORE" and elf.header.e_machine == "EM_X86_64"
    loads = [s for s in elf.iter_segments() if s.header.p_type == "PT_LOAD"]
    assert [s.header.p_vaddr for s in loads] == [0x400000, 0x600000, 0x7F0000000000]
    assert [s.header.p_offset for s in loads] == offsets
    assert offsets[0] % 4096 == 0
    assert loads[0].data() == b"A" * 0x2000 and loads[2].data() == b"B" * 0x1000
    assert loads[1].header.p_filesz == 0 and loads[1].header.p_memsz == 0x1000
    assert loads[0].header.p_flags == 5 and loads[1].header.p_flags == 6
    note_seg = next(s for s in elf.iter_segments() if s.header.p_type == "PT_NOTE")
    types = [n["n_type"] for n in note_seg.iter_notes()]
    assert types == ["NT_PRSTATUS", "NT_PRPSINFO", "NT_PRSTATUS", "NT_AUXV", "NT_FILE"]
    notes = list(note_seg.iter_notes())
    assert notes[1]["n_desc"]["pr_fname"].rstrip(b"\0") == b"victim"
    assert notes[1]["n_desc"]["pr_psargs"].rstrip(b"\0") == b"/victim --flag"
    assert notes[1]["n_desc"]["pr_pid"] == 4242
    assert notes[4]["n_desc"]["filename"] == [b"/victim"]
    assert notes[4]["n_desc"]["Elf_Nt_File_Entry"][0]["page_offset"] == 1
    # pr_reg (user_regs_struct) starts at 112: rip is slot 16, rsp 19, orig_rax 15
    regs = struct.unpack("<27Q", notes[2]["n_descdata"][112 : 112 + 216])
    assert notes[2]["n_descdata"][32:36] == struct.pack("<i", 4243)  # pr_pid
    assert (regs[16], regs[19], regs[15], regs[12]) == (0x45E5F3, 0x7FFD1000, 230, 0x7FFC0000)
    assert struct.unpack("<27Q", notes[0]["n_descdata"][112 : 112 + 216]) == (0,) * 27


def test_parse_syscall() -> None:
    assert parse_syscall(b"230 0x0 0x0 0x7ffc 0x0 0xd 0x7ffb 0x7ffd 0x45e5f3\n") == (
        230,
        0,
        0,
        0x7FFC,
        0,
        13,
        0x7FFB,
        0x7FFD,
        0x45E5F3,
    )
    assert parse_syscall(b"-1 0x7ffd 0x401000\n") == (-1, 0, 0, 0, 0, 0, 0, 0x7FFD, 0x401000)
    assert parse_syscall(b"running\n") is None
    assert parse_syscall(b"1 2 zz") is None


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not installed")
def test_layout_matches_readelf(tmp_path: Path) -> None:
    body, _ = _core(tmp_path)
    core = tmp_path / "x.core"
    core.write_bytes(body)
    out = subprocess.run(
        ["readelf", "-W", "-l", "-n", str(core)], capture_output=True, text=True, check=True
    ).stdout
    assert "CORE (Core file)" in out
    assert out.count("LOAD ") == 3
    # (this readelf cannot decode NT_FILE's table: "Cannot decode 64-bit note in 32-bit build")
    assert "NT_FILE" in out and "NT_AUXV" in out and "NT_PRPSINFO" in out
    assert "0x00007f0000000000" in out


def test_too_many_segments_refused() -> None:
    segs = [Segment(i * 4096, i * 4096 + 4096, "r--p", 0) for i in range(0xFFFF)]
    with pytest.raises(ValueError, match="more than an ELF core"):
        layout(segs, ProcessFacts(pid=1))


def test_split_untouched_keeps_addresses_and_offsets() -> None:
    (m,) = parse_maps(b"7f0000000000-7f0000400000 rw-p 00000000 00:00 0\n")
    pieces = split_untouched(m, [(0x7F0000000000, 0x100000), (0x7F0000200000, 0x200000)])
    assert [(p.start, p.end, p.untouched) for p in pieces] == [
        (0x7F0000000000, 0x7F0000100000, True),
        (0x7F0000100000, 0x7F0000200000, False),
        (0x7F0000200000, 0x7F0000400000, True),
    ]
    assert [why_not(p, "anon") is None for p in pieces] == [False, True, False]
    assert pieces[1].offset == 0x100000


def test_locate_places_a_core_offset_in_its_region_and_ignores_hostile_regions() -> None:
    regions = [
        {"start": 0x1000, "core_offset": 4096, "stored": 8192, "kind": "heap", "perms": "rw-p"},
        {"start": "0x9000", "core_offset": 0, "stored": 10**9},  # text, not a number
        {"start": True, "core_offset": 0, "stored": 10**9},  # a bool is not an address
        {"start": 0x20000, "core_offset": 20480, "stored": 0, "kind": "anon"},  # nothing stored
        {"start": 0x30000, "core_offset": 20480, "stored": 4096},  # no kind or perms
    ]
    assert locate(regions, 4096 + 10) == {
        "address": 0x1000 + 10, "region_start": 0x1000,
        "region_kind": "heap", "region_perms": "rw-p",
    }  # fmt: skip
    assert locate(regions, 4096 + 8192) == {}  # past the region: not in the heap
    assert locate(regions, 100) == {}  # the core's head, and the hostile regions skipped
    assert locate(regions, 20480)["region_kind"] == "?"  # the last one, described as unknown
    assert locate(regions, 20480)["address"] == 0x30000
