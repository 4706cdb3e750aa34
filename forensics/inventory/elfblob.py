"""The ELF extract ("elfx") blob: the parts of an ELF file the inventory needs.

A capture does not copy most executables, so for each one it stores an extract
instead: the bytes of selected ranges of the file, with a small JSON header.
The format (docs/inventory.md) is::

    <one line of JSON, UTF-8, ending in "\\n">
    <the bytes of every range in "ranges", concatenated in that order>

The header has ``format`` ("exuvia-elfx"), ``version`` (1), ``file_size`` (the
whole file's size), ``ranges`` ([[offset, length], ...], sorted, disjoint, each
inside the file), and optionally ``entropy`` ({"bits_per_byte", "sampled"}),
``digests`` ({"md5", "sha1"} of the whole file), ``notes`` (what the extractor
could not take, and why) and ``error`` (the file is not an ELF it can read).

:class:`SparseImage` gives the blob back as a file of ``file_size`` bytes in
which only the captured ranges can be read: reading anything else raises
:class:`NotCaptured`, so an analysis never mistakes a gap for zeros.
"""

from __future__ import annotations

import bisect
import io
import json
from dataclasses import dataclass, field
from typing import Any

FORMAT = "exuvia-elfx"
VERSION = 1
MAX_HEADER = 1 << 20
MAX_RANGES = 1 << 16


class BlobError(ValueError):
    """The blob is malformed (it is untrusted input, like the whole bundle)."""


class NotCaptured(Exception):
    """A read touched bytes of the file that the extract does not hold."""

    def __init__(self, offset: int, size: int) -> None:
        super().__init__(f"bytes {offset}..{offset + size} of the file were not captured")
        self.offset = offset
        self.size = size


@dataclass(slots=True)
class ElfBlob:
    file_size: int
    ranges: list[tuple[int, int]]
    data: bytes  # the concatenated range bytes
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        notes = self.header.get("notes")
        return [str(n) for n in notes] if isinstance(notes, list) else []

    @property
    def error(self) -> str | None:
        err = self.header.get("error")
        return str(err) if err else None

    @property
    def digests(self) -> dict[str, str]:
        d = self.header.get("digests")
        if not isinstance(d, dict):
            return {}
        return {str(k): str(v) for k, v in d.items() if isinstance(v, str)}

    @property
    def entropy(self) -> float | None:
        e = self.header.get("entropy")
        if isinstance(e, dict) and isinstance(e.get("bits_per_byte"), int | float):
            return float(e["bits_per_byte"])
        return None

    def image(self) -> SparseImage:
        return SparseImage(self)


def merge_ranges(parts: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Sort and coalesce (offset, bytes) pieces that overlap or touch."""
    out: list[tuple[int, bytearray]] = []
    for off, data in sorted(parts, key=lambda p: p[0]):
        if not data:
            continue
        if out:
            start, buf = out[-1]
            end = start + len(buf)
            if off <= end:
                if off + len(data) > end:
                    buf += data[end - off :]
                continue
        out.append((off, bytearray(data)))
    return [(off, bytes(buf)) for off, buf in out]


def encode_blob(file_size: int, parts: list[tuple[int, bytes]], **extra: Any) -> bytes:
    merged = merge_ranges(parts)
    head: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "file_size": file_size,
        "ranges": [[off, len(data)] for off, data in merged],
    }
    head.update({k: v for k, v in extra.items() if v not in (None, [], {})})
    line = json.dumps(head, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return line.encode() + b"\n" + b"".join(data for _, data in merged)


def decode_blob(raw: bytes) -> ElfBlob:
    """Parse and check a blob; BlobError for anything inconsistent."""
    nl = raw.find(b"\n", 0, MAX_HEADER)
    if nl < 0:
        raise BlobError("no header line")
    try:
        head = json.loads(raw[:nl])
    except (ValueError, RecursionError) as err:
        raise BlobError(f"header is not JSON ({err})") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise BlobError("not an exuvia ELF extract")
    version = head.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BlobError(f"extract version {version!r} is newer than this exuvia reads")
    size = head.get("file_size")
    ranges = head.get("ranges")
    if not isinstance(size, int) or size < 0 or not isinstance(ranges, list):
        raise BlobError("header lacks file_size or ranges")
    if len(ranges) > MAX_RANGES:
        raise BlobError("too many ranges")
    out: list[tuple[int, int]] = []
    end = -1
    total = 0
    for r in ranges:
        if not (
            isinstance(r, list)
            and len(r) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in r)
        ):
            raise BlobError("malformed range")
        off, length = r
        if off < 0 or length <= 0 or off + length > size or off < end:
            raise BlobError(f"range {off}+{length} is out of order or outside the file")
        out.append((off, length))
        end = off + length
        total += length
    data = raw[nl + 1 :]
    if len(data) != total:
        raise BlobError(f"ranges promise {total} bytes, the blob holds {len(data)}")
    return ElfBlob(size, out, data, head)


def blob_from_bytes(whole: bytes) -> ElfBlob:
    """A blob that holds a whole file (tests, and tiny files)."""
    ranges = [(0, len(whole))] if whole else []
    return ElfBlob(len(whole), ranges, whole, {"format": FORMAT, "version": VERSION})


class SparseImage(io.RawIOBase):
    """A read-only file over a blob: captured ranges read, gaps raise NotCaptured.

    A read that starts inside a captured range and runs past its end is short
    (it stops at the end of the range), as a pipe's would be; a read that starts
    in a gap raises. Reads at or past the end of the file return b"".
    """

    def __init__(self, blob: ElfBlob) -> None:
        super().__init__()
        self._size = blob.file_size
        self._starts = [off for off, _ in blob.ranges]
        self._ranges = blob.ranges
        self._bases: list[int] = []
        base = 0
        for _, length in blob.ranges:
            self._bases.append(base)
            base += length
        self._data = memoryview(blob.data)
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _find(self, pos: int) -> int:
        """Index of the range holding ``pos``, or -1."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0:
            off, length = self._ranges[i]
            if pos < off + length:
                return i
        return -1

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` captured bytes at ``offset`` (short at a range's end)."""
        if size <= 0 or offset >= self._size or offset < 0:
            return b""
        i = self._find(offset)
        if i < 0:
            raise NotCaptured(offset, min(size, self._size - offset))
        off, length = self._ranges[i]
        n = min(size, off + length - offset)
        start = self._bases[i] + offset - off
        return bytes(self._data[start : start + n])

    def captured(self, offset: int, size: int) -> bool:
        """Whether every byte of [offset, offset+size) is in the extract."""
        if size <= 0:
            return True
        i = self._find(offset)
        if i < 0:
            return False
        off, length = self._ranges[i]
        return offset + size <= off + length

    def read_filled(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` with gaps (and past the end) as zeros."""
        out = bytearray(size)
        end = offset + size
        i = max(0, bisect.bisect_right(self._starts, offset) - 1)
        while i < len(self._ranges):
            off, length = self._ranges[i]
            if off >= end:
                break
            lo, hi = max(off, offset), min(off + length, end)
            if lo < hi:
                base = self._bases[i] + lo - off
                out[lo - offset : hi - offset] = self._data[base : base + hi - lo]
            i += 1
        return bytes(out)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        data = self.pread(self._pos, size)
        self._pos += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)
