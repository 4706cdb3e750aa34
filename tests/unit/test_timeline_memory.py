"""Memory records become memory.read events: one where each process's read began,
one where it ended (the smear window)."""

from __future__ import annotations

from pathlib import Path

from forensics.timeline import Query, open_timeline
from tests.unit.test_timeline_support import jsonl, make_bundle

T0 = 1_795_000_000_000_000_000


def test_memory_reads_are_on_the_timeline(tmp_path: Path) -> None:
    recs = [
        {
            "kind": "memory",
            "pid": 42,
            "comm": "app",
            "member": "memory/42.core",
            "sha256": "ab" * 32,
            "size": 8192,
            "stored_bytes": 4096,
            "mode": "anon",
            "read_start_ns": T0 + 10,
            "read_end_ns": T0 + 2_000_010,
            "regions": [
                {
                    "start": 4096,
                    "end": 8192,
                    "read": 0,
                    "untouched": 0,
                    "stored": 4096,
                    "unreadable": [[4096, 4096, "kernel refused the read (EIO: x)"]],
                }
            ],
        },
        {"kind": "memory", "pid": 43},  # no times: counted, not dropped silently
        {"kind": "memory", "pid": "[red]x[/]", "read_start_ns": "no", "read_end_ns": None},
    ]
    bundle = make_bundle(tmp_path / "m.exv", raw_members=[("artifacts/memory.jsonl", jsonl(recs))])
    tl = open_timeline(bundle, cache_dir=tmp_path / "cache")
    evs = tl.events(Query(sources=("memory",)), limit=50)
    assert [(e.ts - T0, e.kind, e.entity) for e in evs] == [
        (10, "memory.read", "pid:42"),
        (2_000_010, "memory.read", "pid:42"),
    ]
    assert "began" in evs[0].message and "1 mappings, 4096 bytes" in evs[0].message
    assert "ended after 2.0 ms" in evs[1].message and "4096 bytes unreadable" in evs[1].message
    assert evs[1].attrs["member"] == "memory/42.core"
    assert evs[1].ref.member == "artifacts/memory.jsonl" and evs[1].ref.line == 1
    assert tl.count(Query(kinds=("memory.read",))) == 2
    assert tl.meta["counts"]["no_time"] == 2
