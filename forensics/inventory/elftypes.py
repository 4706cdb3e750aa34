"""Small ELF structures shared by the extractor and the analysis (raw struct layouts).

Only what the extractor needs to find its ranges: the file header, program and
section headers and dynamic entries, for both classes and both byte orders.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
PF_X, PF_W, PF_R = 1, 2, 4
SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 0, 1, 2, 3
SHT_HASH, SHT_DYNAMIC, SHT_NOTE, SHT_NOBITS = 5, 6, 7, 8
SHT_GNU_HASH = 0x6FFFFFF6
SHT_ARM_ATTRIBUTES = 0x70000003  # also RISC-V's attributes
SHF_COMPRESSED = 0x800
SHN_XINDEX = 0xFFFF
PN_XNUM = 0xFFFF
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10
DT_SONAME, DT_RPATH, DT_RUNPATH = 14, 15, 29
DT_FLAGS_1 = 0x6FFFFFFB
DF_1_PIE = 0x08000000
DT_STRING_TAGS = (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH)


class ElfFormatError(ValueError):
    """The file is not an ELF file this code can read (with the reason)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Struct formats for one ELF class and byte order."""

    cls: int  # 32 or 64
    little: bool

    @property
    def order(self) -> str:
        return "<" if self.little else ">"

    @property
    def ehdr(self) -> struct.Struct:
        body = "HHIIIIIHHHHHH" if self.cls == 32 else "HHIQQQIHHHHHH"
        return struct.Struct(self.order + body)

    @property
    def phdr(self) -> struct.Struct:
        return struct.Struct(self.order + ("IIIIIIII" if self.cls == 32 else "IIQQQQQQ"))

    @property
    def shdr(self) -> struct.Struct:
        return struct.Struct(self.order + ("IIIIIIIIII" if self.cls == 32 else "IIQQQQIIQQ"))

    @property
    def dyn(self) -> struct.Struct:
        return struct.Struct(self.order + ("iI" if self.cls == 32 else "qQ"))

    @property
    def chdr_size(self) -> int:
        return 12 if self.cls == 32 else 24

    @property
    def ptr(self) -> struct.Struct:
        return struct.Struct(self.order + ("I" if self.cls == 32 else "Q"))


@dataclass(frozen=True, slots=True)
class Ehdr:
    layout: Layout
    e_type: int
    e_machine: int
    e_phoff: int
    e_shoff: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


@dataclass(frozen=True, slots=True)
class Seg:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True, slots=True)
class Sec:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int


def parse_ident(head: bytes) -> Layout:
    if len(head) < 16 or head[:4] != ELF_MAGIC:
        raise ElfFormatError("no ELF magic")
    if head[4] not in (1, 2):
        raise ElfFormatError(f"bad ELF class {head[4]}")
    if head[5] not in (1, 2):
        raise ElfFormatError(f"bad ELF data encoding {head[5]}")
    return Layout(32 if head[4] == 1 else 64, head[5] == 1)


def parse_ehdr(head: bytes) -> Ehdr:
    lay = parse_ident(head)
    st = lay.ehdr
    if len(head) < 16 + st.size:
        raise ElfFormatError("file is shorter than an ELF header")
    f = st.unpack_from(head, 16)
    # e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
    # e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    return Ehdr(lay, f[0], f[1], f[4], f[5], f[8], f[9], f[10], f[11], f[12])


def parse_phdr(lay: Layout, raw: bytes, at: int) -> Seg:
    f = lay.phdr.unpack_from(raw, at)
    if lay.cls == 32:  # type, offset, vaddr, paddr, filesz, memsz, flags, align
        return Seg(f[0], f[6], f[1], f[2], f[4], f[5])
    # type, flags, offset, vaddr, paddr, filesz, memsz, align
    return Seg(f[0], f[1], f[2], f[3], f[5], f[6])


def parse_shdr(lay: Layout, raw: bytes, at: int) -> tuple[int, Sec]:
    """(sh_name, section with an empty name); the caller resolves the name."""
    f = lay.shdr.unpack_from(raw, at)
    # name, type, flags, addr, offset, size, link, info, addralign, entsize
    return f[0], Sec("", f[1], f[2], f[3], f[4], f[5], f[6])


def cstring(table: bytes, at: int) -> str | None:
    """The NUL-terminated string at ``at`` in ``table`` (None when it is not there)."""
    if at < 0 or at >= len(table):
        return None
    end = table.find(b"\0", at)
    if end < 0:
        return None
    return table[at:end].decode("utf-8", "replace")


def vaddr_to_offset(segs: list[Seg], vaddr: int, size: int = 1) -> int | None:
    """File offset of [vaddr, vaddr+size) inside one PT_LOAD segment's file bytes."""
    for s in segs:
        if s.type == PT_LOAD and s.vaddr <= vaddr and vaddr + size <= s.vaddr + s.filesz:
            return s.offset + vaddr - s.vaddr
    return None
