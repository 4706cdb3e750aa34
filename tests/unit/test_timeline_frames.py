"""Format 2.1's frame index: the timeline skips copied file contents, and loses nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from forensics.bundle import frameindex
from forensics.bundle.reader import BundleReader
from forensics.bundle.verify import verify_bundle
from forensics.timeline import bundleio, open_timeline
from forensics.timeline.build import scan
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle, process

PASSWD = b"root:x:0:0::/root:/x\napp:x:1000:1000::/home/app:/x\n"
APP_LOG = b"2026-11-23T15:55:01Z app started\n2026-11-23T15:55:02Z app ready\n"


def _bundle(path: Path, compress: str = "zstd") -> Path:
    rnd = os.urandom
    # 1 MB each: a content frame ends past 2 MiB, so blob3 shares /etc/passwd's frame
    files = {f"/usr/lib/blob{i}.so": rnd(1_000_000) for i in range(4)}
    files["/etc/passwd"] = PASSWD
    files.update({f"/usr/share/doc/d{i}.txt": b"text " * 5000 for i in range(3)})
    return make_bundle(
        path,
        files=files,
        target_logs={"/var/log/app.log": APP_LOG},
        fs=[fs_entry(f"/f{i}", T0 + i * NS, T0, T0, size=i, inode=i) for i in range(50)],
        processes=[process(4931, 1, "target", T0 + 3 * NS, cmdline=["/app/t"])],
        runtime_logs=[("raw", b"2026-11-23T15:55:04Z said hi\n")],
        compress=compress,
    )


def _events(tl: object) -> list[tuple[object, ...]]:
    return [
        (e.id, e.ts, e.kinds, e.source, e.entity, e.message, e.flags, e.ref, dict(e.attrs))
        for e in tl.iter_events()  # type: ignore[attr-defined]
    ]


def _full_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundleio, "read_plan", lambda _raw, _size: None)


def test_the_index_lets_the_timeline_skip_content(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b.exv")
    with bundle.open("rb") as raw:
        plan = frameindex.read_plan(raw, bundle.stat().st_size)
        assert plan is not None
        kinds = [f[4] for f in plan.frames]
        assert 1 in kinds and 0 in kinds
        needed = sum(length for _off, length in plan.ranges())
    assert needed < bundle.stat().st_size / 4  # the random 4 MB is not read
    raw_f, stream = bundleio.open_stream(bundle, skip_content=True)
    try:
        assert bundleio.skips_content(stream)
    finally:
        bundleio._close(raw_f, stream)
    sc = scan(bundle)
    assert sc.content_skipped
    assert sc.kept["files/etc/passwd"] == PASSWD  # a wanted copied file is still read
    names = [n for n, _s, _h in sc.members]
    assert not any(n.startswith("files/usr/lib/blob") and n[-4] in "012" for n in names)
    assert "artifacts/filesystem.jsonl" in names and "manifest.json" in names


def test_skipping_gives_the_same_timeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _bundle(tmp_path / "b.exv")
    fast = open_timeline(bundle, cache_dir=tmp_path / "c1")
    got = _events(fast)
    assert any(e[4] == "/var/log/app.log" for e in got)  # the target's log file (content)
    assert any("app ready" in str(e[5]) for e in got)
    proc = next(e for e in got if e[3] == "proc")
    assert proc[8]["user"] == "app"  # from files/etc/passwd
    _full_read(monkeypatch)
    slow = open_timeline(bundle, cache_dir=tmp_path / "c2")
    assert got == _events(slow)
    assert fast.meta["events"] == slow.meta["events"]


def test_old_readers_and_verify_read_a_2_1_bundle(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b.exv")
    names = [m.name for m in BundleReader(bundle).members()]
    assert "files/usr/lib/blob0.so" in names and names[-1] == "manifest.json"
    report = verify_bundle(bundle)
    assert report.ok, report.problems


def test_a_lying_index_means_a_full_read(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b.exv")
    data = bytearray(bundle.read_bytes())
    with bundle.open("rb") as raw:
        plan = frameindex.read_plan(raw, len(data))
        assert plan is not None
    # every frame marked as content, same length: only the tail would be read
    start = data.rfind(b'{"version":1,"frames":', 0, plan.tail)
    end = data.index(b"]]}", start) + 3
    doc = data[start:end].decode()
    lied = re.sub(r",0,(\d+)\]", r",1,\1]", doc)
    assert len(lied) == len(doc) and lied != doc
    data[start:end] = lied.encode()
    bad = tmp_path / "lied.exv"
    bad.write_bytes(bytes(data))
    assert not verify_bundle(bad).ok  # verify sees the change
    tl = open_timeline(bad, cache_dir=tmp_path / "c")
    good = open_timeline(bundle, cache_dir=tmp_path / "c0")
    assert _events(tl) == _events(good)


def test_an_index_that_hides_a_member_is_noticed(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b.exv")
    data = bytearray(bundle.read_bytes())
    with bundle.open("rb") as raw:
        plan = frameindex.read_plan(raw, len(data))
        assert plan is not None
    start = data.rfind(b'{"version":1,"frames":', 0, plan.tail)
    end = data.index(b"]]}", start) + 3
    frames = json.loads(data[start:end])["frames"]
    # the frame holding artifacts/filesystem.jsonl (the last metadata frame but one)
    meta = [i for i, f in enumerate(frames) if f[4] == 0]
    frames[meta[-1]][4] = 1
    lied = json.dumps({"version": 1, "frames": frames}, separators=(",", ":")).encode()
    assert len(lied) == end - start
    data[start:end] = lied
    bad = tmp_path / "lied.exv"
    bad.write_bytes(bytes(data))
    sc = scan(bad)
    assert not sc.content_skipped
    assert any("frame index does not account" in p for p in sc.problems)
    assert "artifacts/filesystem.jsonl" in sc.kept or any(
        n == "artifacts/filesystem.jsonl" for n, _s, _h in sc.members
    )


def test_bundles_without_an_index_are_read_in_full(tmp_path: Path) -> None:
    plain = _bundle(tmp_path / "p.exv", compress="none")
    raw_f, stream = bundleio.open_stream(plain, skip_content=True)
    try:
        assert not bundleio.skips_content(stream)
    finally:
        bundleio._close(raw_f, stream)
    sc = scan(plain)
    assert not sc.content_skipped
    assert any(n.startswith("files/usr/") for n, _s, _h in sc.members)


def test_index_parsing_refuses_what_does_not_add_up(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(100_000))
    with junk.open("rb") as raw:
        assert frameindex.read_plan(raw, 100_000) is None
    assert frameindex._checked([[0, 10, 0, 512, 0, 0], [11, 5, 512, 512, 1, 1]], 16) is None
    assert frameindex._checked([[0, 10, 0, 512, 0, 0], [10, 5, 512, 512, 1, 1]], 15)
    assert frameindex._checked([[0, 10, 0, 512, 2, 0]], 10) is None
    assert frameindex._checked([[0, 10, 0, 512, 0, 3], [10, 5, 512, 512, 1, 1]], 15) is None
    assert frameindex._checked("x", 0) is None
    manifest = b'{"a":{"name":"x"},"members":[{"name":"a","size":1},{"name":"files/etc/passwd",'
    assert frameindex.manifest_positions(manifest, ["files/etc/passwd", "nope"]) == [1]


def test_the_manifest_list_walked_once_checks_what_two_walks_did(tmp_path: Path) -> None:
    """A scan that skips content frames walks the manifest's member list once: what it
    lists for the members read is kept for the integrity check, which then says what
    a second walk says (a member whose hash differs is named either way)."""
    sc = scan(_bundle(tmp_path / "b.exv"))
    assert sc.content_skipped and sc.listed is not None
    assert bundleio.check_against_manifest(sc) == []
    name, size, _sha = sc.members[1]
    sc.members[1] = (name, size, "0" * 64)  # as if the member read was altered
    once = bundleio.check_against_manifest(sc)
    sc.listed = None
    assert (
        once
        == bundleio.check_against_manifest(sc)
        == [f"{name}: does not match the manifest (altered or truncated)"]
    )
