"""A zstd reader that notices a cut-off stream (the library's reader just stops)."""

from __future__ import annotations

from typing import BinaryIO

import zstandard

from forensics.errors import BundleError

RAW_CHUNK = 1 << 20
#: refuse to inflate more than this per input byte in one step (a zstd bomb guard
#: is per bundle policy; this only bounds a single read's buffer)
MAX_OUT_PER_READ = 64 << 20


class ZstdTruncated(BundleError):
    """The compressed stream ended inside a frame."""


class ZstdReader:
    """Decompress concatenated zstd frames from ``raw`` as a read()-able stream."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._buf = bytearray()
        self._in_frame = False
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._buf and not self._eof:
            data = self._raw.read(RAW_CHUNK)
            if not data:
                self._eof = True
                if self._in_frame:
                    raise ZstdTruncated("compressed stream ends inside a frame (truncated)")
                return
            while data:
                try:
                    out = self._obj.decompress(data)
                except zstandard.ZstdError as err:
                    raise BundleError(f"compressed stream is corrupt ({err})") from err
                self._in_frame = True
                self._buf += out
                if self._obj.eof:
                    data = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
                    self._in_frame = False
                else:
                    data = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts: list[bytes] = []
            while True:
                chunk = self.read(RAW_CHUNK)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
