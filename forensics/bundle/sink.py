"""The byte sink under a bundle: optional zstd, whole-file SHA-256, byte count."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

import zstandard

COMPRESSIONS = ("zstd", "none")


class _HashingFile:
    """Counts and hashes every byte that reaches the output file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes | memoryview) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class Sink:
    """Where tar bytes go. ``sync_point`` makes everything so far decodable on disk."""

    def __init__(self, raw: BinaryIO, compress: str = "zstd", level: int = 3, threads: int = 0):
        if compress not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compress!r}; use one of {COMPRESSIONS}")
        self.compress = compress
        self._file = _HashingFile(raw)
        self._zw: zstandard.ZstdCompressionWriter | None = None
        if compress == "zstd":
            cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
            self._zw = cctx.stream_writer(
                self._file,  # type: ignore[arg-type]
                closefd=False,
                write_return_read=True,
            )
        self.tar_bytes = 0
        #: (file bytes, their SHA-256, tar bytes) as of the last sync point
        self.prefix: tuple[int, str, int] = (0, hashlib.sha256().hexdigest(), 0)

    def write(self, data: bytes | memoryview) -> None:
        self.tar_bytes += len(data)
        if self._zw is not None:
            self._zw.write(data)
        else:
            self._file.write(data)

    def sync_point(self) -> None:
        """Flush a zstd block and the file, so a kill after this loses nothing before it."""
        if self._zw is not None:
            self._zw.flush(zstandard.FLUSH_BLOCK)
        self._file.flush()
        self.prefix = (self._file.count, self._file.sha256.copy().hexdigest(), self.tar_bytes)

    def close(self) -> None:
        if self._zw is not None:
            self._zw.flush(zstandard.FLUSH_FRAME)
        self._file.flush()

    @property
    def file_sha256(self) -> str:
        return self._file.sha256.hexdigest()

    @property
    def file_bytes(self) -> int:
        return self._file.count
