"""A case directory on the command line: `exuvia verify DIR`, `exuvia info DIR`.

tui/commands/inspect_cmd.py hands a directory holding case.json here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forensics.case import Case, CaseBundle, load_case, verify_case
from forensics.textsafe import printable as safe
from forensics.timeutil import iso_ns


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
