"""Rule families: one module per family, each rule a piece of data.

A family module defines ``FAMILY`` (its name) and ``RULES``, a tuple of
:class:`Rule`: an id, a severity, an evidence strength, a title and a
rationale (templates filled from each hit's ``values``), the parameters the
check reads (paths, names, patterns: data, so a rule is tuned or added by
editing a table) and the check itself, a function from the facts to hits.
A family that needs log lines declares ``LOG_PATTERNS`` (id -> regular
expression): the loader keeps the lines that match, once, for every family.
``KEEP_PATHS`` names filesystem entries to keep by path; ``RECORD_COLLECTORS``
names collectors (``artifacts/<collector>.jsonl``, e.g. a memory collector's)
whose records the loader keeps whole in ``Facts.records[collector]``.

Families are found by listing this package, so adding one is adding a module
(docs/findings.md documents every rule; a unit test checks that it does).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from forensics.findings.facts import Facts
from forensics.findings.model import Evidence, Finding, Severity, Strength, finding_id

#: findings one rule may produce; past this, one more finding says how many were left out
MAX_PER_RULE = 100


@dataclass(frozen=True, slots=True)
class Hit:
    """One thing a rule found: what it is about and the records that show it."""

    subject: str  # stable key (pid:4242:1234, path:/etc/x, ...) for the finding id
    values: Mapping[str, Any]  # fills the rule's title and rationale templates
    evidence: tuple[Evidence, ...]
    ts: int | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # when the rule's table says this hit ranks otherwise


Check = Callable[[Facts, "Rule"], Iterable[Hit]]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    strength: Strength
    title: str
    rationale: str
    check: Check
    params: Mapping[str, Any] = field(default_factory=dict)
    #: what can make it fire on a benign target, and what it cannot see (docs, --explain)
    caveats: str = ""


class _Safe(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def fill(template: str, values: Mapping[str, Any]) -> str:
    """A template filled with ``values`` (an unknown name reads '?'); one line."""
    text = template.format_map(_Safe(values))
    return " ".join(text.split()) if "\n" in text else text


def _finding(rule: Rule, family: str, hit: Hit) -> Finding:
    return Finding(
        id=finding_id(rule.id, hit.subject),
        rule=rule.id,
        family=family,
        severity=hit.severity if hit.severity is not None else rule.severity,
        strength=rule.strength,
        title=fill(rule.title, hit.values),
        rationale=fill(rule.rationale, hit.values),
        subject=hit.subject,
        evidence=hit.evidence,
        ts=hit.ts,
        attrs=dict(hit.attrs),
    )


@cache
def families() -> tuple[ModuleType, ...]:
    """Every family module of this package, by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "RULES") and hasattr(module, "FAMILY"):
            found.append(module)
    return tuple(found)


def all_rules() -> list[tuple[str, Rule]]:
    """(family, rule) for every rule, in family then table order."""
    return [(m.FAMILY, r) for m in families() for r in m.RULES]


@cache
def log_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every family's log patterns: (pattern id, compiled expression)."""
    out: list[tuple[str, re.Pattern[str]]] = []
    for m in families():
        for pid, expr in getattr(m, "LOG_PATTERNS", {}).items():
            out.append((pid, re.compile(expr, re.IGNORECASE)))
    return tuple(out)


def run_rules(facts: Facts, rules: Iterable[tuple[str, Rule]] | None = None) -> list[Finding]:
    """Every rule over ``facts``; a rule's findings past :data:`MAX_PER_RULE` are
    summed up in one last finding, never dropped silently."""
    out: list[Finding] = []
    for family, rule in all_rules() if rules is None else rules:
        hits = list(rule.check(facts, rule))
        for hit in hits[:MAX_PER_RULE]:
            out.append(_finding(rule, family, hit))
        if len(hits) > MAX_PER_RULE:
            rest = hits[MAX_PER_RULE:]
            out.append(
                Finding(
                    id=finding_id(rule.id, "more"),
                    rule=rule.id,
                    family=family,
                    severity=rule.severity,
                    strength=rule.strength,
                    title=f"{len(rest)} more findings of rule {rule.id} not listed one by one",
                    rationale=fill(rule.rationale, rest[0].values),
                    subject="more",
                    evidence=tuple(e for h in rest[:20] for e in h.evidence[:1]),
                    attrs={"count": len(rest)},
                )
            )
    return out


__all__ = ["MAX_PER_RULE", "Hit", "Rule", "all_rules", "families", "fill", "log_patterns",
           "run_rules"]  # fmt: skip
