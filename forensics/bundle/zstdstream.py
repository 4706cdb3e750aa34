"""A zstd reader that notices a cut-off stream and cannot be made to inflate without bound.

The library's stream reader just stops at a cut-off frame, so frames are fed
to a decompression object here and the reader notices a frame left open at
the end of the input. A zstd block of 4 bytes (an RLE block) can stand for
128 KiB, so compressed input is fed :data:`FEED` bytes at a time: one call can
then produce at most about ``FEED / 4 * 128 KiB`` (32 MiB) whatever the input,
and no more input is fed while :data:`MAX_BUFFERED` bytes are waiting to be
read. A "zstd bomb" (a few KiB inflating to terabytes) is read at the speed
of decompression with memory that stays bounded.
"""

from __future__ import annotations

from typing import BinaryIO

import zstandard

from forensics.errors import BundleError

RAW_CHUNK = 64 << 10
#: compressed bytes per decompress() call: bounds the output of one call
FEED = 1024
#: decompressed bytes held before more input is fed
MAX_BUFFERED = 1 << 20


class ZstdTruncated(BundleError):
    """The compressed stream ended inside a frame."""


class ZstdFeeder:
    """Decompress concatenated frames a little at a time (shared by both readers)."""

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self.in_frame = False

    def feed(self, data: bytes) -> bytes:
        """Decompress ``data`` (at most :data:`FEED` bytes for a bounded result)."""
        out: list[bytes] = []
        while data:
            try:
                got = self._obj.decompress(data)
            except zstandard.ZstdError as err:
                raise BundleError(f"compressed stream is corrupt ({err})") from err
            self.in_frame = True
            if got:
                out.append(got)
            if self._obj.eof:
                data = self._obj.unused_data
                self._obj = self._dctx.decompressobj()
                self.in_frame = False
            else:
                data = b""
        return b"".join(out)

    def end(self) -> None:
        """The input ended: a frame left open means the stream was cut off."""
        if self.in_frame:
            raise ZstdTruncated("compressed stream ends inside a frame (truncated)")


class ZstdReader:
    """Decompress concatenated zstd frames from ``raw`` as a read()-able stream."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._feeder = ZstdFeeder()
        self._pending = b""  # compressed bytes read but not yet fed
        self._pos = 0
        self._buf = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while len(self._buf) < MAX_BUFFERED and not self._eof:
            if self._pos >= len(self._pending):
                self._pending = self._raw.read(RAW_CHUNK)
                self._pos = 0
                if not self._pending:
                    self._eof = True
                    self._feeder.end()
                    return
            piece = self._pending[self._pos : self._pos + FEED]
            self._pos += len(piece)
            self._buf += self._feeder.feed(piece)

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
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
