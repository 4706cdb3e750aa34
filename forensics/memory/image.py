"""What a captured core says about the executables mapped from memfds.

A process running from a memfd (``memfd_create`` + ``fexecve``) has no file on
disk; its image is in its memory, and the core holds it. Read from the core
alone, as a stream, without extracting it: the head (ELF header, program
headers, the ``NT_FILE`` note naming each file-backed mapping) and then, for
each mapping of a ``/memfd:`` file at offset 0, the first bytes of its segment:
the mapped ELF header, program headers and notes (the GNU build-id). Memory is
bounded: the head (capped) and :data:`IMAGE_HEAD` bytes per image.

Pure: it is given a ``read(n)`` over the core's bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

HEAD_CAP = 16 << 20
IMAGE_HEAD = 64 << 10
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
PT_LOAD, PT_NOTE = 1, 4
NT_FILE = 0x46494C45
NT_GNU_BUILD_ID = 3
MACHINES = {3: "x86", 62: "x86_64", 40: "arm", 183: "aarch64", 243: "riscv"}
TYPES = {2: "ET_EXEC", 3: "ET_DYN"}


@dataclass(frozen=True, slots=True)
class MemfdImage:
    """One memfd-backed executable image found in a core."""

    path: str  # the mapping's name, as /proc/PID/maps showed it
    start: int  # its address in the process
    core_offset: int  # where its bytes are in the core
    examined: int  # bytes of it read
    machine: str | None = None
    e_type: str | None = None
    build_id: str | None = None
    problem: str | None = None  # why it could not be read as an ELF image


def _notes(data: bytes) -> list[tuple[bytes, int, bytes]]:
    out: list[tuple[bytes, int, bytes]] = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        pos += 12
        name = data[pos : pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = data[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        if len(desc) < descsz:
            break
        out.append((name, ntype, desc))
    return out


def _nt_file(desc: bytes) -> list[tuple[int, int, int, bytes]]:
    """(start, end, page offset, path) of each file mapping."""
    if len(desc) < 16:
        return []
    count, _page = struct.unpack_from("<QQ", desc, 0)
    if count > len(desc) // 24:
        return []
    table = [struct.unpack_from("<QQQ", desc, 16 + 24 * i) for i in range(count)]
    names = desc[16 + 24 * count :].split(b"\0")
    return [(s, e, off, names[i] if i < len(names) else b"") for i, (s, e, off) in enumerate(table)]


def _elf_identity(data: bytes, path: str, start: int, core_offset: int) -> MemfdImage:
    def bad(why: str) -> MemfdImage:
        return MemfdImage(path, start, core_offset, len(data), problem=why)

    if len(data) < _EHDR.size or data[:4] != b"\x7fELF":
        return bad("the mapping does not start with an ELF header")
    if data[4] != 2 or data[5] != 1:
        return bad("not a 64-bit little-endian ELF image")
    _i, e_type, machine, _v, _entry, phoff, _sh, _f, _eh, phentsize, phnum, *_ = _EHDR.unpack_from(
        data, 0
    )
    build_id = None
    if phentsize == _PHDR.size and phoff + phnum * _PHDR.size <= len(data):
        for i in range(phnum):
            ptype, _fl, off, _va, _pa, filesz, _ms, _al = _PHDR.unpack_from(
                data, phoff + i * _PHDR.size
            )
            if ptype == PT_NOTE and off + filesz <= len(data):
                for name, ntype, desc in _notes(data[off : off + filesz]):
                    if name == b"GNU" and ntype == NT_GNU_BUILD_ID:
                        build_id = desc.hex()
    return MemfdImage(
        path,
        start,
        core_offset,
        len(data),
        machine=MACHINES.get(machine, str(machine)),
        e_type=TYPES.get(e_type, str(e_type)),
        build_id=build_id,
    )


def memfd_images(read: Callable[[int], bytes]) -> list[MemfdImage]:
    """The memfd-backed images of the core ``read`` gives, in core order."""
    head = read(_EHDR.size)
    if len(head) < _EHDR.size or head[:4] != b"\x7fELF":
        return []
    phoff, phnum = _EHDR.unpack_from(head, 0)[5], _EHDR.unpack_from(head, 0)[10]
    need = phoff + phnum * _PHDR.size
    if need > HEAD_CAP:
        return []
    head += _read_exactly(read, need - len(head))
    if len(head) < need:
        return []  # cut inside its program headers
    phdrs = [_PHDR.unpack_from(head, phoff + i * _PHDR.size) for i in range(phnum)]
    loads = {p[3]: (p[2], p[5]) for p in phdrs if p[0] == PT_LOAD and p[5] > 0}
    files: list[tuple[int, int, int, bytes]] = []
    pos = len(head)
    for p in sorted((p for p in phdrs if p[0] == PT_NOTE), key=lambda p: p[2]):
        off, size = p[2], p[5]
        if off < pos or off + size > HEAD_CAP:
            continue
        _read_exactly(read, off - pos)
        data = _read_exactly(read, size)
        pos = off + len(data)
        for name, ntype, desc in _notes(data):
            if name == b"CORE" and ntype == NT_FILE:
                files.extend(_nt_file(desc))
    wanted = sorted(
        (loads[s][0], loads[s][1], s, path)
        for s, _e, pgoff, path in files
        if pgoff == 0 and path.startswith(b"/memfd:") and s in loads
    )
    out: list[MemfdImage] = []
    for off, filesz, start, path in wanted:
        if off < pos:
            continue
        while pos < off:  # forward through the segments before it, bounded chunks
            got = read(min(1 << 20, off - pos))
            if not got:
                return out
            pos += len(got)
        data = _read_exactly(read, min(filesz, IMAGE_HEAD))
        pos += len(data)
        text = path.decode("utf-8", "backslashreplace")
        out.append(_elf_identity(data, text, start, off))
    return out


def _read_exactly(read: Callable[[int], bytes], n: int) -> bytes:
    parts, left = [], n
    while left > 0:
        got = read(min(left, 1 << 20))
        if not got:
            break
        parts.append(got)
        left -= len(got)
    return b"".join(parts)
