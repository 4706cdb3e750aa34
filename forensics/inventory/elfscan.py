"""Extract the parts of an ELF file the inventory needs, bounded, into an elfx blob.

Given ``pread(offset, size)`` over a file of ``size`` bytes, :func:`extract`
takes: the first 4 KiB, the program and section header tables, the section name
table, .interp, .dynamic and the strings its NEEDED/SONAME/RPATH/RUNPATH
entries name, every note (section or segment: build-id, .note.package, Go's
build id), .comment, .go.buildinfo and what it points to (Go's build info,
found the way Go finds it), .dep-v0 (cargo auditable), .gnu_debuglink, and the
few header bytes pyelftools reads eagerly (hash table and compression headers).
It also samples the file for a byte-entropy figure and, optionally, computes
the MD5 and SHA-1 of the whole file (package metadata lists those).

Every offset and size is checked against the file size before it is read; the
bytes kept, the bytes scanned, the counts of headers and notes and the time
spent are all capped (:class:`Limits`). What could not be taken is written in
the blob's ``notes``; a file that is not a readable ELF gets an ``error``. It
never raises for bad input; only the ``pread`` callable's own OSError escapes.

This module is pure: the capture calls it over a live file descriptor
(collectors/fs/elf_extract.py), the inventory over a file copied whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forensics.inventory.elfblob import encode_blob
from forensics.inventory.elftypes import (
    DT_NULL,
    DT_STRING_TAGS,
    DT_STRSZ,
    DT_STRTAB,
    PN_XNUM,
    PT_DYNAMIC,
    PT_INTERP,
    PT_NOTE,
    SHF_COMPRESSED,
    SHN_XINDEX,
    SHT_ARM_ATTRIBUTES,
    SHT_DYNAMIC,
    SHT_GNU_HASH,
    SHT_HASH,
    SHT_NOBITS,
    SHT_NOTE,
    ElfFormatError,
    Layout,
    Sec,
    Seg,
    cstring,
    parse_ehdr,
    parse_phdr,
    parse_shdr,
    vaddr_to_offset,
)
from forensics.inventory.golang import NotGo, read_raw

PRead = Callable[[int, int], bytes]

#: sections taken whole (up to this many bytes) when present
WANTED_SECTIONS: dict[str, int] = {
    ".interp": 4096,
    ".comment": 4096,
    ".gnu_debuglink": 4096,
    ".go.buildinfo": 1 << 20,
    ".dep-v0": 1 << 20,
    ".note.package": 64 << 10,
}
GO_SECTIONS = frozenset({".go.buildinfo", ".gopclntab", ".note.go.buildid", ".gosymtab"})
#: note sections of many notes and no use here: SystemTap probes, annobin attributes
SKIPPED_NOTES = frozenset({".note.stapsdt", ".gnu.build.attributes"})
NOTE_CAP = 64 << 10
DYNAMIC_CAP = 256 << 10
STRING_CAP = 4096
HEAD = 4096


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload: int = 4 << 20  # bytes kept in the blob
    max_scan: int = 8 << 20  # bytes read only to search (Go's magic)
    max_segments: int = 1024
    max_sections: int = 8192
    max_notes_areas: int = 64
    max_dyn_entries: int = 4096
    entropy_windows: int = 8
    entropy_window: int = 4096
    digest_max: int = 1 << 30  # files above this get no MD5/SHA-1
    seconds: float = 2.0


DEFAULT_LIMITS = Limits()


class _Stop(Exception):
    """Deadline reached: stop extracting, keep what was taken."""


@dataclass
class _Reader:
    pread: PRead
    size: int
    limits: Limits
    deadline: float
    parts: list[tuple[int, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    payload: int = 0
    scanned: int = 0

    def note(self, text: str) -> None:
        if len(self.notes) < 64 and text not in self.notes:
            self.notes.append(text)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Stop(f"time limit of {self.limits.seconds:g}s reached")

    def _raw(self, off: int, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.pread(off + len(out), n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def _bounds(self, off: int, n: int, what: str, cap: int) -> int:
        if off < 0 or n < 0 or off >= self.size:
            if n > 0:
                self.note(f"{what}: offset {off} is outside the file ({self.size} bytes)")
            return 0
        if off + n > self.size:
            self.note(f"{what}: {n} bytes at {off} run past the end of the file")
            n = self.size - off
        if n > cap:
            self.note(f"{what}: {n} bytes, only the first {cap} taken")
            n = cap
        return n

    def take(
        self, off: int, n: int, what: str = "Go build information", cap: int = 1 << 30
    ) -> bytes:
        """Read and keep (it goes into the blob)."""
        self.tick()
        n = self._bounds(off, n, what, cap)
        if n == 0:
            return b""
        if self.payload + n > self.limits.max_payload:
            self.note(
                f"{what}: not taken, the extract's {self.limits.max_payload}-byte cap is spent"
            )
            return b""
        data = self._raw(off, n)
        self.payload += len(data)
        self.parts.append((off, data))
        return data

    def scan(self, off: int, n: int) -> bytes:
        """Read only to search; not kept."""
        self.tick()
        n = self._bounds(off, n, "scan", self.limits.max_scan)
        if n == 0 or self.scanned + n > self.limits.max_scan:
            return b""
        self.scanned += n
        return self._raw(off, n)

    def cstring_at(self, off: int, what: str) -> None:
        """Take the NUL-terminated string at ``off`` (up to STRING_CAP bytes)."""
        got = 0
        while got < STRING_CAP:
            piece = self.take(off + got, min(256, STRING_CAP - got), what)
            if not piece or b"\0" in piece:
                return
            got += len(piece)


def _table(r: _Reader, off: int, count: int, entsize: int, *, minsize: int, what: str) -> bytes:
    if count == 0 or off == 0:
        return b""
    if entsize < minsize:
        r.note(f"{what}: entry size {entsize} is smaller than {minsize}")
        return b""
    return r.take(off, count * entsize, what)


def _scan_elf(r: _Reader) -> None:
    head = r.take(0, min(HEAD, r.size, r.limits.max_payload), "file header")
    eh = parse_ehdr(head)
    lay = eh.layout
    shnum, shstrndx, phnum = eh.e_shnum, eh.e_shstrndx, eh.e_phnum
    if eh.e_shoff and (shnum == 0 or shstrndx == SHN_XINDEX or phnum == PN_XNUM):
        first = _table(
            r, eh.e_shoff, 1, eh.e_shentsize, minsize=lay.shdr.size, what="section header 0"
        )
        if len(first) >= lay.shdr.size:
            f = lay.shdr.unpack_from(first, 0)
            shnum = shnum or f[5]
            shstrndx = f[6] if shstrndx == SHN_XINDEX else shstrndx
            phnum = f[7] if phnum == PN_XNUM else phnum
    if phnum > r.limits.max_segments:
        r.note(f"{phnum} program headers; only the first {r.limits.max_segments} read")
        phnum = r.limits.max_segments
    if shnum > r.limits.max_sections:
        r.note(f"{shnum} section headers; only the first {r.limits.max_sections} read")
        shnum = r.limits.max_sections
    raw = _table(
        r, eh.e_phoff, phnum, eh.e_phentsize, minsize=lay.phdr.size, what="program headers"
    )
    segs = [
        parse_phdr(lay, raw, i * eh.e_phentsize)
        for i in range(phnum)
        if i * eh.e_phentsize + lay.phdr.size <= len(raw)
    ]
    secs = _sections(
        r, lay, shoff=eh.e_shoff, shnum=shnum, shentsize=eh.e_shentsize, shstrndx=shstrndx
    )
    dyn_done = False
    notes_areas = 0
    for sec in secs:
        r.tick()
        if sec.type == SHT_NOBITS or sec.size == 0:
            continue
        cap = WANTED_SECTIONS.get(sec.name)
        if sec.name in SKIPPED_NOTES:
            continue
        if sec.type == SHT_NOTE or sec.name.startswith(".note"):
            notes_areas += 1
            if notes_areas <= r.limits.max_notes_areas:
                r.take(sec.offset, sec.size, f"section {sec.name}", NOTE_CAP)
        elif cap is not None:
            r.take(sec.offset, sec.size, f"section {sec.name}", cap)
        elif sec.type == SHT_DYNAMIC:
            strtab = secs[sec.link] if 0 < sec.link < len(secs) else None
            _dynamic(r, lay, segs, off=sec.offset, size=sec.size, strtab=strtab)
            dyn_done = True
        elif sec.type == SHT_GNU_HASH:
            r.take(sec.offset, 16, f"section {sec.name} header")
        elif sec.type == SHT_HASH:
            r.take(sec.offset, 8, f"section {sec.name} header")
        elif sec.type == SHT_ARM_ATTRIBUTES:
            r.take(sec.offset, sec.size, f"section {sec.name}", 4096)
        if sec.flags & SHF_COMPRESSED and sec.type != SHT_NOBITS:
            r.take(sec.offset, lay.chdr_size, f"section {sec.name} compression header")
    for seg in segs:
        r.tick()
        if seg.type == PT_INTERP:
            r.take(seg.offset, seg.filesz, "PT_INTERP", 4096)
        elif seg.type == PT_NOTE:
            notes_areas += 1
            if notes_areas <= r.limits.max_notes_areas:
                r.take(seg.offset, seg.filesz, "PT_NOTE", NOTE_CAP)
        elif seg.type == PT_DYNAMIC and not dyn_done:
            _dynamic(r, lay, segs, off=seg.offset, size=seg.filesz, strtab=None)
            dyn_done = True
    if may_be_go(secs):
        with contextlib.suppress(NotGo):  # not Go after all: nothing more to take
            read_raw(r.scan, r.take, secs, segs, search_limit=r.limits.max_scan)


def may_be_go(secs: list[Sec]) -> bool:
    """Whether to look for Go build info: a Go section, or no sections at all.

    Go's own reader searches the data segment of any binary; searching only
    where a Go linker could have left it spares scanning megabytes of every
    C/C++ library. Every Go binary that has section headers has .gopclntab
    (and current ones .go.buildinfo), so no Go binary is missed.
    """
    return not secs or any(s.name in GO_SECTIONS for s in secs)


def _sections(
    r: _Reader, lay: Layout, *, shoff: int, shnum: int, shentsize: int, shstrndx: int
) -> list[Sec]:
    raw = _table(r, shoff, shnum, shentsize, minsize=lay.shdr.size, what="section headers")
    entries: list[tuple[int, Sec]] = []
    for i in range(shnum):
        at = i * shentsize
        if at + lay.shdr.size > len(raw):
            break
        entries.append(parse_shdr(lay, raw, at))
    names = b""
    if 0 < shstrndx < len(entries):
        st = entries[shstrndx][1]
        if st.type != SHT_NOBITS:
            names = r.take(st.offset, st.size, "section name table", 256 << 10)
    elif shstrndx and entries:
        r.note(f"section name table index {shstrndx} is out of range")
    out = []
    for name_at, sec in entries:
        name = cstring(names, name_at) or ""
        out.append(Sec(name, sec.type, sec.flags, sec.addr, sec.offset, sec.size, sec.link))
    return out


def _dynamic(
    r: _Reader, lay: Layout, segs: list[Seg], *, off: int, size: int, strtab: Sec | None
) -> None:
    ent = lay.dyn.size
    size = min(size, r.limits.max_dyn_entries * ent)
    raw = r.take(off, size, "dynamic table", DYNAMIC_CAP)
    tags: list[tuple[int, int]] = []
    for at in range(0, len(raw) - ent + 1, ent):
        tag, val = lay.dyn.unpack_from(raw, at)
        if tag == DT_NULL:
            break
        tags.append((tag, val))
    str_off: int | None = None
    str_size: int | None = None
    if strtab is not None and strtab.type != SHT_NOBITS:
        str_off, str_size = strtab.offset, strtab.size
    else:
        vaddr = next((v for t, v in tags if t == DT_STRTAB), None)
        str_size = next((v for t, v in tags if t == DT_STRSZ), None)
        if vaddr is not None:
            str_off = vaddr_to_offset(segs, vaddr)
            if str_off is None:
                r.note("dynamic string table address is outside every PT_LOAD segment")
    if str_off is None:
        return
    for tag, val in tags:
        if tag in DT_STRING_TAGS:
            if str_size is not None and val >= str_size:
                r.note(f"dynamic entry {tag} points past the string table")
                continue
            r.cstring_at(str_off + val, "dynamic string")


def entropy(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte (0.0 for no data)."""
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def _entropy(pread: PRead, size: int, limits: Limits) -> dict[str, Any] | None:
    w, k = limits.entropy_window, limits.entropy_windows
    if size <= 0 or k <= 0 or w <= 0:
        return None
    if size <= w * k:
        spots = [(0, size)]
    else:
        step = (size - w) / (k - 1) if k > 1 else 0
        spots = [(int(i * step), w) for i in range(k)]
    sample = b"".join(pread(off, n) for off, n in spots)
    return {"bits_per_byte": round(entropy(sample), 4), "sampled": len(sample)}


