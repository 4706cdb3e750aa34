"""From a bundle to its ranked findings, with what the rules could not see.

report = analyze_bundle("capture.exv")
for f in report.findings:          # most severe, strongest evidence first
    print(f.severity.label, f.title)
json.dumps(report.to_dict())       # the documented schema (docs/findings.md)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics import __version__
from forensics.findings.facts import Facts
from forensics.findings.load import load_facts
from forensics.findings.model import Finding, Severity, rank
from forensics.findings.rules import all_rules, run_rules
from forensics.findings.rules.inventory import metadata_lists_files

SCHEMA = "exuvia-findings"
SCHEMA_VERSION = "1.0"
MAX_BLIND_SPOTS = 50


@dataclass
class FindingsReport:
    """The findings of one bundle, ranked, and what limits them."""

    bundle: str
    findings: list[Finding]
    facts: Facts
    blind_spots: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(f.severity.label for f in self.findings)
        return {s.label: c.get(s.label, 0) for s in sorted(Severity, reverse=True)}

    @property
    def target(self) -> dict[str, Any]:
        t = self.facts.target or self.facts.manifest.get("target") or {}
        return t if isinstance(t, dict) else {}

    @property
    def complete(self) -> bool:
        """The manifest says the capture completed, and the stream was read to its end."""
        return self.facts.manifest.get("complete") is True and self.facts.cut is None

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "format": SCHEMA,
            "version": SCHEMA_VERSION,
            "tool": f"exuvia {__version__}",
            "bundle": self.bundle,
            "manifest_sha256": self.facts.manifest_sha256,
            "complete": self.complete,
            "incomplete_reason": self.facts.manifest.get("incomplete_reason"),
            "cut_off": self.facts.cut,
            "target": {k: t.get(k) for k in ("uri", "runtime", "container_id", "name", "image")},
            "counts": self.counts,
            "findings": [f.to_dict() for f in self.findings],
            "blind_spots": self.blind_spots,
            "problems": self.facts.problems,
            "rules": [r.id for _family, r in all_rules()],
        }


def blind_spots(facts: Facts) -> list[str]:
    """What the rules could not look at in this bundle, one line each."""
    out: list[str] = []
    if facts.cut:
        out.append(f"the bundle is cut off: {facts.cut}")
    if facts.manifest.get("complete") is False:
        out.append(f"the capture is incomplete: {facts.manifest.get('incomplete_reason') or '?'}")
    if not facts.upper_known:
        out.append(
            "what changed since start is unknown (no overlay upper layer was visible): "
            "files.changed-system and inventory.added-after-start cannot fire"
        )
    inv = facts.inventory
    if inv is not None and inv.coverage.total and not metadata_lists_files(facts):
        out.append(
            f"no package metadata lists the files it installed ({inv.coverage.total} "
            "executables): inventory.unaccounted cannot tell an added program from the "
            "application's own"
        )
    no_env = sum(1 for p in facts.user_processes() if p.get("environ") is None)
    if no_env:
        out.append(f"{no_env} process(es) without a readable environment: env.preload is blind")
    no_fds = sum(1 for p in facts.user_processes() if p.get("fds") is None)
    if no_fds:
        out.append(f"{no_fds} process(es) without readable open files: secrets.sa-token is blind")
    orphans = sum(1 for s in facts.sockets if not s.get("owners"))
    if orphans:
        out.append(
            f"{orphans} socket(s) with no owner in the container's PID namespace "
            "(held by a sidecar, or closed meanwhile)"
        )
    if not facts.logs_scanned:
        out.append("the bundle holds no logs: logs.attack-tooling searched nothing")
    skips = facts.manifest.get("skips")
    total = skips.get("total") if isinstance(skips, dict) else None
    if isinstance(total, int) and total:
        by = skips.get("by_collector") if isinstance(skips, dict) else None
        per = ", ".join(f"{k} {v}" for k, v in sorted(by.items())) if isinstance(by, dict) else ""
        out.append(f"the capture skipped {total} item(s)" + (f" ({per})" if per else ""))
    if inv is not None:
        out += [f"inventory: {p}" for p in inv.problems[: MAX_BLIND_SPOTS - len(out)]]
    if len(out) > MAX_BLIND_SPOTS:
        out = [*out[:MAX_BLIND_SPOTS], f"… {len(out) - MAX_BLIND_SPOTS} more"]
    return out


def analyze_facts(facts: Facts) -> FindingsReport:
    return FindingsReport(facts.bundle, rank(run_rules(facts)), facts, blind_spots(facts))


def analyze_bundle(
    bundle: str | Path,
    *,
    inventory: bool = True,
    progress: Callable[[str], None] | None = None,
) -> FindingsReport:
    """The ranked findings of ``bundle`` (BundleError when it is not a bundle)."""
    return analyze_facts(load_facts(bundle, inventory=inventory, progress=progress))


__all__ = ["SCHEMA", "SCHEMA_VERSION", "FindingsReport", "analyze_bundle", "analyze_facts",
           "blind_spots"]  # fmt: skip
