"""What `exuvia info` says of a bundle's process memory (the manifest's ``memory``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_LISTED = 20


def memory_lines(m: dict[str, Any], safe: Callable[[Any], str]) -> list[str]:
    """Lines for the text form; ``safe`` renders a value from the bundle harmlessly.
    Nothing when memory was not asked for."""
    mem = m.get("memory")
    if not isinstance(mem, dict):
        return []
    procs = [p for p in mem.get("processes") or [] if isinstance(p, dict)]
    missing = [p for p in mem.get("not_captured") or [] if isinstance(p, dict)]
    stored = mem.get("stored_bytes")
    out = [
        f"memory:     {len(procs)} process cores (mode {safe(mem.get('mode'))}, "
        f"{safe(stored)} bytes stored; read live, not an atomic snapshot)"
    ]
    for p in procs[:MAX_LISTED]:
        start, end = p.get("read_start_ns"), p.get("read_end_ns")
        window = (
            f"{(end - start) / 1e6:.1f} ms from {safe(p.get('read_start'))}"
            if type(start) is int and type(end) is int
            else "?"
        )
        out.append(
            f"  - {safe(p.get('member'))}  pid {safe(p.get('pid'))}  {safe(p.get('size'))} "
            f"bytes  read in {window}  sha256 {safe(p.get('sha256'))}"
        )
    if len(procs) > MAX_LISTED:
        out.append(f"  … {len(procs) - MAX_LISTED} more (artifacts/memory/)")
    for p in missing[:MAX_LISTED]:
        out.append(f"  - NOT CAPTURED: pid {safe(p.get('pid'))}: {safe(p.get('reason'))}")
    return out
