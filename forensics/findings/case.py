"""Findings over a case (forensics/case/): each bundle's, labelled with its pod and
container, and the ones that hold in several pods shown as such.

    cf = analyze_case("cases/IR-42")
    cf.across        # [Across]: one rule, one thing (an executable, a path, an
                     # address...) found in two bundles or more
    cf.bundles       # [(CaseBundle, FindingsReport | None, error | None)]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forensics import __version__
from forensics.case import Case, CaseBundle, load_case
from forensics.errors import ExuviaError
from forensics.findings.engine import SCHEMA_VERSION, FindingsReport, analyze_bundle
from forensics.findings.model import Finding, Severity, Strength

CASE_SCHEMA = "exuvia-case-findings"
#: the attributes that say *what* a finding is about, whatever pod it is in
#: (pids and socket inodes differ between pods; paths, addresses, names do not)
SAME_THING = ("exe", "path", "variable", "value", "remote_addr", "remote_port", "pattern",
              "capabilities", "local_port", "claimed", "argv0", "name", "proto")  # fmt: skip


def where_of(b: CaseBundle) -> dict[str, Any]:
    return {"label": b.label, "namespace": b.namespace, "pod": b.pod,
            "container": b.container, "node": b.node}  # fmt: skip


def same_thing(f: Finding) -> str:
    """What identifies a finding across pods: its rule and its pod-independent attributes."""
    keep = {k: f.attrs[k] for k in SAME_THING if k in f.attrs}
    return f.rule + "\0" + json.dumps(keep, sort_keys=True, default=str)


@dataclass
class Across:
    """A finding that holds in several bundles of the case."""

    rule: str
    severity: Severity
    strength: Strength
    title: str  # the first bundle's title
    findings: list[Finding]

    @property
    def labels(self) -> list[str]:
        return [str(f.where.get("label")) for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.label,
            "strength": self.strength.label,
            "title": self.title,
            "bundles": self.labels,
            "ids": [f.id for f in self.findings],
        }


@dataclass
class CaseFindings:
    case: Case
    bundles: list[tuple[CaseBundle, FindingsReport | None, str | None]] = field(
        default_factory=list
    )
    across: list[Across] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        """Every bundle's findings, ranked together (each carries ``where``)."""
        out = [f for _b, r, _e in self.bundles if r is not None for f in r.findings]
        return sorted(out, key=lambda f: (*f.rank_key()[:2], str(f.where.get("label")), f.rule))

    @property
    def counts(self) -> dict[str, int]:
        c = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for f in self.findings:
            c[f.severity.label] += 1
        return c

    def to_dict(self) -> dict[str, Any]:
        case = self.case
        bundles = []
        for b, rep, err in self.bundles:
            entry: dict[str, Any] = {**where_of(b), "status": b.status, "reason": b.reason,
                                     "bundle": str(b.path) if b.path else None}  # fmt: skip
            if rep is not None:
                doc = rep.to_dict()
                entry.update(
                    manifest_sha256=doc["manifest_sha256"], complete=doc["complete"],
                    cut_off=doc["cut_off"], counts=doc["counts"], findings=doc["findings"],
                    blind_spots=doc["blind_spots"], problems=doc["problems"],
                )  # fmt: skip
            else:
                entry.update(findings=[], error=err)
            bundles.append(entry)
        return {
            "format": CASE_SCHEMA,
            "version": SCHEMA_VERSION,
            "tool": f"exuvia {__version__}",
            "case": {
                "id": case.case_id,
                "directory": str(case.path),
                "target": case.target,
                "state": case.state,
                "examiner": case.examiner,
            },
            "counts": self.counts,
            "across": [a.to_dict() for a in self.across],
            "bundles": bundles,
        }


def group_across(findings: list[Finding]) -> list[Across]:
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(same_thing(f), []).append(f)
    out = []
    for fs in groups.values():
        if len({str(f.where.get("label")) for f in fs}) < 2:
            continue
        top = min(fs, key=Finding.rank_key)
        out.append(Across(top.rule, top.severity, top.strength, top.title, fs))
    return sorted(out, key=lambda a: (-int(a.severity), -int(a.strength), -len(a.findings), a.rule))


def analyze_case(
    path: str | Path, *, progress: Callable[[str], None] | None = None
) -> CaseFindings:
    """The findings of every captured bundle of the case at ``path``."""
    case = load_case(path)
    note = progress or (lambda _m: None)
    out = CaseFindings(case)
    for b in case.bundles:
        if not b.captured or b.path is None:
            out.bundles.append(
                (b, None, f"no bundle ({b.status}{': ' + b.reason if b.reason else ''})")
            )
            continue
        note(f"findings of {b.label}")
        try:
            rep = analyze_bundle(b.path)
        except ExuviaError as err:
            out.bundles.append((b, None, str(err)))
            continue
        where = where_of(b)
        rep.findings = [replace(f, where=where) for f in rep.findings]
        out.bundles.append((b, rep, None))
    out.across = group_across(out.findings)
    return out


__all__ = ["CASE_SCHEMA", "Across", "CaseFindings", "analyze_case", "group_across", "same_thing"]
