"""Bounds of the filesystem walk and acquirer on real trees: depth, huge
directories, sparse files, many hard links. (The same cases inside real
containers: tests/integration/test_hostile_target.py.)"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from collectors.fs import acquire as acquire_mod
from collectors.fs import walk as walk_mod
from collectors.fs.walk import WalkEntry, walk
from tests.unit.test_fs_acquire import acquire


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _walk_paths(root: Path, upper: Path | None = None) -> tuple[list[Any], int]:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    ufd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY) if upper else None
    most = 0
    items = []
    try:
        for item in walk(fd, upper_fd=ufd):
            items.append(item)
            most = max(most, _open_fds())
    finally:
        os.close(fd)
        if ufd is not None:
            os.close(ufd)
    return items, most


def test_deep_tree_with_siblings_walks_in_order_with_bounded_fds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deeper than the fd window, with a sibling directory at every level: the
    walk climbs back above the window and must reopen from the root correctly."""
    monkeypatch.setattr(walk_mod, "MAX_OPEN_CHAIN", 8)
    depth = 40
    p = tmp_path / "r"
    p.mkdir()
    expected_dirs = []
    cur = p
    rel = ""
    for i in range(depth):
        (cur / "s").mkdir()  # sibling, walked after the deep branch ("d" < "s")
        (cur / "s" / "f").write_bytes(f"s{i}".encode())
        cur = cur / "d"
        cur.mkdir()
        expected_dirs.append(rel + "/s")
        rel += "/d"
        expected_dirs.append(rel)
    base = _open_fds()
    items, most = _walk_paths(p)
    assert most - base <= 8 + 2
    entries = {i.path: i for i in items if isinstance(i, WalkEntry)}
    assert all(d.encode() in entries for d in expected_dirs)
    for i in range(depth):
        path = ("/d" * i + "/s/f").encode()
        assert entries[path].st.size == len(f"s{i}")
    assert not [i for i in items if not isinstance(i, WalkEntry)]  # no skips
    # depth-first in name order: everything below /d before what is below /s
    order = [i.path for i in items if isinstance(i, WalkEntry)]
    assert order.index(b"/s/f") > order.index(b"/d" * (depth - 1) + b"/s/f")


def test_huge_upper_directory_is_probed_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walk_mod, "UPPER_NAMES_MAX", 10)
    merged, upper = tmp_path / "merged", tmp_path / "upper"
    (merged / "big").mkdir(parents=True)
    (upper / "big").mkdir(parents=True)
    for i in range(50):
        (merged / "big" / f"f{i:02d}").write_bytes(b"x")
        if i % 2 == 0:
            (upper / "big" / f"f{i:02d}").write_bytes(b"x")
    os.mknod(upper / "big" / "gone", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
    items, _ = _walk_paths(merged, upper)
    changed = {
        i.path: i.changed for i in items if isinstance(i, WalkEntry) and i.path.startswith(b"/big/")
    }
    assert changed == {f"/big/f{i:02d}".encode(): i % 2 == 0 for i in range(50)}
    whiteouts = [i.path for i in items if isinstance(i, walk_mod.Whiteout)]
    assert whiteouts == [b"/big/gone"]


def test_sparse_file_is_hashed_by_its_data_regions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    size = 1 << 30
    with open(root / "sparse", "wb") as fh:
        fh.write(b"head")
        fh.seek(size // 2)
        fh.write(b"middle")
        fh.truncate(size)
    if os.stat(root / "sparse").st_blocks * 512 > 1 << 20:
        pytest.skip("this filesystem does not keep holes")
    (root / "dense").write_bytes(b"d" * 1000)
    out = tmp_path / "b.exv"
    recs, skips = acquire(root, out, "all")
    rec = next(r.data for r in recs if r.data["path"] == "/sparse")
    assert rec["sparse"] is True and "sha256" not in rec and "member" not in rec
    # recompute data_sha256 from the listed regions, independently
    h = hashlib.sha256()
    with open(root / "sparse", "rb") as fh:
        for off, length in rec["data_extents"]:
            fh.seek(off)
            h.update(struct.pack("<QQ", off, length) + fh.read(length))
    assert rec["data_sha256"] == h.hexdigest()
    assert rec["data_extent_count"] == len(rec["data_extents"]) == 2
    assert next(s.reason for s in skips if s.subject == "/sparse").startswith("sparse file")
    dense = next(r.data for r in recs if r.data["path"] == "/dense")
    assert dense["sha256"] == hashlib.sha256(b"d" * 1000).hexdigest()


def test_hard_links_are_forgotten_once_all_are_seen_and_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(acquire_mod, "HARDLINKS_MAX", 3)
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for i in range(6):
        (root / "a" / f"f{i}").write_bytes(f"content {i}".encode())
        os.link(root / "a" / f"f{i}", root / "b" / f"f{i}")
    recs, skips = acquire(root, tmp_path / "b.exv", "none")
    by = {r.data["path"]: r.data for r in recs}
    for i in range(6):
        want = hashlib.sha256(f"content {i}".encode()).hexdigest()
        assert by[f"/a/f{i}"]["sha256"] == by[f"/b/f{i}"]["sha256"] == want
    # the first three were remembered; past the cap a link is hashed again
    linked = [i for i in range(6) if by[f"/b/f{i}"].get("hardlink_of") == f"/a/f{i}"]
    assert linked == [0, 1, 2]
    assert not skips
