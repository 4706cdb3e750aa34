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


def test_replay_process_view_shows_the_core_literally() -> None:
    from forensics.snapshot import Snapshot  # noqa: PLC0415
    from tui.replay.screens.processes import process_text  # noqa: PLC0415

    mem = {
        "pid": 42,
        "member": "memory/42.core",
        "size": 8192,
        "sha256": "ab" * 32,
        "read_start_ns": T0,
        "read_end_ns": T0 + 3_000_000,
        "regions": [
            {
                "start": 0x1000,
                "end": 0x2000,
                "perms": "rw-p",
                "kind": "memfd",
                "stored": 4096,
                "sha256": "cd" * 32,
                "path": "/memfd:[red]x[/]\x1b[2J",
                "unreadable": [[0x1000, 4096, "EIO"]],
            },
            {
                "start": 0x3000,
                "end": 0x4000,
                "perms": "r--p",
                "kind": "file",
                "stored": 0,
                "not_stored": "file-backed",
            },
        ],
    }
    snap = Snapshot(processes=[{"pid": 42, "nspid": 1, "name": "app"}], memory=[mem])
    text = process_text(snap, snap.processes[0]).plain
    assert "memory (2 mappings)" in text and "memory/42.core" in text
    assert "3.0 ms from" in text and "not an atomic snapshot" in text
    assert "0x000000001000-0x000000002000 rw-p memfd" in text and "sha256 cdcdcdcd" in text
    assert "/memfd:[red]x[/]" in text and "\x1b" not in text
    assert "(not stored: file-backed)" in text and "unreadable ranges 1" in text
    other = process_text(snap, {"pid": 43, "nspid": 2, "name": "b"}).plain
    assert "memory (" not in other
