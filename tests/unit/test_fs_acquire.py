"""The filesystem acquirer on real directory trees: order, hashes, copies, links."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from collectors.fs.acquire import FilesystemAcquirer
from collectors.fs.policy import CopyPolicy
from forensics.bundle import BundleWriter, verify_bundle
from forensics.bundle.writer import SMALL
from forensics.records import Record, Skip
from tests.support.bundles import member


def acquire(root: Path, out: Path, policy: str = "all") -> tuple[list[Record], list[Skip]]:
    with out.open("wb") as raw:
        w = BundleWriter(raw, compress="none")
        acq = FilesystemAcquirer(w, CopyPolicy(policy))
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            items = list(acq.run(fd, frozenset(), None))
        finally:
            os.close(fd)
        w.finish({"complete": True})
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Skip)]


def test_records_keep_walk_order_and_every_hash_and_copy_is_right(tmp_path: Path) -> None:
    root = tmp_path / "root"
    expected: dict[str, bytes] = {}
    for d in range(6):
        for f in range(60):
            # mix small files (one write per member) and large ones (streamed in chunks)
            size = (SMALL + 4096) if f % 17 == 0 else (f * 131 + d)
            content = hashlib.sha256(f"{d}/{f}".encode()).digest() * (size // 32 + 1)
            p = root / f"d{d}" / f"f{f:03d}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content[:size])
            expected[f"/d{d}/f{f:03d}"] = content[:size]
    os.link(root / "d0" / "f001", root / "d5" / "zz-link")
    out = tmp_path / "b.exv"
    recs, skips = acquire(root, out)
    assert skips == []
    paths = [r.data["path"] for r in recs]
    # a directory's entries, then each subdirectory's, in name order
    walk_order = ["/"] + [f"/d{d}" for d in range(6)]
    for d in range(6):
        walk_order += [f"/d{d}/f{f:03d}" for f in range(60)]
    walk_order.append("/d5/zz-link")
    assert paths == walk_order
    by = {r.data["path"]: r.data for r in recs}
    for path, content in expected.items():
        rec = by[path]
        assert rec["sha256"] == hashlib.sha256(content).hexdigest(), path
        assert member(out, rec["member"]) == content
    assert by["/d5/zz-link"]["hardlink_of"] == "/d0/f001"
    assert verify_bundle(out).ok


def test_hash_only_policy_copies_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a").write_bytes(b"x" * 100)
    recs, _ = acquire(root, tmp_path / "n.exv", policy="none")
    rec = next(r.data for r in recs if r.data["path"] == "/a")
    assert "member" not in rec and rec["sha256"] == hashlib.sha256(b"x" * 100).hexdigest()
