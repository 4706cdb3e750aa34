"""The acquirer with its walk, reads and hashing in a forked reader process gives
exactly what the in-process acquirer gives: records, skips, members, ELF extracts."""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
import socket
import types
from pathlib import Path
from typing import Any

import pytest

from collectors.fs.acquire import FilesystemAcquirer
from collectors.fs.policy import CopyPolicy
from collectors.fs.reader_process import NSLOTS, SLOT, ProxyWriter, ReaderFailed, _Channel
from forensics.bundle import BundleWriter, verify_bundle
from forensics.bundle.writer import CHUNK, SMALL
from forensics.jsonfast import dumps
from forensics.records import Record, RecordLine, Skip
from tests.support.bundles import member


def _children() -> set[str]:
    """This process's children (session fixtures may have some of their own)."""
    pid = os.getpid()
    kids: set[str] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        kids.update(Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return kids


def _tree(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    sizes = [0, 1, 511, 512, 10_000, SMALL, SMALL + 1, 3 * SLOT // 2, SLOT + 4097]
    for i, size in enumerate(sizes * 3):
        p = root / f"d{i % 4}" / f"f{i:02d}"
        p.parent.mkdir(parents=True, exist_ok=True)
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1)
        p.write_bytes(data[:size])
        files[f"/d{i % 4}/f{i:02d}"] = data[:size]
    os.link(root / "d0" / "f04", root / "d3" / "hard")
    os.symlink("/etc/passwd", root / "d1" / "abs-link")
    os.mkfifo(root / "d2" / "fifo")
    shutil.copy("/bin/true", root / "d2" / "true")  # an ELF: extracted when not copied
    (root / "nested" / "a" / "b").mkdir(parents=True)
    (root / "nested" / "a" / "b" / "x.log").write_text("line\n")
    return files


def _acquire(
    root: Path, out: Path, policy: str, reader_process: bool
) -> tuple[list[Record | Skip], dict[str, Any], list[Record]]:
    with out.open("wb") as raw:
        w = BundleWriter(raw, compress="zstd", threads=2)
        acq = FilesystemAcquirer(w, CopyPolicy(policy), reader_process=reader_process)
        # O_NOATIME: the first run must not change what the second one records
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
        try:
            items = [_as_record(i) for i in acq.run(fd, frozenset(), None)]
        finally:
            os.close(fd)
        elf = list(acq.elf.records())
        w.finish({"complete": True})
    return items, vars(acq.stats), elf


#: the JSON lines the reader process sent, by path (filled by _as_record)
_LINES: dict[str, bytes] = {}


def _as_record(item: Record | RecordLine | Skip) -> Record | Skip:
    """The reader process sends fs_entry records as JSON lines: compare their fields."""
    if isinstance(item, RecordLine):
        rec = Record(item.kind, item.data)
        _LINES[rec.data["path"]] = item.line
        return rec
    return item


def _no_link_atime(items: list[Record | Skip]) -> list[Record | Skip]:
    out: list[Record | Skip] = []
    for item in items:
        if isinstance(item, Record) and item.data["type"] == "symlink":
            data = {k: v for k, v in item.data.items() if k != "atime_ns"}
            out.append(Record(item.kind, data))
        else:
            out.append(item)
    return out


@pytest.mark.parametrize("policy", ["all", "none"])
def test_reader_process_gives_what_the_acquirer_gives_in_process(
    tmp_path: Path, policy: str
) -> None:
    root = tmp_path / "root"
    files = _tree(root)
    before = _children()
    here, here_stats, here_elf = _acquire(root, tmp_path / "here.exv", policy, False)
    _LINES.clear()
    split, split_stats, split_elf = _acquire(root, tmp_path / "split.exv", policy, True)
    # readlink(2) has no O_NOATIME: the first run's read of the link moved its atime
    assert _no_link_atime(split) == _no_link_atime(here)
    # and each line sent is the bytes the capture wrote from the in-process dict
    sent = 0
    for rec in here:
        if isinstance(rec, Record) and rec.data["type"] != "symlink":
            assert _LINES[rec.data["path"]] == dumps({"kind": rec.kind, **rec.data}) + b"\n"
            sent += 1
    assert sent > 30
    assert split_stats == here_stats
    assert split_elf == here_elf
    assert (len(split_elf) == 1) == (policy == "none")
    assert _children() <= before
    assert verify_bundle(tmp_path / "split.exv").ok
    by = {r.data["path"]: r.data for r in split if isinstance(r, Record)}
    for path, content in files.items():
        assert by[path]["sha256"] == hashlib.sha256(content).hexdigest(), path
        if policy == "all":
            assert member(tmp_path / "split.exv", by[path]["member"]) == content, path
        else:
            assert "member" not in by[path]
    assert by["/d3/hard"]["hardlink_of"] == "/d0/f04"
    assert by["/d1/abs-link"]["link_target"] == "/etc/passwd"
    assert by["/d2/fifo"]["type"] == "fifo" and "sha256" not in by["/d2/fifo"]


def test_a_failing_reader_process_is_one_error_and_is_reaped(tmp_path: Path) -> None:
    fd = 999_999  # no such descriptor: the reader's walk cannot even stat its root
    before = _children()
    with (tmp_path / "b.exv").open("wb") as raw:
        w = BundleWriter(raw, compress="none")
        acq = FilesystemAcquirer(w, CopyPolicy("all"), reader_process=True)
        with pytest.raises(ReaderFailed, match=r"filesystem reader process failed: .*Bad file"):
            list(acq.run(fd, frozenset(), None))
    assert _children() <= before


def test_stopping_early_kills_and_reaps_the_reader_process(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    before = _children()
    with (tmp_path / "b.exv").open("wb") as raw:
        w = BundleWriter(raw, compress="none")
        acq = FilesystemAcquirer(w, CopyPolicy("all"), reader_process=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            items = acq.run(fd, frozenset(), None)
            assert isinstance(items, types.GeneratorType)
            first = next(items)
            assert isinstance(first, RecordLine) and first.data["path"] == "/"
            assert len(_children() - before) == 1
            items.close()
        finally:
            os.close(fd)
    assert _children() <= before


@pytest.mark.parametrize("delta", [-3, 0, 5])
def test_the_ring_read_hashes_what_was_read_and_stores_the_size_seen(delta: int) -> None:
    """A file that shrank or grew after its size was taken: never read past that
    size; the hash covers what was read, the member is that size, zero-padded."""
    size = 1000
    data = bytes(range(256)) * 4
    data = data[: size + delta]
    ring = mmap.mmap(-1, NSLOTS * SLOT)
    mine, theirs = socket.socketpair()
    r, w = os.pipe()
    try:
        os.write(w, data)
        os.close(w)
        chan = _Channel(theirs, ring)
        proxy = ProxyWriter(chan)
        sha, read, entry = proxy.read_member(r, "files/x", size)
        stored = data[:size].ljust(size, b"\0")
        assert (sha, read) == (hashlib.sha256(data[:size]).hexdigest(), min(size, len(data)))
        assert entry.sha256 == hashlib.sha256(stored).hexdigest()
        assert (entry.size, entry.short_by) == (size, max(0, -delta))
        op = proxy.chan.ops[-1]
        assert op == ("m", "files/x", entry.sha256, op[3], size)
        assert ring[op[3] : op[3] + size] == stored
        chan.mv.release()
    finally:
        os.close(r)
        mine.close()
        theirs.close()
        ring.close()


@pytest.mark.parametrize("delta", [-3000, 0, 5000])
def test_the_ring_stream_of_a_big_file_keeps_the_same_rules(tmp_path: Path, delta: int) -> None:
    """Files bigger than one read go through the ring chunk by chunk, with the same
    rules: never past the size at open, zero-padded if the file shrank."""
    data = hashlib.sha256(b"big").digest() * ((CHUNK + 10_000) // 32)
    size = len(data) - delta  # as if the file grew by delta (or shrank) after fstat
    src = tmp_path / "big"
    src.write_bytes(data)
    ring = mmap.mmap(-1, NSLOTS * SLOT)
    mine, theirs = socket.socketpair()
    fd = os.open(src, os.O_RDONLY)
    chan = _Channel(theirs, ring)
    try:
        sha, read, entry = ProxyWriter(chan).read_stream(fd, "files/big", size)
        stored = data[:size].ljust(size, b"\0")
        assert (sha, read) == (hashlib.sha256(data[:size]).hexdigest(), min(size, len(data)))
        assert (entry.size, entry.short_by) == (size, max(0, -delta))
        assert entry.sha256 == hashlib.sha256(stored).hexdigest()
        assert chan.ops[0] == ("M", "files/big", size) and chan.ops[-1] == ("E", entry.sha256)
        chunks = [ring[op[1] : op[1] + op[2]] for op in chan.ops[1:-1]]
        assert len(chunks) >= 2 and b"".join(chunks) == data[:size]
    finally:
        chan.mv.release()
        os.close(fd)
        mine.close()
        theirs.close()
        ring.close()
