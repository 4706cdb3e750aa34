"""`exuvia timeline BUNDLE`: the super-timeline, listed or exported."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from forensics.errors import ExuviaError
from forensics.notes import NotesFile
from forensics.timeline import FORMATS, Query, format_event, open_timeline, write_export
from forensics.timeline.events import KIND_NAMES, SOURCE_NAMES
from forensics.timeline.logtime import parse_user_time, resolve_tz
from forensics.timeline.query import Timeline
from forensics.timeline.text import one_line
from tui.commands.options import tz_arg
from tui.commands.store_opts import add_store_options, cached_local, path_or_s3

#: counters that mean "something could not be parsed or used"
UNPARSED = (
    "record_malformed",
    "record_too_long",
    "time_invalid",
    "no_time",
    "log_time_invalid",
    "log_envelope_malformed",
    "member_too_big",
)
_EXT_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".l2tcsv": "l2tcsv",
    ".body": "bodyfile",
    ".bodyfile": "bodyfile",
}


def _list_arg(choices: dict[str, Any], what: str) -> Any:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        for item in items:
            if item not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {item!r}; use one of: {', '.join(choices)}"
                )
        return items

    return parse


def register(sub: Any) -> None:
    p = sub.add_parser(
        "timeline",
        help="the bundle's super-timeline: list it or export it (Timesketch, plaso, TSK)",
        description="Build (once; it is cached beside the bundle) and query the timeline of "
        "every artifact of a bundle: file MACB times, process starts, log lines, container "
        "lifecycle and the capture's own actions. Without -o, prints events on stdout; "
        "with -o, writes an export: jsonl (Timesketch), csv, l2tcsv (plaso's 17 columns) or "
        "bodyfile (TSK 3.x, for mactime -b). A summary, with the count of what could not be "
        "parsed, goes to stderr.",
    )
    p.add_argument("bundle", type=path_or_s3, metavar="BUNDLE|s3://…")
    add_store_options(p, lock=False)
    p.add_argument("-o", "--output", metavar="FILE", help="write an export to FILE ('-' = stdout)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="export format (default: from the -o extension, else jsonl)",
    )
    p.add_argument("--from", dest="start", metavar="T", help="from this time (inclusive)")
    p.add_argument(
        "--to", dest="end", metavar="T", help="up to this time (exclusive; a date: its end)"
    )
    p.add_argument(
        "--source",
        action="extend",
        type=_list_arg(SOURCE_NAMES, "source"),
        default=[],
        metavar="S",
        help="only these sources (repeat or comma-separate): " + ", ".join(SOURCE_NAMES),
    )
    p.add_argument(
        "--kind",
        action="extend",
        type=_list_arg(KIND_NAMES, "kind"),
        default=[],
        metavar="K",
        help="only these kinds: " + ", ".join(KIND_NAMES),
    )
    p.add_argument(
        "--entity", metavar="E", help="only this entity (a path, pid:N, container:NAME); "
        "a trailing * matches a prefix"
    )  # fmt: skip
    p.add_argument(
        "--search", metavar="TEXT", help="full-text search in messages and entities "
        "(every word must appear; word* matches a prefix)"
    )  # fmt: skip
    p.add_argument(
        "--tz",
        type=tz_arg,
        default="UTC",
        help="time zone of log times written without one, and of --from/--to (default UTC)",
    )
    p.add_argument(
        "-n", "--limit", type=int, metavar="N", help="at most N events (or bodyfile entries)"
    )
    p.add_argument(
        "--with-notes",
        action="store_true",
        help="include the examiner's bookmarks, tags and notes (from the notes file beside "
        "the bundle, written by `exuvia replay`) in the export",
    )
    p.add_argument(
        "--with-findings",
        action="store_true",
        help="tag the events that are a finding's evidence (exuvia findings): tags "
        "exuvia-finding, finding:RULE and severity:LEVEL and the finding's title as a note "
        "(Timesketch tag/comment in jsonl, the tags/note columns of csv, plaso's notes column "
        "of l2tcsv; a bodyfile has no place for them)",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached timeline")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    p.set_defaults(handler=run)


def build_query(args: argparse.Namespace) -> Query:
    tz = resolve_tz(args.tz)
    try:
        start = parse_user_time(args.start, tz) if args.start else None
        end = parse_user_time(args.end, tz, end_of_day=True) if args.end else None
    except ValueError as err:
        raise ExuviaError(f"--from/--to: {err}") from None
    return Query(
        start=start,
        end=end,
        sources=tuple(args.source),
        kinds=tuple(args.kind),
        entity=args.entity,
        text=args.search,
    )


def summary(tl: Timeline) -> list[str]:
    """What the build found and what it could not use, for stderr."""
    m = tl.meta
    counts: dict[str, int] = m.get("counts") or {}
    by = m.get("by_source") or {}
    lines = [
        f"timeline: {m.get('events', 0)} events ("
        + ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
        + f"); times without a zone read as {m.get('tz')}; store {tl.path}"
    ]
    bad = {k: counts[k] for k in UNPARSED if counts.get(k)}
    total_bad = sum(bad.values())
    detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in bad.items())
    lines.append(f"could not be parsed: {total_bad}" + (f" ({detail})" if detail else ""))
    placed = {
        "receive time": counts.get("log_lines_receive_time", 0),
        "previous line": counts.get("log_lines_previous_time", 0),
        "next line": counts.get("log_lines_next_time", 0),
        "log or capture time": counts.get("log_lines_fallback_time", 0),
    }
    untimed = sum(placed.values())
    if untimed:
        lines.append(
            f"log lines without a time of their own (kept, flagged time_inferred): {untimed} "
            "(placed by " + ", ".join(f"{k} {v}" for k, v in placed.items() if v) + ")"
        )
    for key, label in (
        ("log_lines_truncated", "log lines over 1 MiB, cut"),
        ("log_lines_invalid_utf8", "log lines with invalid UTF-8"),
        ("record_invalid_utf8", "records with invalid UTF-8 (kept, bytes replaced)"),
    ):
        if counts.get(key):
            lines.append(f"{label}: {counts[key]}")
    lines += [f"warning: {one_line(w)}" for w in m.get("warnings") or []]
    cut = m.get("cut_off")
    if isinstance(cut, dict):  # a .partial: what it was read up to, first
        lines.insert(0, one_line(str(cut.get("banner"))))
    return lines


def _progress(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None

    def note(msg: str) -> None:
        sys.stderr.write(f"\r\x1b[2K{msg} …")
        sys.stderr.flush()

    return note


def run(args: argparse.Namespace) -> int:
    args.bundle = cached_local(args)  # s3://: a kept copy under the exuvia cache
    q = build_query(args)
    progress = _progress(args.quiet)
    tl = open_timeline(args.bundle, tz=args.tz, rebuild=args.rebuild, progress=progress)
    if progress is not None:
        sys.stderr.write("\r\x1b[2K")
    try:
        if args.output:
            fmt = args.format or _EXT_FORMATS.get(Path(args.output).suffix.lower(), "jsonl")
            notes: Any = NotesFile.for_bundle(args.bundle).notes if args.with_notes else None
            if args.with_findings:
                from forensics.findings import analyze_bundle  # noqa: PLC0415 - when asked
                from forensics.findings.tags import FindingTags  # noqa: PLC0415

                notes = FindingTags(analyze_bundle(args.bundle).findings, notes)
            try:
                n = write_export(tl, q, fmt, args.output, limit=args.limit, notes=notes)
            except ValueError as err:
                if args.with_findings and fmt == "bodyfile":
                    raise ExuviaError(
                        "a bodyfile has no place for findings (nor notes); export jsonl, "
                        "csv or l2tcsv with --with-findings"
                    ) from None
                raise ExuviaError(str(err)) from None
            what = "file entries" if fmt == "bodyfile" else "events"
            if not args.quiet:
                print(f"wrote {n} {what} ({fmt}) to {args.output}", file=sys.stderr)
        else:
            width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 0
            for ev in tl.iter_events(q, limit=args.limit):
                print(format_event(ev, width))
        if not args.quiet:
            for line in summary(tl):
                print(line, file=sys.stderr)
        elif isinstance(tl.meta.get("cut_off"), dict):  # never hidden, even with -q
            print(one_line(str(tl.meta["cut_off"].get("banner"))), file=sys.stderr)
    finally:
        tl.close()
    return 0
