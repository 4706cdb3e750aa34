"""The bundle sink's worker thread (``offload``): the same bytes as inline, errors
surface in the caller, and an offloaded bundle verifies and reads back."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
from pathlib import Path

import pytest
import zstandard

from forensics.bundle import BundleWriter, verify_bundle
from forensics.bundle.reader import BundleReader
from forensics.bundle.sink import CONTENT_FRAME, Sink


def drive(sink: Sink, seed: int) -> list[tuple[int, str, int]]:
    """A capture-like sequence: small and big members of copied content and
    others, chunks written from a buffer that is overwritten as soon as ``write``
    returns (as the reader's shared ring is), sync points, the stored tail."""
    rnd = random.Random(seed)
    ring = bytearray(1 << 20)
    view = memoryview(ring)
    prefixes = []
    for i in range(300):
        content = rnd.random() < 0.8
        big = rnd.random() < 0.03
        size = rnd.randrange(CONTENT_FRAME, 3 * CONTENT_FRAME) if big else rnd.randrange(0, 40_000)
        sink.member_start(content)
        sink.write(b"H" * 512)
        left = size
        while left:
            n = min(left, len(ring))
            # half compressible, half random, like a real tree's files
            ring[:n] = (rnd.randbytes(n // 2) + bytes([i % 251]) * (n - n // 2))[:n]
            sink.write(view[:n])
            ring[:n] = b"\xff" * n  # the ring slot goes back and is reused at once
            left -= n
        if rnd.random() < 0.05:
            sink.sync_point()
            prefixes.append(sink.prefix)
    sink.end_frame()
    prefixes.append(sink.prefix)
    tail = rnd.randbytes(5000)
    sink.begin_stored(len(tail))
    sink.write(tail[:1234])
    sink.write(tail[1234:])
    sink.close()
    view.release()
    return prefixes


def tar_of(out: bytes, compress: str) -> bytes:
    if compress == "none":
        return out
    return (
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(out), read_across_frames=True).read()
    )


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_offloaded_sink_writes_what_the_inline_sink_writes(compress: str) -> None:
    runs = []
    for offload in (False, True):
        raw = io.BytesIO()
        sink = Sink(raw, compress, 1, offload=offload)
        prefixes = drive(sink, seed=7)
        out = raw.getvalue()
        assert sink.file_bytes == len(out)
        assert sink.file_sha256 == hashlib.sha256(out).hexdigest()
        for size, sha, _tar in prefixes:  # every prefix is the file's real start
            assert hashlib.sha256(out[:size]).hexdigest() == sha
        runs.append((out, sink.frames, prefixes))
    (inline, inline_frames, inline_pre), (off, off_frames, off_pre) = runs
    tar = tar_of(inline, compress)
    # the same tar bytes, whatever the buffer held after each write returned
    assert tar_of(off, compress) == tar
    if compress == "none":
        assert off == inline
        return
    # zstd may cut blocks differently for different write sizes: the same frames
    # of the same tar bytes, each decompressing on its own to its slice
    assert [f[2:] for f in off_frames] == [f[2:] for f in inline_frames]
    assert [p[2] for p in off_pre] == [p[2] for p in inline_pre]
    assert len(off_frames) > 10
    dctx = zstandard.ZstdDecompressor()
    for file_at, file_len, tar_at, tar_len, _content, _first in off_frames:
        frame = dctx.decompressobj().decompress(off[file_at : file_at + file_len])
        assert frame == tar[tar_at : tar_at + tar_len]


class FullDisk(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        n = len(memoryview(data))  # type: ignore[arg-type]
        if n > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= n
        return n


def test_a_write_error_on_the_worker_reaches_the_caller() -> None:
    w = BundleWriter(FullDisk(300_000), compress="none", offload=True)  # type: ignore[arg-type]
    with pytest.raises(OSError) as err:
        for i in range(200):
            w.add_bytes(f"files/f{i}", os.urandom(20_000))
        w.finish({"complete": True, "incomplete_reason": ""})
    assert err.value.errno == errno.ENOSPC


def test_an_offloaded_bundle_verifies_and_reads_back(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    contents = {f"files/d/f{i}": os.urandom(100 + 3001 * i) for i in range(60)}
    contents["files/big"] = os.urandom(3 * CONTENT_FRAME)
    with p.open("wb") as f:
        w = BundleWriter(f, level=1, checkpoint_every_members=7, offload=True)
        for i, (name, data) in enumerate(contents.items()):
            w.add_bytes(name, data)
            if i % 5 == 0:
                w.add_bytes(f"artifacts/r{i}.jsonl", b'{"i":%d}\n' % i)
        w.finish({"complete": True, "incomplete_reason": ""})
    report = verify_bundle(p)
    assert report.ok, report.failures()
    assert report.complete
    wanted = ("files/d/f0", "files/d/f59", "files/big")
    got = BundleReader(p).read_members(lambda n: n in wanted)
    assert got == {n: contents[n] for n in wanted}
