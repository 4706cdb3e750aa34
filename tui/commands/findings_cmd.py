"""`exuvia findings BUNDLE`: what to look at first, ranked, each with its evidence."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from forensics.case import is_case
from forensics.findings import Finding, FindingsReport, Severity, analyze_bundle
from forensics.findings.case import CaseFindings, analyze_case
from forensics.textsafe import printable
from tui.commands.options import add_output_format, print_json

SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "findings",
        help="what an examiner looks at first: ranked findings with their evidence",
        description="Run every rule (docs/findings.md) over the bundle's records: deleted "
        "or memfd executables, programs run from writable places or added after start, "
        "late listeners and outbound connections, changed system files, LD_PRELOAD and "
        "friends, traced processes, unexpected capabilities or root, service-account "
        "token reads, rewritten command lines, attack tooling in the logs. Prints them "
        "most severe first, each with the bundle records (member:line) that prove it, "
        "then what the rules could not see. Exit 0 (findings or not), 2 on a bad bundle.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE|CASE",
                   help="a bundle, or a case directory (each bundle's findings, and those "
                   "that hold in several pods)")  # fmt: skip
    add_output_format(p)
    p.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="info",
        help="leave out findings below this severity (default: show all)",
    )
    p.add_argument("--explain", action="store_true", help="print each finding's rationale too")
    p.set_defaults(handler=run)


def finding_lines(f: Finding, *, explain: bool = False, width: int = 0) -> list[str]:
    """A finding for a terminal: its title line, then its evidence (every string escaped)."""
    head = f"{f.severity.label.upper():<9}{printable(f.title)}"
    lines = [head if not width or len(head) <= width else head[: width - 1] + "…"]
    where = f.where
    if where:
        lines.append("         in " + printable(where.get("label", "?")))
    if explain:
        lines.append("         why: " + printable(f.rationale))
    lines.append(f"         [{f.id}, evidence {f.strength.label}]")
    for ev in f.evidence[:6]:
        lines.append(f"         > {printable(ev.member)}:{ev.line}  {printable(ev.role)}")
    if len(f.evidence) > 6:
        lines.append(f"         > … {len(f.evidence) - 6} more records")
    return lines


def _print(report: FindingsReport, shown: list[Finding], explain: bool) -> None:
    t = report.target
    name = t.get("uri") or t.get("name") or "?"
    counts = ", ".join(f"{n} {k}" for k, n in report.counts.items() if n)
    print(f"findings of {printable(str(report.bundle))}: {printable(str(name))}"
          + (f"  image {printable(str(t.get('image')))}" if t.get("image") else ""))  # fmt: skip
    state = "complete" if report.complete else "INCOMPLETE"
    if report.facts.cut or not report.facts.manifest:
        from forensics.bundle.verify import cut_off_banner, verify_bundle  # noqa: PLC0415

        print(cut_off_banner(verify_bundle(report.bundle)))  # a .partial: say how far first
        state = "CUT OFF (read up to where the stream ends)"
    print(f"capture: {state}; {len(report.findings)} findings" + (f" ({counts})" if counts else ""))
    if not shown:
        print("no findings" + (" at or above that severity" if report.findings else ""))
    for f in shown:
        print()
        for line in finding_lines(f, explain=explain):
            print(line)
    if report.blind_spots:
        print()
        print("what the rules could not see:")
        for spot in report.blind_spots:
            print(f"  - {printable(spot)}")


def _print_case(cf: CaseFindings, floor: Severity, explain: bool) -> None:
    case = cf.case
    counts = ", ".join(f"{n} {k}" for k, n in cf.counts.items() if n)
    print(f"findings of case {printable(case.case_id)} ({printable(str(case.path))}): "
          f"{printable(case.target)}")  # fmt: skip
    print(f"{len(case.bundles)} bundle(s), {len(cf.findings)} findings"
          + (f" ({counts})" if counts else ""))  # fmt: skip
    across = [a for a in cf.across if a.severity >= floor]
    if across:
        print()
        print("held in several pods:")
        for a in across:
            print(f"  {a.severity.label.upper():<9}{printable(a.title)}")
            print(f"           in {len(a.findings)}: " + ", ".join(map(printable, a.labels)))
    for b, rep, err in cf.bundles:
        print()
        if rep is None:
            print(f"== {printable(b.label)}: {printable(err or '?')}")
            continue
        shown = [f for f in rep.findings if f.severity >= floor]
        state = "complete" if rep.complete else "INCOMPLETE"
        print(f"== {printable(b.label)} ({state}): {len(rep.findings)} findings")
        for f in shown:
            for line in finding_lines(replace(f, where={}), explain=explain):
                print("  " + line)
        for spot in rep.blind_spots:
            print(f"  blind spot: {printable(spot)}")


def run(args: argparse.Namespace) -> int:
    floor = Severity[args.min_severity.upper()]
    if is_case(args.bundle):
        cf = analyze_case(args.bundle)
        if args.output_format == "json":
            doc = cf.to_dict()
            for entry in doc["bundles"]:
                entry["findings"] = [f for f in entry["findings"]
                                     if Severity[f["severity"].upper()] >= floor]  # fmt: skip
            print_json(doc)
        else:
            _print_case(cf, floor, args.explain)
        return 0
    progress = None
    if args.output_format == "text" and sys.stderr.isatty():

        def progress(msg: str) -> None:
            sys.stderr.write(f"\r\x1b[2K{msg} …")
            sys.stderr.flush()

    try:
        report = analyze_bundle(args.bundle, progress=progress)
    finally:
        if progress is not None:
            sys.stderr.write("\r\x1b[2K")
    shown = [f for f in report.findings if f.severity >= floor]
    if args.output_format == "json":
        doc = report.to_dict()
        doc["findings"] = [f.to_dict() for f in shown]
        print_json(doc)
    else:
        _print(report, shown, args.explain)
    return 0
