"""The zstd reader: block-at-a-time decompression, cut-off and corrupt streams."""

from __future__ import annotations

import io
import os

import pytest
import zstandard

from forensics.bundle.zstdstream import ZstdFeeder, ZstdReader, ZstdTruncated
from forensics.errors import BundleError
from tests.support.bundle_craft import rle_frame

BLOCK = 128 << 10


def _frames() -> tuple[bytes, bytes, set[int]]:
    """Two frames (one with a checksum, one without) around a skippable frame;
    returns (stream, its content, offsets where a frame ends)."""
    a = os.urandom(50_000) + bytes(300_000)
    b = b"second frame " * 5000
    fa = zstandard.ZstdCompressor(write_checksum=True).compress(a)
    skip = b"\x50\x2a\x4d\x18" + (7).to_bytes(4, "little") + b"ignored"
    fb = zstandard.ZstdCompressor(write_checksum=False, write_content_size=False).compress(b)
    ends = {len(fa), len(fa) + len(skip), len(fa) + len(skip) + len(fb)}
    return fa + skip + fb, a + b, ends


def _read_all(data: bytes, step: int = 1 << 20) -> bytes:
    r = ZstdReader(io.BytesIO(data))
    out = bytearray()
    while chunk := r.read(step):
        out += chunk
    return bytes(out)


def test_concatenated_and_skippable_frames_decode() -> None:
    stream, content, _ = _frames()
    assert _read_all(stream) == content
    assert _read_all(stream, 777) == content


def test_a_cut_anywhere_but_a_frame_end_is_noticed() -> None:
    stream, _content, ends = _frames()
    for cut in range(0, len(stream), 97):
        if cut in ends or cut == 0:
            continue
        with pytest.raises(BundleError):  # ZstdTruncated, or corrupt for a cut checksum
            _read_all(stream[:cut])
    with pytest.raises(ZstdTruncated):
        _read_all(stream[: len(stream) - 5])


def test_one_call_never_inflates_past_one_block() -> None:
    bomb = rle_frame([b"x" * 1000, (0, 64 * BLOCK + 5)])
    assert len(bomb) < 2000
    feeder = ZstdFeeder()
    sizes = [len(out) for i in range(0, len(bomb), 4096) for out in feeder.feed(bomb[i : i + 4096])]
    feeder.end()
    assert sum(sizes) == 1000 + 64 * BLOCK + 5
    assert max(sizes) <= BLOCK


def test_corrupt_and_foreign_data_are_errors() -> None:
    stream, _content, _ = _frames()
    bad = bytearray(stream)
    bad[len(bad) // 3] ^= 0x10
    with pytest.raises(BundleError, match="corrupt"):
        _read_all(bytes(bad))
    with pytest.raises(BundleError):
        _read_all(stream + b"not zstd at all")