def _digests(pread: PRead, size: int, limits: Limits, notes: list[str]) -> dict[str, str] | None:
    if size > limits.digest_max:
        notes.append(f"no MD5/SHA-1: the file is over {limits.digest_max} bytes")
        return None
    md5 = hashlib.md5(usedforsecurity=False)
    sha1 = hashlib.sha1(usedforsecurity=False)
    off = 0
    while True:
        chunk = pread(off, 1 << 20)
        if not chunk:
            break
        md5.update(chunk)
        sha1.update(chunk)
        off += len(chunk)
    if off != size:
        notes.append(f"MD5/SHA-1 cover {off} bytes, the file had {size} at open")
    return {"md5": md5.hexdigest(), "sha1": sha1.hexdigest()}


def extract(
    pread: PRead, size: int, *, limits: Limits = DEFAULT_LIMITS, digests: bool = True
) -> bytes:
    """The elfx blob for the file behind ``pread`` (see forensics/inventory/elfblob.py)."""
    r = _Reader(pread, size, limits, time.monotonic() + limits.seconds)
    error: str | None = None
    try:
        _scan_elf(r)
    except _Stop as stop:
        r.note(f"extraction stopped early: {stop}")
    except ElfFormatError as err:
        error = str(err)
    except (struct.error, ValueError, OverflowError, IndexError) as err:
        r.note(f"extraction stopped at malformed data: {type(err).__name__}: {err}")
    notes = r.notes
    return encode_blob(
        size,
        r.parts,
        entropy=_entropy(pread, size, limits),
        digests=_digests(pread, size, limits, notes) if digests else None,
        notes=notes,
        error=error,
    )
