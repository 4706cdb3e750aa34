"""A zstd reader that notices a cut-off stream and cannot be made to inflate without bound.

The library's stream reader just stops at a cut-off frame, and its
decompression object returns everything a piece of input inflates to at once:
a zstd RLE block of 4 bytes stands for 128 KiB, so 1 MiB of input can mean
32 GiB of output (a "zstd bomb"). :class:`ZstdFeeder` therefore follows the
frame structure itself (frame headers, 3-byte block headers, checksums —
RFC 8878) and hands the decompressor one block at a time: one call never
yields more than a block (128 KiB), and a stream that ends anywhere but at the
end of a frame is known to be cut off. The bytes themselves are checked by
libzstd as always (including each frame's checksum).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from forensics.errors import BundleError

RAW_CHUNK = 64 << 10
#: decompressed bytes held before more input is fed
MAX_BUFFERED = 1 << 20

_MAGIC = 0xFD2FB528
_SKIPPABLE = 0x184D2A50  # ... 0x184D2A5F
_FCS_SIZES = (0, 2, 4, 8)
_DID_SIZES = (0, 1, 2, 4)


class ZstdTruncated(BundleError):
    """The compressed stream ended inside a frame."""


class ZstdFeeder:
    """Decompress concatenated frames one block per call (shared by both readers)."""

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._pending = bytearray()
        self._state = "frame"  # frame | block | tail
        self._need = 0  # bytes of the current unit still to pass through
        self._checksum = False
        self._last = False
        self._broken = False

    @property
    def in_frame(self) -> bool:
        return self._state != "frame" or bool(self._pending) or self._need > 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield what ``data`` decompresses to, at most one block's output at a time."""
        self._pending += data
        while self._pending:
            if self._broken:
                piece = bytes(self._pending)
                self._pending.clear()
                yield from self._decompress(piece)  # let libzstd name the damage
                return
            if self._need == 0 and not self._next_unit():
                return  # wait for more input
            piece = bytes(self._pending[: self._need])
            del self._pending[: len(piece)]
            self._need -= len(piece)
            if self._need == 0 and self._state == "done":
                self._state = "frame"
            yield from self._decompress(piece)

    def _next_unit(self) -> bool:
        """Work out the next unit (frame header, block, checksum); False: need input."""
        p = self._pending
        if self._state == "frame":
            if len(p) < 5:
                return False
            magic = int.from_bytes(p[:4], "little")
            if magic & 0xFFFFFFF0 == _SKIPPABLE:
                if len(p) < 8:
                    return False
                self._need, self._state = 8 + int.from_bytes(p[4:8], "little"), "done"
                return True
            if magic != _MAGIC:
                self._broken = True
                self._need = len(p)
                return True
            fhd = p[4]
            single = bool(fhd & 0x20)
            fcs = _FCS_SIZES[fhd >> 6] or (1 if single else 0)
            self._checksum = bool(fhd & 0x04)
            self._need = 5 + (0 if single else 1) + _DID_SIZES[fhd & 3] + fcs
            self._state = "block"
            return True
        if self._state == "block":
            if len(p) < 3:
                return False
            head = int.from_bytes(p[:3], "little")
            kind, size = (head >> 1) & 3, head >> 3
            self._need = 3 + (1 if kind == 1 else size)
            if head & 1:  # the last block
                self._state = "tail" if self._checksum else "done"
            return True
        if self._state == "tail":
            self._need, self._state = 4, "done"
            return True
        raise AssertionError(self._state)

    def _decompress(self, piece: bytes) -> Iterator[bytes]:
        while piece:
            try:
                out = self._obj.decompress(piece)
            except zstandard.ZstdError as err:
                raise BundleError(f"compressed stream is corrupt ({err})") from err
            if out:
                yield out
            if self._obj.eof:
                piece = self._obj.unused_data
                self._obj = self._dctx.decompressobj()
                if piece:  # our framing and libzstd's disagree: let libzstd decide
                    self._broken = True
            else:
                piece = b""

    def end(self) -> None:
        """The input ended: a frame left open means the stream was cut off."""
        if self.in_frame:
            raise ZstdTruncated("compressed stream ends inside a frame (truncated)")


class ZstdReader:
    """Decompress concatenated zstd frames from ``raw`` as a read()-able stream."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._feeder = ZstdFeeder()
        self._outputs: Iterator[bytes] = iter(())
        self._buf = bytearray()
        self._eof = False
        self._error: BundleError | None = None

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        """Decompress up to :data:`MAX_BUFFERED`; an error waits in ``_error`` until
        what precedes it has been read (a cut-off stream keeps its readable start)."""
        while len(self._buf) < MAX_BUFFERED and not self._eof:
            try:
                out = next(self._outputs, None)
            except BundleError as err:
                self._eof, self._error = True, err
                return
            if out is not None:
                self._buf += out
                continue
            data = self._raw.read(RAW_CHUNK)
            if not data:
                self._eof = True
                try:
                    self._feeder.end()
                except ZstdTruncated as err:
                    self._error = err
                return
            self._outputs = self._feeder.feed(data)

    def _raise_pending(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts: list[bytes] = []
            while True:
                chunk = self.read(MAX_BUFFERED)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        if len(self._buf) < n:
            self._fill()
        if not self._buf:
            self._raise_pending()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
