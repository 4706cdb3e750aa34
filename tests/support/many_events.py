"""A real bundle with a few thousand events, for tests of a timeline read while it is built.

Written with the real :class:`~forensics.bundle.writer.BundleWriter` (a
complete, verifiable bundle); deterministic contents. File times are spread
over a year in an order unrelated to the records' order, so the earliest events
are not those of the first records (a growing store's first screen must be
sorted by time, not by arrival).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.bundle.writer import BundleWriter
from forensics.timeutil import iso_ns

NS = 1_000_000_000
BASE = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
DAY = 86400 * NS


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in rows)


def _fs(i: int, n: int) -> dict[str, Any]:
    # a permutation of 0..n-1 (7919 is a prime that does not divide n): the earliest
    # file times are in the middle of the member, all before the container's creation
    slot = (i * 7919 + n // 2) % n
    m = BASE - 400 * DAY + slot * (300 * DAY // n)
    return {
        "kind": "fs_entry", "path": f"/srv/data/d{i // 100}/file_{i}.dat", "type": "file",
        "size": i, "mode": "0644", "uid": 0, "gid": 0, "inode": 10_000 + i, "nlink": 1,
        "dev": "0:39", "mtime_ns": m, "atime_ns": m + DAY, "ctime_ns": m + 2 * DAY,
        "btime_ns": m, "changed": False,
    }  # fmt: skip


def build(path: Path, entries: int = 6000, log_lines: int = 2000) -> Path:
    """Write the bundle to ``path``; each file entry gives 3 events (m+b, a, c)."""
    target = {
        "uri": "runc://many-1", "runtime": "runc", "pid": 500, "container_id": "many-1",
        "name": "many-1", "image": "registry.local/many:1", "image_digest": None,
        "created_ns": BASE - NS, "started_ns": BASE, "status": "running",
        "log_paths": ["/run/many-1/stdio.log"], "log_format": "raw", "runtime_facts": {},
    }  # fmt: skip
    procs = [
        {"kind": "process", "pid": 500, "nspid": 1, "ppid": 1, "nsppid": 0, "name": "srv",
         "cmdline": ["/srv/bin/srv"], "uid": {"real": 0, "effective": 0},
         "gid": {"real": 0, "effective": 0}, "start_ns": BASE}
    ]  # fmt: skip
    source = {
        "kind": "log_source", "origin": "runtime", "format": "raw",
        "host_path": "/run/many-1/stdio.log", "member": "logs/runtime/stdio.log",
    }  # fmt: skip
    log = "".join(
        f"{iso_ns(BASE + 200 * DAY + i * NS)} request {i} served needle{i % 10}\n"
        for i in range(log_lines)
    ).encode()
    end = BASE + 400 * DAY
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as raw:
        w = BundleWriter(raw, threads=1)
        w.add_bytes("artifacts/target.json", json.dumps(target).encode() + b"\n")
        w.add_bytes("artifacts/processes.jsonl", _jsonl(procs))
        w.add_bytes("artifacts/filesystem.jsonl", _jsonl([_fs(i, entries) for i in range(entries)]))
        w.add_bytes("logs/runtime/stdio.log", log)
        w.add_bytes("artifacts/logs.jsonl", _jsonl([source]))
        w.finish({"acquisition": {"start_ns": end - NS, "end_ns": end}, "complete": True})
    tmp.rename(path)
    return path
