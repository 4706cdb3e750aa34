"""Pages of a captured core, for a hex and strings view (replay's memory screen).

A core member is read from the bundle as a stream, never extracted and never
held whole: :class:`CoreCursor` keeps the member's stream open and moves
forward through it (reading and dropping what lies before the page asked for,
in bounded chunks), reopening the bundle only to go back. A page is at most
:data:`MAX_PAGE` bytes, so a 1 GiB region costs one page of memory.

Pure over bytes: the hex dump shows only hex digits and printable ASCII, so a
target's bytes can never reach a terminal as control sequences or markup.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

from forensics.errors import BundleError
from forensics.timeline.bundleio import MemberStream, StreamCut, stream_members

MAX_PAGE = 64 << 10
_SKIP = 1 << 20
_PRINTABLE = bytes(range(0x20, 0x7F))
_DOTS = bytes(c if c in _PRINTABLE else 0x2E for c in range(256))


class CoreCursor:
    """Read ranges of one member of a bundle, going forward through one stream."""

    def __init__(self, bundle: str | Path, member: str) -> None:
        self.bundle = Path(bundle)
        self.member = member
        self._gen: Generator[MemberStream, None, None] | None = None
        self._m: MemberStream | None = None
        self._pos = 0
        #: times the bundle was opened (1 + going back); tests and the status line
        self.opens = 0

    def _open(self) -> MemberStream:
        self.close()
        self.opens += 1
        gen = _members(self.bundle, self.member)
        try:
            m = next(gen, None)
        except StreamCut as err:
            raise BundleError(str(err)) from None
        if m is None:
            gen.close()
            raise BundleError(f"{self.member} is not in the bundle")
        self._gen, self._m, self._pos = gen, m, 0
        return m

    @property
    def size(self) -> int:
        return (self._m or self._open()).size

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` (at most :data:`MAX_PAGE`) bytes from ``offset``."""
        length = max(0, min(length, MAX_PAGE))
        m = self._m
        if m is None or offset < self._pos:
            m = self._open()
        offset = max(0, min(offset, m.size))
        try:
            while self._pos < offset:  # forward: read and drop, a chunk at a time
                got = m.read(min(_SKIP, offset - self._pos))
                if not got:
                    break
                self._pos += len(got)
            out = bytearray()
            while len(out) < length:
                got = m.read(length - len(out))
                if not got:
                    break
                out += got
        except StreamCut as err:
            self.close()
            raise BundleError(str(err)) from None
        self._pos += len(out)
        return bytes(out)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        self._gen, self._m, self._pos = None, None, 0


def _members(bundle: Path, member: str) -> Generator[MemberStream, None, None]:
    yield from stream_members(bundle, lambda n: n == member, skip_content=True)


def hexdump(data: bytes, address: int, width: int = 16) -> list[str]:
    """``address  hex bytes  |ascii|`` lines; anything not printable ASCII is a dot."""
    lines = []
    for i in range(0, len(data), width):
        row = data[i : i + width]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = row.translate(_DOTS).decode("ascii")
        lines.append(f"{address + i:016x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return lines


def strings(data: bytes, address: int, min_len: int = 6) -> list[tuple[int, str]]:
    """Runs of at least ``min_len`` printable ASCII bytes: (address, text)."""
    pat = re.compile(rb"[\x20-\x7e]{%d,}" % max(1, min_len))
    return [(address + m.start(), m.group().decode("ascii")) for m in pat.finditer(data)]


def stored_regions(mem: dict[str, Any]) -> list[dict[str, Any]]:
    """The regions of a ``memory`` record that have bytes in the core."""
    out = []
    for r in mem.get("regions") or []:
        if (
            isinstance(r, dict)
            and type(r.get("stored")) is int
            and r["stored"] > 0
            and type(r.get("core_offset")) is int
            and type(r.get("start")) is int
        ):
            out.append(r)
    return out
