"""ELF analysis of an extract (pyelftools over a SparseImage), bounded and total.

:func:`analyze` never raises for bad input: a file it cannot read at all raises
:class:`Unparseable` with the reason (the one exception callers handle), and a
part it cannot read (a section not captured, a corrupt note) becomes a line in
``ElfInfo.notes`` while the rest is still reported. Every loop is capped by a
count and by a per-file deadline; every read is within the extract, which is
itself bounded (forensics/inventory/elfscan.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO, Any, cast

from elftools.common.utils import struct_parse
from elftools.elf.elffile import ELFFile

from forensics.inventory import golang
from forensics.inventory.elfblob import ElfBlob, NotCaptured, SparseImage
from forensics.inventory.elfscan import SKIPPED_NOTES, may_be_go
from forensics.inventory.elftypes import (
    DF_1_PIE,
    Layout,
    Sec,
    Seg,
    cstring,
    parse_phdr,
    parse_shdr,
    vaddr_to_offset,
)
from forensics.inventory.model import ElfInfo
from forensics.inventory.rust import AuditableError, parse_dep_v0

MAX_SECTIONS = 8192
MAX_SEGMENTS = 1024
MAX_TAGS = 4096
MAX_NOTES = 256
FDO_PACKAGING_METADATA = 0xCAFE1A7E
HIGH_ENTROPY = 7.2

_KIND = {"ET_EXEC": "executable", "ET_DYN": "shared object", "ET_REL": "relocatable"}
_KIND["ET_CORE"] = "core"


class Unparseable(Exception):
    """The file cannot be analysed as ELF at all (with the reason)."""


class _Deadline(Exception):
    pass


def _machine(v: Any) -> str:
    s = str(v)
    return s[3:] if s.startswith("EM_") else s


class _Analysis:
    def __init__(self, blob: ElfBlob, seconds: float) -> None:
        self.blob = blob
        self.img: SparseImage = blob.image()
        self.deadline = time.monotonic() + seconds
        self.notes: list[str] = list(blob.notes)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Deadline

    def step(self, what: str, fn: Callable[[], None]) -> None:
        """Run one part; what fails is noted, the rest goes on."""
        try:
            fn()
        except _Deadline:
            raise
        except NotCaptured as err:
            self.notes.append(f"{what}: not in the extract ({err})")
        except Exception as err:  # noqa: BLE001 - hostile input: any parser error is a note
            self.notes.append(f"{what}: unreadable ({type(err).__name__}: {err})")

    def read(self, off: int, n: int) -> bytes:
        """Captured bytes at ``off`` (short or empty where the extract has none)."""
        try:
            return self.img.pread(off, n)
        except NotCaptured:
            return b""

    def cstring(self, off: int, cap: int) -> str | None:
        """The NUL-terminated string at ``off`` (None when the extract lacks it)."""
        data = b""
        while len(data) < cap:
            piece = self.read(off + len(data), min(256, cap - len(data)))
            if not piece:
                return None
            data += piece
            end = data.find(b"\0")
            if end >= 0:
                return data[:end].decode("utf-8", "replace")
        return None

    def scan(self, off: int, n: int) -> bytes:
        self.tick()
        return self.img.read_filled(off, min(n, max(0, self.img.size - off)))


def analyze(blob: ElfBlob, *, seconds: float = 2.0) -> ElfInfo:
    """Analyse one extract. Unparseable when it is not a readable ELF file."""
    if blob.error:
        raise Unparseable(blob.error)
    a = _Analysis(blob, seconds)
    try:
        elf = ELFFile(a.img)  # type: ignore[arg-type]  # a RawIOBase is a fine IO[bytes]
        info = ElfInfo(
            elf_class=int(elf.elfclass),
            endian="little" if elf.little_endian else "big",
            e_type=str(elf["e_type"]),
            kind=_KIND.get(str(elf["e_type"]), "other"),
            machine=_machine(elf["e_machine"]),
        )
    except NotCaptured as err:
        raise Unparseable(f"ELF header not in the extract ({err})") from None
    except Exception as err:  # noqa: BLE001 - any pyelftools/construct error means unreadable
        raise Unparseable(f"not a readable ELF file ({type(err).__name__}: {err})") from None
    try:
        _details(a, elf, info)
    except _Deadline:
        a.notes.append(f"analysis stopped: the {seconds:g}s time limit was reached")
    info.notes = a.notes
    return info


def _details(a: _Analysis, elf: ELFFile, info: ElfInfo) -> None:
    secs: list[Sec] = []
    indexes: dict[str, int] = {}
    segs: list[Seg] = []
    raw_segs: list[tuple[int, Any]] = []

    lay = Layout(info.elf_class, info.endian == "little")

    def table(
        off: int, count: int, entsize: int, minsize: int, what: str
    ) -> tuple[bytes, list[int]]:
        """A header table's bytes, and the offsets in them of the entries it holds."""
        if count == 0 or off == 0:
            return b"", []
        if entsize < minsize:
            a.notes.append(f"{what}: entry size {entsize} is smaller than {minsize}")
            return b"", []
        raw = a.read(off, count * entsize)
        got = [k * entsize for k in range(count) if k * entsize + minsize <= len(raw)]
        if len(got) < count:
            a.notes.append(f"{what}: {count - len(got)} of {count} not in the extract")
        return raw, got

    def sections() -> None:
        # the header table is parsed with struct: pyelftools' construct would take
        # ~60 us per entry, the bulk of an inventory's time (docs/performance.md)
        n = elf.num_sections()
        if n > MAX_SECTIONS:
            a.notes.append(f"{n} sections; only the first {MAX_SECTIONS} read")
        n = min(n, MAX_SECTIONS)
        raw, at = table(elf["e_shoff"], n, elf["e_shentsize"], lay.shdr.size, "section headers")
        entries = [parse_shdr(lay, raw, k) for k in at]
        strndx = elf.get_shstrndx() if entries else 0
        names = b""
        if 0 < strndx < len(entries) and entries[strndx][1].type != 8:
            st = entries[strndx][1]
            names = a.read(st.offset, min(st.size, 256 << 10))
        for k, (name_at, sec) in enumerate(entries):
            name = cstring(names, name_at) or ""
            secs.append(Sec(name, sec.type, sec.flags, sec.addr, sec.offset, sec.size, sec.link))
            indexes.setdefault(name, k)

    def segments() -> None:
        n = min(elf.num_segments(), MAX_SEGMENTS)
        raw, at = table(elf["e_phoff"], n, elf["e_phentsize"], lay.phdr.size, "program headers")
        for k, off in enumerate(at):
            segs.append(parse_phdr(lay, raw, off))
            raw_segs.append((k, None))

    a.step("section headers", sections)
    a.step("program headers", segments)
    info.section_headers = bool(secs)
    names = {s.name for s in secs}
    info.stripped = ".symtab" not in names
    info.debug_info = any(s.name.startswith((".debug_", ".zdebug_")) for s in secs)

    def interp() -> None:
        seg = next((s for s in segs if s.type == 3), None)
        if seg is not None:
            info.interpreter = a.cstring(seg.offset, min(seg.filesz, 4096)) or None

    a.step("interpreter", interp)
    flags_1 = [0]

    def dynamic() -> None:
        dsec = next((s for s in secs if s.type == 6), None)
        strtab: int | None = None
        if dsec is not None:
            off, size = dsec.offset, dsec.size
            if 0 < dsec.link < len(secs) and secs[dsec.link].type != 8:
                strtab = secs[dsec.link].offset
        else:
            dseg = next((s for s in segs if s.type == 2), None)
            if dseg is None:
                return
            off, size = dseg.offset, dseg.filesz
        ent = elf.structs.Elf_Dyn.sizeof()
        tags: list[tuple[str, int]] = []
        for n in range(min(MAX_TAGS, size // ent)):
            a.tick()
            raw = struct_parse(elf.structs.Elf_Dyn, cast("IO[bytes]", a.img), off + n * ent)
            t = str(raw["d_tag"])
            if t == "DT_NULL":
                break
            tags.append((t, int(raw["d_val"])))
        if strtab is None:
            vaddr = next((v for t, v in tags if t == "DT_STRTAB"), None)
            strtab = vaddr_to_offset(segs, vaddr) if vaddr is not None else None
        for t, v in tags:
            if t == "DT_FLAGS_1":
                flags_1[0] = v
            if t not in ("DT_NEEDED", "DT_RPATH", "DT_RUNPATH", "DT_SONAME"):
                continue
            text = a.cstring(strtab + v, 4096) if strtab is not None else None
            if text is None:
                a.notes.append(f"dynamic entry {t}: its string is not in the extract")
            elif t == "DT_NEEDED":
                info.needed.append(text)
            elif t == "DT_RPATH":
                info.rpath.extend(p for p in text.split(":") if p)
            elif t == "DT_RUNPATH":
                info.runpath.extend(p for p in text.split(":") if p)
            else:
                info.soname = text

    a.step("dynamic section", dynamic)
    has_dynamic = any(s.type == 2 for s in segs) or any(s.type == 6 for s in secs)
    info.pie = bool(flags_1[0] & DF_1_PIE)
    if info.interpreter:
        info.linking = "dynamic"
    elif has_dynamic and info.e_type == "ET_DYN" and info.pie:
        info.linking = "static-pie"
    elif has_dynamic and (info.needed or info.e_type == "ET_DYN"):
        info.linking = "dynamic"
    else:
        info.linking = "static"
    if info.e_type == "ET_DYN" and (info.pie or (info.interpreter and not info.soname)):
        info.kind = "executable"
    a.step("notes", lambda: _notes(a, elf, secs, segs, raw_segs=raw_segs, info=info))

    def comment() -> None:
        for s in secs:
            if s.name == ".comment" and s.type != 8:
                data = a.read(s.offset, min(s.size, 4096))
                parts = [p.decode("utf-8", "replace") for p in data.split(b"\0") if p.strip()]
                info.comment = list(dict.fromkeys(parts))[:16]

    a.step(".comment", comment)

    def go() -> None:
        if not may_be_go(secs):
            return
        try:
            info.go = golang.go_buildinfo(a.scan, a.read, secs, segs)
        except golang.NotGo as err:
            if any(s.name == ".go.buildinfo" for s in secs):
                info.go_error = str(err)

    a.step("Go build information", go)

    def rust() -> None:
        for s in secs:
            if s.name == ".dep-v0" and s.type != 8:
                data = a.read(s.offset, s.size)
                if len(data) < s.size:
                    info.rust_error = "section .dep-v0 not fully in the extract"
                    return
                try:
                    info.rust = parse_dep_v0(data)
                except AuditableError as err:
                    info.rust_error = str(err)

    a.step("cargo auditable data", rust)
    _language(info, names)
    _packing(a, info, names)


def _notes(
    a: _Analysis,
    elf: ELFFile,
    secs: list[Sec],
    segs: list[Seg],
    *,
    raw_segs: list[tuple[int, Any]],
    info: ElfInfo,
) -> None:
    areas: list[Any] = []
    for i, s in enumerate(secs):
        if s.type == 7 and s.size and s.name not in SKIPPED_NOTES:
            areas.append(("section", i))
    if not areas:
        for i, seg in enumerate(segs):
            if seg.type == 4 and seg.filesz:
                areas.append(("segment", raw_segs[i][0]))
    count = 0
    for where, i in areas[:64]:
        try:
            obj: Any = elf.get_section(i) if where == "section" else elf.get_segment(i)
            for note in obj.iter_notes():
                a.tick()
                count += 1
                if count > MAX_NOTES:
                    a.notes.append(f"more than {MAX_NOTES} notes; the rest not read")
                    return
                _note(info, note)
        except NotCaptured as err:
            a.notes.append(f"note {where} {i}: not in the extract ({err})")
        except (_Deadline, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - a corrupt note is noted, not fatal
            a.notes.append(f"note {where} {i}: unreadable ({type(err).__name__}: {err})")


def _note(info: ElfInfo, note: Any) -> None:
    name, ntype = note["n_name"], note["n_type"]
    desc = note["n_descdata"]
    if name == "GNU" and ntype == "NT_GNU_BUILD_ID":
        info.build_id = str(note["n_desc"])
    elif name == "Go" and ntype in (4, "NT_GNU_GOLD_VERSION"):
        info.go_build_id = bytes(desc).rstrip(b"\0").decode("utf-8", "replace")
    elif name == "FDO" and ntype == FDO_PACKAGING_METADATA:
        try:
            doc = json.loads(bytes(desc).rstrip(b"\0"))
        except (ValueError, RecursionError):
            return
        if isinstance(doc, dict):
            info.package_note = {str(k): v for k, v in doc.items() if isinstance(v, str | int)}


def _language(info: ElfInfo, names: set[str]) -> None:
    comment = " | ".join(info.comment)
    if info.go is not None:
        info.language, info.language_evidence = "Go", f"build information ({info.go.go_version})"
    elif names & {".go.buildinfo", ".gopclntab", ".note.go.buildid"} or info.go_build_id:
        info.language, info.language_evidence = "Go", "Go sections or build id note"
    elif info.rust is not None or ".dep-v0" in names:
        info.language, info.language_evidence = "Rust", "cargo-auditable .dep-v0 section"
    elif "rustc version" in comment:
        info.language, info.language_evidence = "Rust", "rustc in .comment"
    elif ".rustc" in names or any(n.startswith("libstd-") for n in info.needed):
        info.language, info.language_evidence = "Rust", "Rust metadata section or libstd"
    elif any(n.startswith(("libstdc++", "libc++")) for n in info.needed):
        info.language, info.language_evidence = "C/C++", "links the C++ standard library"
    elif "GCC:" in comment or "clang" in comment:
        info.language, info.language_evidence = "C/C++", "compiler in .comment"
    elif info.interpreter or any(n.startswith(("libc.so", "libc.musl")) for n in info.needed):
        info.language, info.language_evidence = "C/C++", "links the C library"


def _packing(a: _Analysis, info: ElfInfo, names: set[str]) -> None:
    info.entropy = a.blob.entropy
    head = a.read(0, 4096)
    upx = b"UPX!" in head or bool(names & {"UPX0", "UPX1"})
    high = info.entropy is not None and info.entropy >= HIGH_ENTROPY
    if upx:
        info.packing = "UPX-packed (UPX marker)"
    elif high and not info.section_headers:
        info.packing = f"likely packed: entropy {info.entropy:.2f} bits/byte, no section headers"
    elif high:
        info.packing = f"high entropy ({info.entropy:.2f} bits/byte): compressed or encrypted data"
