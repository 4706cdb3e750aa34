"""Findings: what an examiner looks at first, ranked, each with the records that prove it.

    from forensics.findings import analyze_bundle
    report = analyze_bundle("capture.exv")
    report.findings      # [Finding], most severe and best evidenced first
    report.blind_spots   # what the rules could not see in this bundle
    report.to_dict()     # the JSON of `exuvia findings --output json`

Pure: the rules read a bundle's records (:mod:`forensics.findings.load`), never
a live system. Rule families are modules of :mod:`forensics.findings.rules`;
docs/findings.md describes every rule.
"""

from __future__ import annotations

from forensics.findings.engine import FindingsReport, analyze_bundle, analyze_facts
from forensics.findings.model import Evidence, Finding, Severity, Strength, rank

__all__ = [
    "Evidence",
    "Finding",
    "FindingsReport",
    "Severity",
    "Strength",
    "analyze_bundle",
    "analyze_facts",
    "rank",
]
