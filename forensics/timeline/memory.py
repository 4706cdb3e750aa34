"""Memory records (``artifacts/memory/NNNNNN.jsonl``) into ``memory.read`` events.

Two events per process core: when its read began and when it ended (the smear
window: the core is not an atomic snapshot; docs/memory.md). Entity ``pid:N``,
source ``memory``; the end event's message gives the core's size, its SHA-256
and how much of it could not be read.
"""

from __future__ import annotations

import json
from typing import Any

from forensics.timeline.bundleio import MemberStream
from forensics.timeline.events import Kind, Source
from forensics.timeline.fs import _int, kind_records
from forensics.timeline.sink import Sink

_SOURCE = int(Source.MEMORY)
_KIND = int(Kind.MEMORY_READ)


def _sum(regions: Any, key: str) -> int:
    if not isinstance(regions, list):
        return 0
    return sum(v for r in regions if isinstance(r, dict) and type(v := r.get(key)) is int)


def _unreadable(regions: Any) -> int:
    total = 0
    for r in regions if isinstance(regions, list) else []:
        holes = r.get("unreadable") if isinstance(r, dict) else None
        for h in holes if isinstance(holes, list) else []:
            if isinstance(h, list) and len(h) >= 2 and type(h[1]) is int:
                total += h[1]
    return total


def extract_memory(stream: MemberStream, sink: Sink) -> None:
    name = stream.name
    mid = sink.member(name)
    for lineno, rec in kind_records(stream, sink, "memory"):
        pid = _int(rec.get("pid"))
        start, end = _int(rec.get("read_start_ns")), _int(rec.get("read_end_ns"))
        if pid is None or start is None or end is None:
            sink.problem("no_time", name, lineno, "memory record without pid or read times")
            continue
        regions = rec.get("regions")
        stored = _int(rec.get("stored_bytes")) or 0
        holes = _unreadable(regions)
        comm = str(rec.get("comm") or "?")[:64]
        member = str(rec.get("member") or "?")[:200]
        attrs = {
            "pid": pid,
            "comm": comm,
            "member": member,
            "sha256": rec.get("sha256"),
            "size": _int(rec.get("size")),
            "stored_bytes": stored,
            "read_bytes": _sum(regions, "read"),
            "untouched_bytes": _sum(regions, "untouched"),
            "unreadable_bytes": holes,
            "regions": len(regions) if isinstance(regions, list) else None,
            "mode": rec.get("mode"),
            "read_start_ns": start,
            "read_end_ns": end,
        }
        blob = json.dumps(attrs, ensure_ascii=False, default=str)
        n = attrs["regions"] if attrs["regions"] is not None else "?"
        began = f"memory read of pid {pid} ({comm}) began: {n} mappings, {stored} bytes to store"
        ended = (
            f"memory read of pid {pid} ({comm}) ended after {(end - start) / 1e6:.1f} ms: "
            f"{member}, sha256 {str(rec.get('sha256'))[:16]}…"
            + (f", {holes} bytes unreadable (zeros)" if holes else "")
        )
        for ts, msg in ((start, began), (end, ended)):
            sink.event((_SOURCE, _KIND, ts, None, 0, f"pid:{pid}", msg, mid, lineno, blob))
