"""Parse /proc/PID/maps into mappings, and say which of them a mode captures."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from collectors.memory import MODES as MODES  # noqa: PLC0414 - re-exported (defined there for the agent)

DELETED = b" (deleted)"
UNTOUCHED = "never touched (zero pages): not stored"
#: pseudo mappings the kernel refuses to /proc/PID/mem (vvar: EIO) or that are
#: not the process's (vsyscall: a fixed kernel page)
UNREADABLE = {
    b"[vvar]": "kernel vvar page (not readable through /proc/PID/mem)",
    b"[vvar_vclock]": "kernel vvar page (not readable through /proc/PID/mem)",
    b"[vsyscall]": "legacy vsyscall page (kernel text, not the process's)",
}


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    perms: str  # "rwxp" / "r--s"
    offset: int
    dev: str
    inode: int
    path: bytes  # without " (deleted)"
    deleted: bool
    #: a piece of a private anonymous mapping whose pages were never touched
    untouched: bool = False

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def kind(self) -> str:
        """anon, heap, stack, memfd, deleted, file, vdso or pseudo."""
        p = self.path
        if not p:
            return "anon"
        if p == b"[heap]":
            return "heap"
        if p == b"[stack]" or p.startswith(b"[stack:"):
            return "stack"
        if p == b"[vdso]":
            return "vdso"
        if p.startswith(b"["):
            return "pseudo"
        if p.startswith(b"/memfd:"):
            return "memfd"
        if self.deleted:
            return "deleted"
        return "file"

    @property
    def file_backed(self) -> bool:
        """Backed by a file (NT_FILE lists it): anything with an inode."""
        return self.inode != 0 and not self.path.startswith(b"[")

    @property
    def private_anonymous(self) -> bool:
        """Private memory with no file behind it: a page never touched is zero."""
        return self.kind in ("anon", "heap", "stack") and self.perms[3:4] == "p"


def split_untouched(m: Mapping, spans: list[tuple[int, int]]) -> list[Mapping]:
    """``m`` cut at its untouched ``spans`` (address, length; sorted, inside ``m``),
    which become pieces marked ``untouched``."""
    out: list[Mapping] = []
    pos = m.start

    def piece(lo: int, hi: int, untouched: bool) -> Mapping:
        return dataclasses.replace(
            m, start=lo, end=hi, offset=m.offset + lo - m.start, untouched=untouched
        )

    for addr, n in spans:
        if addr > pos:
            out.append(piece(pos, addr, False))
        out.append(piece(addr, addr + n, True))
        pos = addr + n
    if pos < m.end:
        out.append(piece(pos, m.end, False))
    return out


def parse_line(line: bytes) -> Mapping | None:
    parts = line.split(None, 5)
    if len(parts) < 5:
        return None
    try:
        lo, _, hi = parts[0].partition(b"-")
        start, end = int(lo, 16), int(hi, 16)
        offset, inode = int(parts[2], 16), int(parts[4])
    except ValueError:
        return None
    if end <= start:
        return None
    path = parts[5].strip() if len(parts) == 6 else b""
    deleted = path.endswith(DELETED)
    if deleted:
        path = path[: -len(DELETED)]
    return Mapping(
        start,
        end,
        parts[1].decode("ascii", "replace"),
        offset,
        parts[3].decode("ascii", "replace"),
        inode,
        path,
        deleted,
    )


def parse_maps(raw: bytes) -> list[Mapping]:
    """Every well-formed line of /proc/PID/maps, in address order."""
    out = [m for m in (parse_line(line) for line in raw.splitlines()) if m is not None]
    out.sort(key=lambda m: m.start)
    return out


def why_not(m: Mapping, mode: str) -> str | None:
    """None if ``mode`` captures ``m``'s bytes, else the reason it does not.

    anon: anonymous, heap, stack, memfd and deleted-file mappings (what the file
    capture cannot give), private writable file mappings (.data, .bss and
    relocations: they differ from the file) and the vDSO; all: every readable
    mapping.
    """
    if m.path in UNREADABLE:
        return UNREADABLE[m.path]
    if m.untouched:
        return UNTOUCHED
    if m.perms[:1] != "r":
        return "no read permission (guard or reserved region)"
    if mode == "all":
        return None
    kind = m.kind
    if kind in ("anon", "heap", "stack", "memfd", "deleted", "vdso"):
        return None
    if kind == "file" and m.perms[1:2] == "w" and m.perms[3:4] == "p":
        return None
    if kind == "file":
        return "file-backed, not written (its file is captured with --files; --memory all takes it)"
    return f"pseudo mapping {m.path.decode('ascii', 'replace')}"
