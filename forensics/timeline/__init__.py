"""The super-timeline of a bundle: every artifact's times in one queryable store.

    tl = open_timeline("capture.exv")           # built once, then cached
    tl.events(Query(sources=("log",), text="implant"), limit=50)
    tl.histogram(buckets=60)
    write_export(tl, Query(), "bodyfile", "capture.body")

Extractors (fs, proc, logs, runtime) turn records into rows, the store
(:mod:`forensics.timeline.store`) derives events from them and indexes them,
and :class:`~forensics.timeline.query.Timeline` answers queries.
"""

from __future__ import annotations

from pathlib import Path

from forensics.timeline.bundleio import read_record
from forensics.timeline.cache import open_timeline
from forensics.timeline.events import Event, Flag, Kind, Ref, Source
from forensics.timeline.export import FORMATS, write_export
from forensics.timeline.query import Query, Timeline
from forensics.timeline.text import one_line
from forensics.timeutil import iso_ns


def raw_record(bundle: str | Path, ev: Event, max_bytes: int = 1 << 20) -> bytes:
    """The artifact record an event came from, as the bundle holds it (for a UI)."""
    return read_record(bundle, ev.ref.member, ev.ref.line, max_bytes)


def format_event(ev: Event, width: int = 0) -> str:
    """One line for a terminal: time, MACB or kind, source, message (control chars escaped)."""
    what = ev.macb if ev.macb else ev.kind
    marks = ""
    if ev.flags & (Flag.TIME_INFERRED | Flag.TIME_INVALID):
        marks = " ~"
    line = f"{iso_ns(ev.ts)}  {what:<17} {ev.source:<7} {one_line(ev.message)}{marks}"
    return line[: width - 1] + "…" if width and len(line) > width else line


def first_lines(
    bundle: str | Path,
    n: int = 20,
    *,
    width: int = 160,
    tz: str = "UTC",
    from_container_start: bool = False,
) -> list[str]:
    """The first ``n`` lines of the bundle's timeline, formatted for a terminal.

    With ``from_container_start``, the timeline begins when the container was
    created (or started): what happened in it, not the image's old file times.
    """
    with open_timeline(bundle, tz=tz) as tl:
        q = Query()
        if from_container_start:
            starts = tl.events(Query(kinds=("container.created", "container.started")), limit=1)
            if starts:
                q = Query(start=starts[0].ts)
        return [format_event(ev, width) for ev in tl.events(q, limit=n)]


__all__ = [
    "FORMATS",
    "Event",
    "Flag",
    "Kind",
    "Query",
    "Ref",
    "Source",
    "Timeline",
    "first_lines",
    "format_event",
    "open_timeline",
    "raw_record",
    "write_export",
]
