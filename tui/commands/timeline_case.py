"""`exuvia timeline CASE`: every captured bundle's timeline merged, each event with
its pod and container (forensics/timeline/case.py)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from forensics.errors import ExuviaError
from forensics.textsafe import printable
from forensics.timeline import Query
from forensics.timeline.case import (
    CaseEvent,
    CaseNotes,
    CaseTimeline,
    open_case_timeline,
    write_case_export,
)
from forensics.timeline.text import one_line
from forensics.timeutil import iso_ns


def format_case_event(ce: CaseEvent, width: int = 0, pod_width: int = 24) -> str:
    """One line: time, MACB or kind, source, pod/container, message (escaped)."""
    ev = ce.event
    what = ev.macb if ev.macb else ev.kind
    pod = f"{ce.where.pod}/{ce.where.container}"
    line = (
        f"{iso_ns(ev.ts)}  {what:<17} {ev.source:<7} {printable(pod):<{pod_width}} "
        f"{one_line(ev.message)}"
    )
    return line[: width - 1] + "…" if width and len(line) > width else line


def case_summary(ct: CaseTimeline, q: Query) -> list[str]:
    counts = ct.counts()
    total = sum(counts.values())
    lines = [f"timeline of case {printable(ct.case_id)}: {total} events in {len(counts)} bundles"]
    for label, n in counts.items():
        lines.append(f"  {printable(label)}: {n} events")
    for label, why in ct.skipped.items():
        lines.append(f"  not in the timeline: {printable(label)}: {printable(why)}")
    return lines


def _progress(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None

    def note(msg: str) -> None:
        sys.stderr.write(f"\r\x1b[2K{printable(msg)} …")
        sys.stderr.flush()

    return note


def case_notes(ct: CaseTimeline, with_notes: bool, with_findings: bool) -> CaseNotes | None:
    """Per bundle: the examiner's notes (from each bundle's notes file) and/or its
    findings as tags (forensics/findings/case.py)."""
    if not (with_notes or with_findings):
        return None
    from forensics.notes import NotesFile  # noqa: PLC0415 - when asked

    own: dict[str, Any] = {}
    if with_notes:
        for w in ct.wheres:
            own[w.label] = NotesFile.for_bundle(ct.path / w.file).notes
    if not with_findings:
        return own
    from forensics.findings.case import analyze_case  # noqa: PLC0415
    from forensics.findings.tags import FindingTags  # noqa: PLC0415

    out: dict[str, Any] = {}
    for b, rep, _err in analyze_case(ct.path).bundles:
        if rep is not None:
            out[b.label] = FindingTags(rep.findings, own.get(b.label))
    return {**own, **out}


def run_case(args: argparse.Namespace, q: Query) -> int:
    from tui.commands.timeline_cmd import _EXT_FORMATS  # noqa: PLC0415 - no import cycle

    progress = _progress(args.quiet)
    ct = open_case_timeline(args.bundle, tz=args.tz, rebuild=args.rebuild, progress=progress)
    if progress is not None:
        sys.stderr.write("\r\x1b[2K")
    try:
        known = {w.pod for w in ct.wheres} | {w.label for w in ct.wheres}
        known |= {f"{w.namespace}/{w.pod}" for w in ct.wheres}
        for pod in args.pod:
            if pod not in known:
                names = ", ".join(sorted({w.label for w in ct.wheres}))
                raise ExuviaError(f"--pod {pod!r}: no such pod in the case (it has {names})")
        if args.output:
            fmt = args.format or _EXT_FORMATS.get(Path(args.output).suffix.lower(), "jsonl")
            if fmt == "bodyfile" and (args.with_notes or args.with_findings):
                raise ExuviaError(
                    "a bodyfile has no place for findings (nor notes); export jsonl, csv or "
                    "l2tcsv with --with-findings or --with-notes"
                )
            notes = case_notes(ct, args.with_notes, args.with_findings)
            try:
                n = write_case_export(ct, q, fmt, args.output, pods=args.pod, limit=args.limit,
                                      notes=notes)  # fmt: skip
            except ValueError as err:
                raise ExuviaError(str(err)) from None
            what = "file entries" if fmt == "bodyfile" else "events"
            if not args.quiet:
                print(f"wrote {n} {what} ({fmt}) to {args.output}", file=sys.stderr)
        else:
            width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 0
            pw = max((len(w.pod) + len(w.container) + 1 for w in ct.wheres), default=10)
            for ce in ct.iter_events(q, pods=args.pod, limit=args.limit):
                print(format_case_event(ce, width, pw))
        if not args.quiet:
            for line in case_summary(ct, q):
                print(line, file=sys.stderr)
    finally:
        ct.close()
    return 0
