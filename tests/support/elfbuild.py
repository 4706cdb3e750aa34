"""Build small ELF64 little-endian files by hand (fixtures, fuzz seeds, hostile cases).

One PT_LOAD maps the whole file at ``vaddr`` (so every allocated section's
address is ``vaddr + offset``); more program headers can point at sections.
Real tools read what this writes: readelf, pyelftools and Go's debug/elf.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_NOTE = 1, 3, 6, 7
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
PF_X, PF_W, PF_R = 1, 2, 4
VADDR = 0x400000


@dataclass
class Section:
    name: str
    type: int = SHT_PROGBITS
    flags: int = SHF_ALLOC
    data: bytes = b""
    link: int = 0
    align: int = 16
    entsize: int = 0
    # filled in by build()
    offset: int = 0
    addr: int = 0


@dataclass
class Elf:
    sections: list[Section] = field(default_factory=list)
    #: (p_type, p_flags, section name) for program headers besides the PT_LOAD
    phdrs: list[tuple[int, int, str]] = field(default_factory=list)
    e_type: int = 2  # ET_EXEC
    machine: int = 62  # x86-64
    load_flags: int = PF_R | PF_W
    vaddr: int = VADDR

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)


def note(owner: bytes, ntype: int, desc: bytes) -> bytes:
    """One ELF note: header, NUL-terminated owner and descriptor, each 4-aligned."""
    name = owner + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def build(elf: Elf) -> bytes:
    nph = 1 + len(elf.phdrs)
    off = 64 + 56 * nph
    body = bytearray(b"\0" * off)
    names = bytearray(b"\0")
    name_at: dict[str, int] = {}
    for s in [*elf.sections, Section(".shstrtab", SHT_STRTAB, 0)]:
        name_at[s.name] = len(names)
        names += s.name.encode() + b"\0"
    shstrtab = Section(".shstrtab", SHT_STRTAB, 0, bytes(names), align=1)
    allsec = [*elf.sections, shstrtab]
    for s in allsec:
        pad = -len(body) % max(1, s.align)
        body += b"\0" * pad
        s.offset = len(body)
        s.addr = elf.vaddr + s.offset if s.flags & SHF_ALLOC else 0
        body += s.data
    body += b"\0" * (-len(body) % 8)
    shoff = len(body)
    shdrs = bytearray(b"\0" * 64)  # SHT_NULL
    for s in allsec:
        shdrs += struct.pack(
            "<IIQQQQIIQQ",
            name_at[s.name],
            s.type,
            s.flags,
            s.addr,
            s.offset,
            len(s.data),
            s.link,
            0,
            s.align,
            s.entsize,
        )
    body += shdrs
    ph = struct.pack(
        "<IIQQQQQQ", PT_LOAD, elf.load_flags, 0, elf.vaddr, elf.vaddr, len(body), len(body), 0x1000
    )
    for ptype, pflags, sname in elf.phdrs:
        s = next(x for x in allsec if x.name == sname)
        ph += struct.pack(
            "<IIQQQQQQ",
            ptype,
            pflags,
            s.offset,
            elf.vaddr + s.offset,
            elf.vaddr + s.offset,
            len(s.data),
            len(s.data),
            s.align,
        )
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr += struct.pack(
        "<HHIQQQIHHHHHH",
        elf.e_type,
        elf.machine,
        1,
        elf.vaddr,
        64,
        shoff,
        0,
        64,
        56,
        nph,
        64,
        len(allsec) + 1,
        len(allsec),
    )
    body[0:64] = ehdr
    body[64 : 64 + len(ph)] = ph
    return bytes(body)


def go_pointer_buildinfo(version: str, modinfo: str) -> bytes:
    """An ELF with pre-Go-1.18 build information: the header points at two Go
    string headers, which point at the strings (all in .go.buildinfo)."""
    sentinel_start = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
    sentinel_end = bytes.fromhex("f932433186182072008242104116d8f2")
    mod = sentinel_start + modinfo.encode() + sentinel_end
    # layout inside the section: header (32) | vers hdr (16) | mod hdr (16) | vers | mod
    elf = Elf(sections=[Section(".go.buildinfo", flags=SHF_ALLOC | SHF_WRITE, data=b"\0" * 64)])
    build(elf)  # to learn the section's address
    sec = elf.section(".go.buildinfo")
    base = sec.addr
    vers_at, mod_at = base + 64, base + 64 + len(version)
    data = b"\xff Go buildinf:" + bytes([8, 0])
    data += struct.pack("<QQ", base + 32, base + 48)
    data += struct.pack("<QQ", vers_at, len(version)) + struct.pack("<QQ", mod_at, len(mod))
    data += version.encode() + mod
    sec.data = data
    return build(elf)
