"""The captured state of a target as one object: processes, sockets, target facts,
manifest, custody log and skips, read from a bundle in one pass (for a UI).

Filesystem entries are not loaded here (there may be millions): a UI reads
them from the timeline store (:meth:`forensics.timeline.query.Timeline.file_records`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.bundle.format import CUSTODY_NAME, MANIFEST_NAME, SKIPS_NAME, record_collector
from forensics.bundle.reader import BundleReader, load_json
from forensics.errors import BundleError

PROCESSES = "artifacts/processes.jsonl"
NETWORK = "artifacts/network.jsonl"
MEMORY = "artifacts/memory.jsonl"  # only with capture --memory
TARGET = "artifacts/target.json"
_WANTED = {PROCESSES, NETWORK, TARGET, MANIFEST_NAME, CUSTODY_NAME, SKIPS_NAME}


@dataclass
class Snapshot:
    manifest: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    processes: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[dict[str, Any]] = field(default_factory=list)
    custody: list[dict[str, Any]] = field(default_factory=list)
    skips: list[dict[str, Any]] = field(default_factory=list)
    #: ``memory`` records (capture --memory): one per process core, with its regions
    memory: list[dict[str, Any]] = field(default_factory=list)
    #: what could not be read (member absent or malformed lines), one line each
    problems: list[str] = field(default_factory=list)

    def children(self, pid: int) -> list[dict[str, Any]]:
        return [p for p in self.processes if p.get("ppid") == pid and p.get("pid") != pid]

    def tree(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(depth, process) in tree order: roots are those whose parent was not captured."""
        pids = {p.get("pid") for p in self.processes}
        roots = [
            p for p in self.processes if p.get("ppid") not in pids or p.get("ppid") == p.get("pid")
        ]
        kids: dict[Any, list[dict[str, Any]]] = {}
        for p in self.processes:  # one pass, not a scan per process
            if p.get("ppid") != p.get("pid"):
                kids.setdefault(p.get("ppid"), []).append(p)
        seen: set[Any] = set()
        stack = [(0, p) for p in sorted(roots, key=_pid, reverse=True)]
        while stack:
            depth, proc = stack.pop()
            if proc.get("pid") in seen:
                continue
            seen.add(proc.get("pid"))
            yield depth, proc
            below = sorted(kids.get(proc.get("pid"), []), key=_pid, reverse=True)
            stack.extend((depth + 1, k) for k in below)

    def alive_at(self, ts: int) -> set[int]:
        """Pids of captured processes that had started by ``ts`` (all were alive at capture)."""
        return {
            int(p["pid"])
            for p in self.processes
            if isinstance(p.get("pid"), int) and isinstance(p.get("start_ns"), int)
            and p["start_ns"] <= ts
        }  # fmt: skip

    def memory_of(self, pid: int) -> dict[str, Any] | None:
        """The memory record of host pid ``pid``'s core, if one was captured."""
        return next((m for m in self.memory if m.get("pid") == pid), None)

    def sockets_of(self, pid: int) -> list[dict[str, Any]]:
        return [s for s in self.sockets if any(o.get("pid") == pid for o in s.get("owners") or [])]


def _pid(p: dict[str, Any]) -> int:
    v = p.get("pid")
    return v if isinstance(v, int) else 0


def _jsonl(data: bytes, what: str, problems: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bad = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            bad += 1
            continue
        if isinstance(rec, dict):
            out.append(rec)
        else:
            bad += 1
    if bad:
        problems.append(f"{what}: {bad} malformed line(s) skipped")
    return out


def load_snapshot(bundle: str | Path) -> Snapshot:
    """Read the small artifact members of ``bundle`` (one pass over the file)."""
    snap = Snapshot()
    chunked = {record_collector(n): n for n in (PROCESSES, NETWORK, MEMORY)}

    def wanted(name: str) -> bool:
        return name in _WANTED or record_collector(name) in chunked

    found: dict[str, bytes] = {}
    for name, data in BundleReader(bundle).read_members(wanted).items():
        # 2.0 chunks artifacts/<c>/NNNNNN.jsonl, in bundle order, as the 1.x member
        key = chunked.get(record_collector(name), name)
        found[key] = found.get(key, b"") + data
    for name in sorted(_WANTED - found.keys()):
        snap.problems.append(f"{name}: not in the bundle")
    for name, attr in ((MANIFEST_NAME, "manifest"), (TARGET, "target")):
        if name in found:
            try:
                doc = load_json(found[name], name)
            except BundleError as err:
                snap.problems.append(str(err))
                continue
            if isinstance(doc, dict):
                setattr(snap, attr, doc)
            else:
                snap.problems.append(f"{name}: not a JSON object")
    if not snap.target and isinstance(snap.manifest.get("target"), dict):
        snap.target = snap.manifest["target"]
    for name, attr in (
        (PROCESSES, "processes"),
        (NETWORK, "sockets"),
        (CUSTODY_NAME, "custody"),
        (SKIPS_NAME, "skips"),
        (MEMORY, "memory"),
    ):
        if name in found:
            setattr(snap, attr, _jsonl(found[name], name, snap.problems))
    snap.sockets = [s for s in snap.sockets if s.get("kind") == "socket"] or snap.sockets
    return snap


__all__ = ["Snapshot", "load_snapshot"]
