"""The frame index of a zstd bundle (format 2.1): where content frames can be skipped.

A 2.1 writer ends the zstd frame wherever copied file contents (``files/...``)
and other members alternate, so every frame holds whole tar members of one
kind, and it writes, just before the manifest, a zstd *skippable* frame with
the list of frames (every zstd decoder, exuvia 2.0 included, passes over it; it
lies before the manifest's ``file_prefix``, so ``verify`` covers its bytes)::

    magic 0x184D2A5E | u32 length | JSON | u32 frame length | b"EXFI"

The JSON is ``{"version": 1, "frames": [[file_offset, file_length, tar_offset,
tar_length, content, first_member], ...]}`` (content: 1 for a frame of
``files/`` members, 0 otherwise; first_member: the position, in the manifest's
member list, of the frame's first member). A reader that only wants the
metadata (the timeline) finds the manifest's stored frame from the end of the
file (:func:`find_tail`), the index right before it (:func:`read_index`), and
decompresses only the frames with content 0, the tail, and the content frames
that hold the few copied files it wants (/etc/passwd, a log file: found by
their position in the manifest, :func:`manifest_positions`). The concatenation
of those frames is a valid zstd stream of whole tar members.

The index is untrusted like the rest of the bundle: every offset is checked
(frames contiguous from 0 to the index, in both the file and the tar stream),
and a reader compares what it read against the manifest's member list (a
metadata member it did not meet means the index lied; read everything then).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Any, BinaryIO

from forensics.jsonfast import quote

INDEX_MAGIC = 0x184D2A5E
TRAILER = b"EXFI"
FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
_STORED_HEAD = FRAME_MAGIC + b"\xe0"  # single segment, 8-byte content size, no checksum
_RAW_BLOCK = 128 << 10
#: how far from the end of the file the manifest's stored frame is looked for
MAX_TAIL = 512 << 20
_STEP = 4 << 20
#: the largest index read (a frame is at least a member: millions of frames is absurd)
MAX_INDEX = 64 << 20

Frame = tuple[int, int, int, int, int, int]


def is_content(name: str) -> bool:
    """Members whose frames a metadata reader may skip: copied file contents."""
    return name.startswith("files/")


def encode_index(frames: list[Frame]) -> bytes:
    """The skippable frame holding ``frames``."""
    body = json.dumps({"version": 1, "frames": frames}, separators=(",", ":")).encode()
    length = 8 + len(body) + 8
    return (
        INDEX_MAGIC.to_bytes(4, "little")
        + (len(body) + 8).to_bytes(4, "little")
        + body
        + length.to_bytes(4, "little")
        + TRAILER
    )


def _stored_length(total: int) -> int:
    blocks = max(1, -(-total // _RAW_BLOCK))
    return 13 + total + 3 * blocks


def find_tail(raw: BinaryIO, size: int) -> int | None:
    """Where the stored frame that ends the file (manifest, signature, end of archive)
    starts, or None (a 1.0 bundle, a plain tar, a cut-off file)."""
    end = size
    floor = max(0, size - MAX_TAIL)
    carry = b""
    while end > floor:
        start = max(floor, end - _STEP)
        raw.seek(start)
        buf = raw.read(end - start) + carry
        pos = len(buf)
        while True:
            pos = buf.rfind(_STORED_HEAD, 0, pos)
            if pos < 0:
                break
            if pos + 13 <= len(buf):
                total = int.from_bytes(buf[pos + 5 : pos + 13], "little")
                if total > 0 and start + pos + _stored_length(total) == size:
                    return start + pos
        carry = buf[:12]
        end = start
    return None


def read_index(raw: BinaryIO, tail: int) -> list[Frame] | None:
    """The frame list ending right before ``tail``, checked; None if absent or unusable."""
    if tail < 16:
        return None
    raw.seek(tail - 8)
    trailer = raw.read(8)
    if len(trailer) != 8 or trailer[4:] != TRAILER:
        return None
    length = int.from_bytes(trailer[:4], "little")
    if length < 16 or length > MAX_INDEX or length > tail:
        return None
    start = tail - length
    raw.seek(start)
    data = raw.read(length)
    if (
        len(data) != length
        or int.from_bytes(data[:4], "little") != INDEX_MAGIC
        or int.from_bytes(data[4:8], "little") != length - 8
    ):
        return None
    try:
        doc: Any = json.loads(data[8:-8])
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        return None
    return _checked(doc.get("frames"), start)


def _checked(frames: Any, end: int) -> list[Frame] | None:
    if not isinstance(frames, list):
        return None
    out: list[Frame] = []
    file_at = tar_at = 0
    for f in frames:
        if (
            not isinstance(f, list)
            or len(f) != 6
            or not all(type(x) is int and x >= 0 for x in f)
            or f[0] != file_at
            or f[2] != tar_at
            or f[1] == 0
            or f[4] not in (0, 1)
            or (out and f[5] < out[-1][5])
        ):
            return None
        out.append((f[0], f[1], f[2], f[3], f[4], f[5]))
        file_at += f[1]
        tar_at += f[3]
    return out if file_at == end and out else None


@dataclass
class Plan:
    """A bundle's frames (checked) and where its stored tail begins."""

    size: int
    tail: int
    frames: list[Frame]

    def ranges(self, positions: list[int] = ()) -> list[tuple[int, int]]:  # type: ignore[assignment]
        """(offset, length) of the parts of the file a metadata reader needs, in
        order: every metadata frame, the content frames holding the members at
        ``positions`` (in the manifest's list), and the tail."""
        firsts = [f[5] for f in self.frames]
        wanted = {bisect.bisect_right(firsts, p) - 1 for p in positions}
        out: list[tuple[int, int]] = []
        for k, (off, length, _t, _tl, content, _first) in enumerate(self.frames):
            if content and k not in wanted:
                continue
            if out and out[-1][0] + out[-1][1] == off:
                out[-1] = (out[-1][0], out[-1][1] + length)
            else:
                out.append((off, length))
        out.append((self.tail, self.size - self.tail))
        return out

    def tail_bytes(self, raw: BinaryIO) -> bytes:
        """The stored tail's tar bytes (manifest header, manifest, signature, end)."""
        raw.seek(self.tail + 13)
        data = raw.read(min(self.size - self.tail - 13, MAX_TAIL))
        out = bytearray()
        at = 0
        while at + 3 <= len(data):
            head = int.from_bytes(data[at : at + 3], "little")
            if (head >> 1) & 3 != 0:  # not a raw block: not what the writer wrote
                return b""
            size = head >> 3
            out += data[at + 3 : at + 3 + size]
            at += 3 + size
            if head & 1:
                break
        return bytes(out)


