"""The byte sink under a bundle: optional zstd, whole-file SHA-256, byte count."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

import zstandard

from forensics.bundle.frameindex import Frame, encode_index

COMPRESSIONS = ("zstd", "none")
#: a frame of copied contents ends at the first member past this much, so that a
#: reader wanting one copied file (/etc/passwd, a log) decompresses little else
CONTENT_FRAME = 2 << 20
ZSTD_BLOCK = 128 << 10


def stored_frame_header(total: int) -> bytes:
    """A zstd frame header for ``total`` bytes held in raw (stored) blocks: single
    segment, the 8-byte content size, no checksum, no dictionary. The content
    size makes libzstd refuse a frame whose blocks do not add up to it."""
    return b"\x28\xb5\x2f\xfd\xe0" + total.to_bytes(8, "little")


def stored_blocks(data: bytes, last: bool) -> bytes:
    """``data`` as zstd raw blocks (3-byte header: last flag, type 0, size)."""
    out = bytearray()
    for i in range(0, len(data), ZSTD_BLOCK):
        chunk = data[i : i + ZSTD_BLOCK]
        end = last and i + ZSTD_BLOCK >= len(data)
        out += ((len(chunk) << 3) | int(end)).to_bytes(3, "little") + chunk
    return bytes(out)


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
        self._stored_left = -1  # >= 0 while writing a stored frame
        self._stored_buf = bytearray()
        #: (file bytes, their SHA-256, tar bytes) as of the last sync point
        self.prefix: tuple[int, str, int] = (0, hashlib.sha256().hexdigest(), 0)
        #: the zstd frames ended so far (see forensics.bundle.frameindex)
        self.frames: list[Frame] = []
        self._frame_at = (0, 0, 0)  # file and tar offsets, member number: the open frame's
        self._frame_content = False
        self._members = 0

    def member_start(self, content: bool) -> None:
        """Called before each member's header: a zstd frame ends where members of
        copied content and other members alternate, so a reader can skip the former."""
        self._members += 1
        if self._zw is None or self._stored_left >= 0:
            return
        if content == self._frame_content and (
            not content or self.tar_bytes - self._frame_at[1] < CONTENT_FRAME
        ):
            return
        if self.tar_bytes > self._frame_at[1]:
            self._end_zstd_frame(self._members - 1)
        self._frame_content = content

    def _end_zstd_frame(self, members: int) -> None:
        assert self._zw is not None
        file_at, tar_at, first = self._frame_at
        if self.tar_bytes > tar_at or not self.frames:
            self._zw.flush(zstandard.FLUSH_FRAME)
        if self.tar_bytes > tar_at:
            self.frames.append(
                (
                    file_at,
                    self._file.count - file_at,
                    tar_at,
                    self.tar_bytes - tar_at,
                    int(self._frame_content),
                    first,
                )
            )
        self._frame_at = (self._file.count, self.tar_bytes, members)

    def write(self, data: bytes | memoryview) -> None:
        self.tar_bytes += len(data)
        if self._stored_left >= 0:
            self._write_stored(bytes(data))
        elif self._zw is not None:
            self._zw.write(data)
        else:
            self._file.write(data)

    def end_frame(self) -> None:
        """Like :meth:`sync_point`, but a zstd stream's frame is ended here, and the
        frame index (a skippable frame) follows it: the end of the compressed part."""
        if self._zw is not None:
            self._end_zstd_frame(self._members)
            if self.frames:
                self._file.write(encode_index(self.frames))
        self._file.flush()
        self.prefix = (self._file.count, self._file.sha256.copy().hexdigest(), self.tar_bytes)

    def begin_stored(self, total: int) -> None:
        """The next ``total`` bytes go, uncompressed, into one zstd frame of raw
        blocks (after :meth:`end_frame`): unlike entropy-coded data they have
        exactly one encoding, so no bit of them can change without changing what
        they decompress to. A plain-tar sink writes them as they are."""
        if self._zw is None:
            return
        self._file.write(stored_frame_header(total))
        self._stored_left = total

    def _write_stored(self, data: bytes) -> None:
        self._stored_left -= len(data)
        if self._stored_left < 0:
            raise ValueError("more bytes than the stored frame was opened for")
        self._stored_buf += data
        while len(self._stored_buf) >= ZSTD_BLOCK or (self._stored_left == 0 and self._stored_buf):
            chunk = bytes(self._stored_buf[:ZSTD_BLOCK])
            del self._stored_buf[:ZSTD_BLOCK]
            last = self._stored_left == 0 and not self._stored_buf
            self._file.write(stored_blocks(chunk, last))

    def sync_point(self) -> None:
        """Flush a zstd block and the file, so a kill after this loses nothing before it."""
        if self._zw is not None:
            self._zw.flush(zstandard.FLUSH_BLOCK)
        self._file.flush()
        self.prefix = (self._file.count, self._file.sha256.copy().hexdigest(), self.tar_bytes)

    def close(self) -> None:
        if self._stored_left > 0:
            raise ValueError("the stored frame is short of the bytes it announced")
        if self._zw is not None and self._stored_left < 0:
            self._zw.flush(zstandard.FLUSH_FRAME)
        self._file.flush()

    @property
    def file_sha256(self) -> str:
        return self._file.sha256.hexdigest()

    @property
    def file_bytes(self) -> int:
        return self._file.count
