"""The findings of a live target, for triage: the same rules over records read now.

Processes and sockets are read by the capture's own collectors; what changed
since start comes from the overlay's upper layer (:meth:`TargetRoot.changed`);
the tails of the runtime's log files are searched with the log rules'
patterns. Nothing is written to the target. What a capture has and this does
not (the image's files, hence aliases and the software inventory) is said in
the blind spots. Evidence names ``live:<what>`` and the record's position, not a
bundle member: the triage app pivots by pid or path.
"""

from __future__ import annotations

from collections.abc import Iterable

from collectors.context import CollectContext
from collectors.fs.browse import TargetRoot
from collectors.network import collect_network
from collectors.processes import collect_processes
from collectors.targets.base import TargetInfo
from forensics.findings import FindingsReport, analyze_facts
from forensics.findings.facts import Facts, LogHit, Rec
from forensics.findings.rules import log_patterns
from forensics.records import Record

LOG_TAIL = 8 << 20
MAX_CHANGED = 100_000
MAX_HITS = 10_000
LIVE_BLIND_SPOT = (
    "live view: the image's files were not walked (aliases of argv[0], executables and "
    "world-writable directories unknown) and no software inventory was built: capture "
    "(c) and run `exuvia findings` on the bundle for every rule"
)


def _records(items: Iterable[object], member: str, kind: str) -> list[Rec]:
    out: list[Rec] = []
    for item in items:
        if isinstance(item, Record) and item.kind == kind:
            out.append(Rec(member, len(out) + 1, dict(item.data)))
    return out


def _log_hits(paths: Iterable[str], facts: Facts) -> None:
    patterns = log_patterns()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - LOG_TAIL))
                data = fh.read(LOG_TAIL)
        except OSError as err:
            facts.problems.append(f"{path}: not read ({err.strerror})")
            continue
        facts.logs_scanned.append(path)
        for n, raw in enumerate(data.splitlines(), 1):
            text = raw.decode("utf-8", "replace")
            for pid, pattern in patterns:
                if pattern.search(text) and len(facts.log_hits) < MAX_HITS:
                    facts.log_hits.append(LogHit(f"live:log:{path}", n, pid, text.strip()[:300]))


def live_facts(target: TargetInfo, root: TargetRoot | None, procfs: str = "/proc") -> Facts:
    """What the rules read, from the running target (read-only)."""
    ctx = CollectContext(pid=target.pid, procfs=procfs)
    facts = Facts(bundle=target.uri, target=target.to_dict())
    facts.processes = _records(collect_processes(ctx), "live:processes", "process")
    facts.sockets = _records(collect_network(ctx), "live:network", "socket")
    if root is not None and root.upper_fd is not None:
        facts.upper_known = True
        for i, c in enumerate(root.changed(limit=MAX_CHANGED), 1):
            path = c.path.decode("utf-8", "replace")
            rec = Rec("live:changed", i, {"path": path, "changed": True, "size": c.size,
                                          "type": "whiteout" if c.kind == "deleted" else c.kind,
                                          "mtime_ns": c.mtime_ns})  # fmt: skip
            if rec.get("type") != "dir":
                facts.changed.append(rec)
                facts.files[path] = rec
    _log_hits(target.log_paths, facts)
    return facts


def live_findings(
    target: TargetInfo, root: TargetRoot | None, procfs: str = "/proc"
) -> FindingsReport:
    report = analyze_facts(live_facts(target, root, procfs))
    report.blind_spots.insert(0, LIVE_BLIND_SPOT)
    return report


__all__ = ["live_facts", "live_findings"]