def read_plan(raw: BinaryIO, size: int) -> Plan | None:
    """The bundle's frame plan, or None when it has no usable frame index."""
    tail = find_tail(raw, size)
    if tail is None:
        return None
    frames = read_index(raw, tail)
    return Plan(size, tail, frames) if frames is not None else None


def manifest_positions(manifest: bytes, names: list[str]) -> list[int]:
    """Where ``names`` are in the member list of the manifest's bytes, as the writer
    formats it (``{"name":...`` per entry; a name's own quotes are escaped, so the
    pattern cannot occur inside one). Names not found are left out."""
    start = manifest.find(b'"members":[')
    if start < 0:
        return []
    out = []
    for name in names:
        at = manifest.find(
            b'{"name":' + quote(name).encode("utf-8", "surrogateescape") + b",", start
        )
        if at >= 0:
            out.append(manifest.count(b'{"name":', start, at))
    return out


class RangeFile:
    """A read()-able view of some byte ranges of a file, one after the other."""

    def __init__(self, raw: BinaryIO, ranges: list[tuple[int, int]]) -> None:
        self._raw = raw
        self._ranges = list(reversed(ranges))
        self._left = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        while self._left == 0:
            if not self._ranges:
                return b""
            off, self._left = self._ranges.pop()
            self._raw.seek(off)
        data = self._raw.read(min(n, self._left))
        if not data:  # the file shrank under us
            self._left = 0
            self._ranges.clear()
            return b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._raw.close()
