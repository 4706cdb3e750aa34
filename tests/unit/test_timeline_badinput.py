"""Hostile and broken bundles: clear errors or flagged events, never a crash,
nothing dropped without being counted."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from forensics.errors import BundleError, BundleVersionError, OutputError
from forensics.timeline import Flag, Query, bundleio, fs, open_timeline
from forensics.timeline.query import Timeline
from forensics.timeline.store import Indexer
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle, process

ENTRIES = [
    fs_entry(f"/data/f{i}-{os.urandom(8).hex()}", T0 + i * NS, T0 + i * NS, T0 + i * NS)
    for i in range(3000)
]
LOG = b"".join(f"2026-11-23T15:55:{i % 60:02d}Z line {i}\n".encode() for i in range(3000))


def full_bundle(path: Path, compress: str = "zstd") -> Path:
    return make_bundle(
        path,
        fs=ENTRIES,
        processes=[process(4931, 1, "target", T0)],
        runtime_logs=[("raw", LOG)],
        compress=compress,
    )


def open_(bundle: Path, tmp_path: Path) -> Timeline:
    return open_timeline(bundle, cache_dir=tmp_path / "cache", rebuild=True)


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_truncated_bundles_give_what_precedes_the_cut_or_a_clear_error(
    tmp_path: Path, compress: str
) -> None:
    whole = full_bundle(tmp_path / "whole.exv", compress)
    data = whole.read_bytes()
    reference = {(e.entity, e.ts, e.kinds) for e in open_(whole, tmp_path / "w").events()}
    seen_partial = 0
    for frac in (0.0005, 0.01, 0.2, 0.5, 0.8, 0.95, 0.999):
        cut = tmp_path / f"cut-{frac}.exv"
        cut.write_bytes(data[: max(1, int(len(data) * frac))])
        try:
            tl = open_(cut, tmp_path / f"c{frac}")
        except BundleError as err:
            assert "not an exuvia bundle" in str(err) or "cannot open" in str(err)
            continue
        events = {(e.entity, e.ts, e.kinds) for e in tl.events()}
        assert events <= reference  # nothing invented
        warnings = " ".join(tl.meta["warnings"])
        if tl.meta["manifest_sha256"] is not None:  # only the end-of-archive padding was cut
            assert events == reference
            continue
        assert "cut off" in warnings and "no manifest" in warnings
        assert tl.meta["key"].startswith("partial-")
        seen_partial += 1
    assert seen_partial >= 3


def test_not_a_bundle(tmp_path: Path) -> None:
    cases = {
        "empty.exv": b"",
        "garbage.exv": os.urandom(5000),
        "zstd-garbage.exv": zstandard.ZstdCompressor().compress(os.urandom(5000)),
        "text.exv": b"hello\n" * 100,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/passwd")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"root\n"))
    cases["plain.tar"] = buf.getvalue()
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(BundleError, match="not an exuvia bundle"):
            open_(p, tmp_path)
    with pytest.raises(BundleError, match="no such file"):
        open_(tmp_path / "missing.exv", tmp_path)


def test_newer_major_version_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        head = json.dumps({"format": "exuvia-bundle", "version": "9.0"}).encode()
        info = tarfile.TarInfo("exuvia.json")
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
    p = tmp_path / "future.exv"
    p.write_bytes(buf.getvalue())
    with pytest.raises(BundleVersionError, match="newer"):
        open_(p, tmp_path)


def test_corrupt_compressed_stream(tmp_path: Path) -> None:
    data = bytearray(full_bundle(tmp_path / "b.exv").read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.exv"
    bad.write_bytes(bytes(data))
    tl = open_(bad, tmp_path)
    assert any("corrupt" in w for w in tl.meta["warnings"])
    # what precedes the damage is there (the target, the processes, the first files)
    assert tl.count(Query(sources=("proc",))) == 1
    assert 0 < tl.count(Query(sources=("fs",))) < 3 * len(ENTRIES)


def test_altered_member_is_reported_against_the_manifest(tmp_path: Path) -> None:
    data = full_bundle(tmp_path / "b.exv", compress="none").read_bytes()
    i = data.index(b"line 123")
    altered = data[:i] + b"LINE 123" + data[i + 8 :]
    p = tmp_path / "altered.exv"
    p.write_bytes(altered)
    tl = open_(p, tmp_path)
    assert any(
        "logs/runtime/01-stdio.log: does not match the manifest" in w for w in tl.meta["warnings"]
    )
    assert tl.count(Query(text="LINE 123")) == 1  # the events are still there, to look at


def test_hostile_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "MAX_RECORD", 4096)
    fs_lines = [
        json.dumps(fs_entry("/ok", T0, T0, T0)).encode(),
        json.dumps(fs_entry("/long", T0, T0, T0, note="x" * 10_000)).encode(),
        json.dumps(fs_entry("/year9999", 253_402_300_799 * NS, T0, T0)).encode(),
        json.dumps(fs_entry("/neg", -NS, T0, T0)).encode(),
        b'{"kind": "fs_entry", "path": "/caf\xe9", "mtime_ns": %d}' % T0,
        b"[" * 2000 + b"]" * 2000,  # deep nesting
        b'{"kind": "fs_entry", "path": ["not", "a", "string"], "mtime_ns": 1}',
        b'{"kind": "fs_entry", "path": "/types", "mtime_ns": true, "atime_ns": 1.5,'
        b' "ctime_ns": {}, "uid": "root", "size": -1, "mode": 420}',
    ]
    bundle = make_bundle(
        tmp_path / "b.exv",
        fs=b"\n".join(fs_lines) + b"\n",
        processes=[{"kind": "process", "pid": "one"}, process(7, 1, "p", 2**80)],
        tgt={"uri": 5, "runtime": None, "created_ns": "soon", "runtime_facts": []},  # type: ignore[dict-item]
    )
    tl = open_(bundle, tmp_path)
    c = tl.meta["counts"]
    assert c["record_too_long"] == 1
    assert c["record_invalid_utf8"] == 1
    assert c["record_malformed"] == 3  # deep nesting, path not a string, pid not an int
    assert c["time_invalid"] == 2 + 1  # year 9999 and /types; target's created_ns
    assert c["no_time"] == 2  # /types has no usable time; the process's start is too big
    entities = {e.entity for e in tl.events(Query(sources=("fs",)))}
    assert entities == {"/ok", "/year9999", "/neg", "/caf\ufffd"}
    neg = tl.events(Query(entity="/neg"))
    assert neg[0].ts == -NS and neg[0].flags & Flag.TIME_SUSPECT
    assert (
        "container:?" in {e.entity for e in tl.events()}
        or tl.count(Query(sources=("runtime",))) == 0
    )
    # every problem is listed with where it was
    assert {p[1] for p in tl.problems()} >= {
        "artifacts/filesystem.jsonl",
        "artifacts/processes.jsonl",
    }


def test_oversized_small_members_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundleio, "MAX_KEPT", 100)
    bundle = make_bundle(
        tmp_path / "b.exv",
        custody_log=b"".join(
            json.dumps({"seq": i, "ts_ns": T0 + i, "action": "x" * 50}).encode() + b"\n"
            for i in range(10)
        ),
    )
    tl = open_(bundle, tmp_path)
    assert tl.meta["counts"]["member_too_big"] >= 1
    assert ("member_too_big", "custody.jsonl") in {(p[0], p[1]) for p in tl.problems()}


def test_a_bundle_without_manifest_still_gives_its_timeline(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.exv", fs=ENTRIES[:10], manifest=False)
    tl = open_(bundle, tmp_path)
    assert tl.count(Query(sources=("fs",))) == 10
    assert any("no manifest" in w for w in tl.meta["warnings"])
    assert tl.meta["manifest_sha256"] is None


class _FakeMember(bundleio.MemberStream):
    def __init__(self, data: bytes, step: int) -> None:
        super().__init__("m", len(data), io.BytesIO(data))
        self._step = step

    def read(self, n: int = bundleio.STEP) -> bytes:
        return super().read(min(n, self._step))


@pytest.mark.parametrize("step", [1, 3, 7, 64, 1 << 16])
def test_lines_are_cut_the_same_whatever_the_read_sizes(step: int) -> None:
    data = b"a\n\nbb\n" + b"x" * 50 + b"\nlast-without-newline"
    lines = list(bundleio.iter_lines(_FakeMember(data, step), max_line=10))
    assert lines == [b"a", b"", b"bb", b"x" * 10, b"last-witho"]
    assert [type(x).__name__ for x in lines] == ["bytes", "bytes", "bytes", "Cut", "Cut"]
    assert [getattr(x, "full", None) for x in lines[3:]] == [50, 20]


def test_a_member_shorter_than_declared_is_a_cut_stream() -> None:
    m = bundleio.MemberStream("short", 100, io.BytesIO(b"only ten b"))
    assert m.read() == b"only ten b"
    with pytest.raises(bundleio.StreamCut, match="ends inside member 'short'"):
        m.read()


def test_queries_refuse_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        Query(sources=("disk",))
    with pytest.raises(ValueError, match="unknown kind"):
        Query(kinds=("file.deleted",))


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.exv", fs=ENTRIES[:5])
    tl = open_timeline(bundle, cache_dir=tmp_path / "cache")
    n = tl.count()
    tl.close()
    tl.path.write_bytes(b"not a database" * 100)
    again = open_timeline(bundle, cache_dir=tmp_path / "cache")
    assert again.path == tl.path
    assert again.count() == n


def test_a_failing_indexer_is_a_clear_error(tmp_path: Path) -> None:
    idx = Indexer(tmp_path / "no-such-dir" / "store.sqlite")
    with pytest.raises(OutputError, match=r"indexing the timeline failed: .*unable to open"):
        idx.finish()
