"""YARA: the examiner's rules matched captured bytes (files, executables, memory).

Matches come from the ``yara`` records (``capture --scan``) and from the scan
results kept beside the bundle (``exuvia scan``, forensics/scan/sidecar.py,
checked against the bundle's manifest hash). One finding per YARA rule
(namespace and name), its evidence each match; a rule's ``severity`` metadata
(critical, high, medium, low, info) ranks it, else it is high.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forensics.errors import BundleError
from forensics.findings.facts import Facts
from forensics.findings.model import Evidence, Severity, Strength
from forensics.findings.rules import Hit, Rule
from forensics.scan.sidecar import load_result, result_path

FAMILY = "yara"
RECORD_COLLECTORS = ("yara",)
#: matches listed as evidence of one finding (all are counted)
MAX_EVIDENCE = 20


def _matches(facts: Facts) -> list[tuple[str, int, dict[str, Any]]]:
    """(member or results file, line, match) from the bundle and from beside it."""
    out = [(r.member, r.line, r.data) for r in facts.records.get("yara", [])
           if r.get("kind") == "yara_match"]  # fmt: skip
    path = result_path(Path(facts.bundle), facts.manifest_sha256)
    if path is not None:
        try:
            doc = load_result(path, facts.manifest_sha256)
        except BundleError as err:
            facts.problems.append(f"scan results not used: {err}")
            return out
        matches = doc.get("matches")
        for n, m in enumerate(matches if isinstance(matches, list) else [], 1):
            if isinstance(m, dict):
                out.append((path.name, n, m))
    return out


def _severity(meta: object) -> Severity | None:
    if isinstance(meta, dict):
        value = meta.get("severity")
        if isinstance(value, str) and value.strip().upper() in Severity.__members__:
            return Severity[value.strip().upper()]
    return None


def matched(facts: Facts, rule: Rule) -> Iterator[Hit]:
    families: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for member, line, m in _matches(facts):
        families.setdefault(f"{m.get('namespace', '?')}:{m.get('rule', '?')}", []).append(
            (member, line, m)
        )
    for family, found in families.items():
        evidence: list[Evidence] = []
        seen: set[str] = set()
        for member, line, m in found:
            where = str(m.get("path") or m.get("member") or "?")
            if where in seen or len(evidence) >= MAX_EVIDENCE:
                continue
            seen.add(where)
            role = f"matched {where} at offset {m.get('offset', '?')}"
            key = m.get("path") if isinstance(m.get("path"), str) else None
            evidence.append(Evidence(member, line, "file" if key else "record", role, where, key))
        first = found[0][2]
        places = sorted({str(m.get("path") or m.get("member")) for _, _, m in found})
        values = {
            "family": family,
            "count": len(places),
            "where": places[0] + (f" and {len(places) - 1} more" if len(places) > 1 else ""),
            "tags": ", ".join(map(str, first.get("tags") or [])) or "none",
        }
        attrs = {"name": family, "members": len(places), "tags": first.get("tags") or []}
        yield Hit(f"yara:{family}", values, tuple(evidence), None, attrs,
                  _severity(first.get("meta")))  # fmt: skip


RULES = (
    Rule(
        "yara.match",
        Severity.HIGH,
        Strength.HEURISTIC,
        "YARA rule {family} matched {where}",
        "A YARA rule the examiner supplied matched captured bytes ({count} member(s); "
        "tags: {tags}): a copied file, a recovered executable or a memory core holds what "
        "the rule describes. The matched strings and offsets are in the evidence.",
        matched,
        caveats="Only as good as the rules: broad strings match benign files. Members larger "
        "than the scan window are scanned in overlapping windows, where whole-file "
        "conditions (filesize, a header at offset 0) hold per window.",
    ),
)
