"""A case directory on the command line: `exuvia verify DIR`, `exuvia info DIR`
(tui/commands/inspect_cmd.py hands a directory holding case.json here) and
`exuvia case diff DIR` (the sibling comparison, forensics/case/diff.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forensics.case import Case, CaseBundle, load_case, verify_case
from forensics.case.diff import CaseDiff, Difference, diff_case
from forensics.textsafe import printable as safe
from forensics.timeutil import iso_ns
from tui.commands.options import add_output_format, print_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "case",
        help="read a case directory (many bundles of one incident) as one",
        description="Commands over a case directory (docs/case-format.md). `exuvia verify "
        "DIR`, `info DIR`, `findings DIR`, `timeline DIR` and `replay DIR` read a case too.",
    )
    cs = p.add_subparsers(dest="case_command", metavar="SUBCOMMAND")
    cs.required = True
    d = cs.add_parser(
        "diff",
        help="the sibling comparison: what only some replicas of a workload have",
        description="Compare the replicas of every workload of the case (pods whose owner "
        "chain ends in the same Deployment, StatefulSet...; one group per container): files "
        "added or changed since start, executables (path and SHA-256), processes "
        "(executable and command line), listening sockets, outbound connections, "
        "environment variables (names and value hashes, never values). Lists what only "
        "some replicas have, or lack, or hold differently, each with the bundles and their "
        "records (member:line), and ranks the replicas so the odd one comes first. Exit 0 "
        "(differences or not), 2 when DIR is not a readable case.",
    )
    d.add_argument("case", type=Path, metavar="DIR", help="a case directory (holding case.json)")
    add_output_format(d)
    d.add_argument(
        "--limit",
        type=int,
        default=30,
        metavar="N",
        help="differences listed per group in text (default 30; json has all)",
    )
    d.set_defaults(handler=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    def progress(msg: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[2K{safe(msg)}")
            sys.stderr.flush()

    result = diff_case(args.case, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K")
    if args.output_format == "json":
        print_json({**result.to_dict(), "exit_status": 0})
    else:
        print_diff(result, limit=args.limit)
    return 0


#: values that only say the key is there
MARKERS = ("running", "listening", "connected")


def difference_lines(d: Difference) -> list[str]:
    """One difference for a terminal: its title, the odd bundles and their records."""
    lines = [f"  {d.weight:5.2f}  {safe(d.title())}"]
    for label in d.bundles:
        shown = [v for v in d.values.get(label, []) if v not in MARKERS][:3]
        vals = ", ".join(safe(v) for v in shown)
        lines.append(f"         {safe(label)}" + (f": {vals}" if vals else ""))
    if d.usual:
        lines.append("         the others: " + ", ".join(safe(v) for v in d.usual[:3]))
    for label, refs in d.refs.items():
        where = " ".join(safe(r) for r in refs[:4]) + (" …" if len(refs) > 4 else "")
        lines.append(f"         > {safe(label)} {where}")
    return lines


def print_diff(result: CaseDiff, *, limit: int = 30) -> None:
    case = result.case
    print(f"sibling comparison of case {safe(case.case_id)} ({safe(str(case.path))})")
    if not result.groups:
        print("no workload has two captured replicas here: nothing to compare")
    for g in result.groups:
        print()
        print(f"== {safe(g.name)}: {len(g.labels)} replicas, {len(g.differences)} differences")
        for label, score in g.ranking:
            n = len(g.of_bundle(label))
            print(f"  {score:7.2f}  {safe(label)}  ({n} differences)")
        for label, why in g.errors.items():
            print(f"  not compared: {safe(label)}: {safe(why)}")
        if not g.differences:
            print("  no differences: the replicas look alike")
        for d in g.differences[:limit]:
            for line in difference_lines(d):
                print(line)
        if len(g.differences) > limit:
            print(f"  … {len(g.differences) - limit} more (--limit, or --output json)")
        if g.varying:
            print(f"  {g.varying} key(s) differ in every replica (logs, per-pod ids): not listed")
    if result.alone:
        print()
        print("not compared (no sibling captured): " + ", ".join(safe(x) for x in result.alone))


def _t(ns: int | None) -> str:
    return iso_ns(ns) if ns is not None else "-"


def run_verify(args: argparse.Namespace, key: bytes | None) -> int:
    directory: Path = args.bundle

    def progress(b: CaseBundle) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[2Kverifying {safe(b.label)}")
            sys.stderr.flush()

    report = verify_case(directory, public_key=key, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K")
    case = report.case
    if case is None:
        print(f"FAILED: {safe(str(directory))}")
        for line in report.problems:
            print(f"  {safe(line)}")
        return 1
    for check in report.bundles:
        b = check.bundle
        if check.report is None and not check.problems:
            why = f" ({safe(b.reason)})" if b.reason else ""
            print(f"  -  {safe(b.label)}: {b.status}, no bundle{why}")
            continue
        mark = "OK" if check.ok else "FAILED"
        state = ""
        if check.report is not None and check.report.has_manifest and not check.report.complete:
            state = f" — INCOMPLETE capture: {safe(check.report.incomplete_reason)}"
        print(f"  {mark} {safe(b.label)}: {safe(b.file or '')}{state}")
        for line in check.failures()[:20]:
            print(f"       {safe(line)}")
    head = "OK" if report.ok else "FAILED"
    print(
        f"{head}: case {safe(case.case_id)} ({safe(str(directory))}): {report.verified} of "
        f"{len(case.bundles)} bundles verify and are the ones case.json names; state {case.state}"
    )
    print(f"case.json sha256: {report.case_sha256}")
    if report.signed_by:
        whose = "the given key" if key is not None else "the key it names (use --key to pin it)"
        print(f"signature:        valid, by {whose}: {report.signed_by}")
    else:
        print("signature:        none")
    print(f"custody seal:     {'matches' if report.sealed else 'not sealed'}")
    for line in report.problems:
        print(f"  {safe(line)}")
    for note in report.notes:
        print(f"note: {safe(note)}")
    return 0 if report.ok else 1


def run_info(args: argparse.Namespace) -> int:
    case = load_case(args.bundle)
    print_info(case)
    return 0


def _request(case: Case) -> str:
    r = case.request
    parts = [safe(case.target or "-")]
    containers = r.get("containers")
    if isinstance(containers, dict) and containers.get("mode") != "default":
        parts.append(f"containers: {safe(str(containers.get('name') or containers.get('mode')))}")
    return ", ".join(parts)


def print_info(case: Case) -> None:
    counts: dict[str, int] = {}
    for b in case.bundles:
        counts[b.status] = counts.get(b.status, 0) + 1
    total = sum(b.bytes or 0 for b in case.bundles)
    print(f"case:       {safe(case.case_id)}   examiner: {safe(case.examiner)}")
    print(f"directory:  {safe(str(case.path))}")
    print(f"asked for:  {_request(case)}")
    print(f"state:      {case.state}   created {_t(case.created_ns)}   sealed {_t(case.sealed_ns)}")
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"bundles:    {len(case.bundles)} ({states or 'none'}), {total} bytes")
    nodes = sorted({p.node or "?" for p in case.pods})
    print(
        f"pods:       {len(case.pods)} resolved on {len(nodes)} node(s): {safe(', '.join(nodes))}"
    )
    for name, members in sorted(case.siblings().items()):
        print(f"replicas:   {safe(name)}: {len(members)}")
    width = max((len(b.label) for b in case.bundles), default=10)
    for b in case.bundles:
        took = ""
        if b.start_ns is not None and b.end_ns is not None:
            took = f"{(b.end_ns - b.start_ns) / 1e9:6.1f}s"
        size = f"{b.bytes:>12}" if b.bytes is not None else " " * 12
        why = f"  {safe(b.reason)}" if b.reason else ""
        node = safe(b.node or "")
        print(f"  {safe(b.label):<{width}}  {b.status:<10} {size} {took:>7}  {node}{why}")
    for s in case.seen_not_captured:
        print(f"  seen later, not captured: {safe(s.namespace)}/{safe(s.name)} ({safe(s.reason)})")
    print("integrity:  not checked here; `exuvia verify DIR` checks case.json and every bundle")


def summary(case: Case) -> dict[str, Any]:
    """The case as a small JSON-able summary (for --output-format json)."""
    return {
        "case_id": case.case_id,
        "directory": str(case.path),
        "state": case.state,
        "target": case.target,
        "bundles": [
            {
                "namespace": b.namespace,
                "pod": b.pod,
                "container": b.container,
                "node": b.node,
                "status": b.status,
                "reason": b.reason,
                "file": b.file,
                "manifest_sha256": b.manifest_sha256,
                "bytes": b.bytes,
                "start_ns": b.start_ns,
                "end_ns": b.end_ns,
            }
            for b in case.bundles
        ],
        "seen_not_captured": [
            {"namespace": s.namespace, "pod": s.name, "reason": s.reason}
            for s in case.seen_not_captured
        ],
    }
