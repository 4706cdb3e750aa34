"""The super-timeline of a case: every captured bundle's timeline, merged.

Each bundle keeps its own store, built and cached by the single-bundle
machinery (:func:`~forensics.timeline.cache.open_timeline`: built once per
bundle, reused by replay and the next command); the case merges them at query
time, a k-way merge of streams that are already in time order, so the cost per
event is the bundle's own plus a heap step. Every event carries where it was
captured: the bundle's namespace, pod, container and node from case.json.

    with open_case_timeline("case-dir") as ct:
        for ce in ct.iter_events(Query(text="implant"), pods=("web-b",)):
            ce.where.label, ce.event.ts, ce.event.message
        ct.histograms(buckets=60)            # one per bundle, on the same buckets
        write_case_export(ct, Query(), "jsonl", "case.jsonl")

Ordering: time, then the bundle's place in case.json, then the event's id in
its bundle; the same case always lists the same events in the same order.
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from forensics.case import CaseBundle, load_case
from forensics.errors import BundleError, ExuviaError
from forensics.timeline import casefast as fast
from forensics.timeline import casemerge
from forensics.timeline import exportsql as sql_x
from forensics.timeline.cache import open_timeline
from forensics.timeline.casemerge import Split
from forensics.timeline.events import Event, event_key
from forensics.timeline.export import (
    CSV_COLUMNS,
    FORMATS,
    L2T_COLUMNS,
    NOTE_COLUMNS,
    NoteMap,
    bodyfile_line,
    csv_row,
    l2t_row,
    prepare_l2t,
    timesketch_record,
    write_atomically,
)
from forensics.timeline.export import _jsonl_line as bundle_jsonl_line
from forensics.timeline.exportfast import compact
from forensics.timeline.exportpart import PARALLEL_MIN, ChildPart, write_in_two
from forensics.timeline.query import MMAP_SIZE, Histogram, Query, Timeline, nice_width
from forensics.timeline.text import one_line

#: the fields every case export adds to an event
WHERE_FIELDS = ("namespace", "pod", "container", "node", "bundle")
#: a case of more bundles is exported by one process (the second's argument, a JSON
#: list of the bundles' stores and where fields, would near the kernel's 128 KiB)
SPLIT_MAX_BUNDLES = 200

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Where:
    """Which captured container an event comes from."""

    index: int  # the bundle's place among the case's bundles
    namespace: str
    pod: str
    container: str
    node: str | None
    file: str

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.pod}/{self.container}"

    def fields(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "pod": self.pod, "container": self.container,
                "node": self.node, "bundle": self.file}  # fmt: skip

    def matches(self, names: Iterable[str]) -> bool:
        """``names`` holds this pod's name, ``namespace/pod`` or its label."""
        mine = {self.pod, f"{self.namespace}/{self.pod}", self.label}
        return any(n in mine for n in names)


@dataclass(frozen=True, slots=True)
class CaseEvent:
    where: Where
    event: Event


@dataclass
class CaseTimeline:
    """The opened timelines of a case's captured bundles."""

    case_id: str
    path: Path
    parts: list[tuple[Where, Timeline]]
    #: bundles whose timeline could not be opened: label -> why (shown, never silent)
    skipped: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for _w, tl in self.parts:
            tl.close()

    def __enter__(self) -> CaseTimeline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def wheres(self) -> list[Where]:
        return [w for w, _tl in self.parts]

    def timeline_of(self, label: str) -> Timeline | None:
        return next((tl for w, tl in self.parts if w.label == label), None)

    def _selected(self, pods: Iterable[str] | None) -> list[tuple[Where, Timeline]]:
        names = list(pods or ())
        return [(w, tl) for w, tl in self.parts if not names or w.matches(names)]

    def iter_events(
        self,
        q: Query | None = None,
        *,
        pods: Iterable[str] | None = None,
        limit: int | None = None,
        after: tuple[int, int, int] | None = None,
    ) -> Iterator[CaseEvent]:
        """Selected events of every bundle (or of ``pods``) in case order.
        ``after`` = (ts, bundle index, event id) of the last event of the previous page."""
        q = q or Query()

        def stream(w: Where, tl: Timeline) -> Iterator[tuple[int, int, int, CaseEvent]]:
            start: tuple[int, int] | None = None
            if after is not None:  # this bundle's events after the key in case order
                if w.index == after[1]:
                    start = (after[0], after[2])
                else:  # at the same time, a later bundle's come after, an earlier's before
                    start = (after[0], -1 if w.index > after[1] else 1 << 62)
            for ev in tl.iter_events(q, after=start):
                yield ev.ts, w.index, ev.id, CaseEvent(w, ev)

        merged = heapq.merge(*(stream(w, tl) for w, tl in self._selected(pods)))
        for _ts, _i, _id, ce in itertools.islice(merged, limit):
            yield ce

    def events(self, q: Query | None = None, **kw: Any) -> list[CaseEvent]:
        return list(self.iter_events(q, **kw))

    def count(self, q: Query | None = None, *, pods: Iterable[str] | None = None) -> int:
        return sum(tl.count(q) for _w, tl in self._selected(pods))

    def counts(self, q: Query | None = None) -> dict[str, int]:
        """Selected events per bundle (label -> count)."""
        return {w.label: tl.count(q) for w, tl in self.parts}

    def span(self) -> tuple[int, int] | None:
        """The first and last event time over every bundle."""
        lows = [tl.meta.get("time_min") for _w, tl in self.parts]
        highs = [tl.meta.get("time_max") for _w, tl in self.parts]
        lo = [x for x in lows if isinstance(x, int)]
        hi = [x for x in highs if isinstance(x, int)]
        return (min(lo), max(hi)) if lo and hi else None

    def histograms(
        self, q: Query | None = None, *, buckets: int = 60, pods: Iterable[str] | None = None
    ) -> tuple[int, dict[str, Histogram]]:
        """One histogram per bundle over the same buckets: (width, label -> Histogram)."""
        q = q or Query()
        span = self.span()
        lo = q.start if q.start is not None else span[0] if span else None
        hi = q.end if q.end is not None else span[1] + 1 if span else None
        if lo is None or hi is None or hi <= lo:
            return 1, {w.label: Histogram(1, []) for w, _tl in self._selected(pods)}
        width = nice_width((hi - lo) / max(1, buckets))
        origin = (lo // width) * width
        aligned = Query(start=origin, end=hi, sources=q.sources, kinds=q.kinds,
                        entity=q.entity, text=q.text, flags=q.flags)  # fmt: skip
        return width, {
            w.label: tl.histogram(aligned, width_ns=width) for w, tl in self._selected(pods)
        }

    def histogram(
        self, q: Query | None = None, *, buckets: int = 60, pods: Iterable[str] | None = None
    ) -> Histogram:
        """The whole case's counts per bucket (the per-bundle histograms added up)."""
        width, per = self.histograms(q, buckets=buckets, pods=pods)
        total: dict[int, int] = {}
        for h in per.values():
            for start, n in h.bins:
                total[start] = total.get(start, 0) + n
        return Histogram(width, sorted(total.items()))


def _where(i: int, b: CaseBundle, pod_node: str | None) -> Where:
    return Where(i, b.namespace, b.pod, b.container, b.node or pod_node, b.file or "")


def open_case_timeline(
    path: str | Path,
    *,
    tz: str = "UTC",
    rebuild: bool = False,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> CaseTimeline:
    """Open (building what is not cached yet) the timeline of every captured bundle
    of the case at ``path``. BundleError when it is not a case or none of its
    bundles has a readable timeline; a bundle that cannot be read is skipped
    and named in ``skipped``."""
    case = load_case(path)
    note = progress or (lambda _m: None)
    ct = CaseTimeline(case.case_id, case.path, [])
    for i, b in enumerate(case.bundles):
        if not b.captured or b.path is None:
            ct.skipped[b.label] = f"no bundle ({b.status}{': ' + b.reason if b.reason else ''})"
            continue
        note(f"timeline of {b.label}")
        try:
            tl = open_timeline(b.path, tz=tz, rebuild=rebuild, cache_dir=cache_dir)
        except ExuviaError as err:
            ct.skipped[b.label] = str(err)
            continue
        pod = case.pod(b.namespace, b.pod)
        ct.parts.append((_where(i, b, pod.node if pod is not None else None), tl))
    if not ct.parts:
        why = "; ".join(f"{k}: {v}" for k, v in ct.skipped.items()) or "it lists no bundle"
        raise BundleError(f"case {case.case_id} has no readable bundle ({why})")
    return ct


# -- exports ----------------------------------------------------------------------
CASE_CSV_COLUMNS = (*CSV_COLUMNS, *WHERE_FIELDS)


def case_timesketch_record(ce: CaseEvent) -> dict[str, Any]:
    """A Timesketch JSONL record of the event, with its pod and container as fields."""
    rec = timesketch_record(ce.event)
    for k, v in ce.where.fields().items():
        if k in rec:  # an event attribute of that name keeps it under attr_
            rec[f"attr_{k}"] = rec[k]
        rec[k] = v
    return rec


#: bundle label -> its notes (the examiner's, or findings as tags: FindingTags)
CaseNotes = Mapping[str, NoteMap]


def _note(ce: CaseEvent, notes: CaseNotes | None) -> Any:
    per = notes.get(ce.where.label) if notes is not None else None
    return per.get(event_key(ce.event)) if per is not None else None


def _jsonl_line(ce: CaseEvent, notes: CaseNotes | None = None) -> str:
    rec = case_timesketch_record(ce)
    note = _note(ce, notes)
    if note is not None:  # Timesketch's own fields for labels and comments
        rec["tag"] = [*note.tags, *(["bookmark"] if note.bookmarked else [])]
        if note.text:
            rec["comment"] = [note.text]
    return compact(rec) + "\n"


def _jsonl(events: Iterable[CaseEvent], f: IO[str], notes: CaseNotes | None) -> int:
    n = 0
    for ce in events:
        f.write(_jsonl_line(ce, notes))
        n += 1
    return n


def _where_cells(where: Where) -> tuple[str, ...]:
    return tuple(one_line(str(v or "")) for v in where.fields().values())


def case_csv_row(ce: CaseEvent) -> tuple[Any, ...]:
    """:data:`CASE_CSV_COLUMNS`: the bundle export's cells, then where the event is from."""
    return (*csv_row(ce.event), *_where_cells(ce.where))


def _csv(events: Iterable[CaseEvent], f: IO[str], notes: CaseNotes | None) -> int:
    w = csv.writer(f, lineterminator="\n")
    w.writerow((*CASE_CSV_COLUMNS, *(NOTE_COLUMNS if notes is not None else ())))
    n = 0
    for ce in events:
        cells: tuple[Any, ...] = ()
        if notes is not None:
            note = _note(ce, notes)
            cells = (
                ("", "", "")
                if note is None
                else ("yes" if note.bookmarked else "", "|".join(note.tags), one_line(note.text))
            )
        w.writerow((*case_csv_row(ce), *cells))
        n += 1
    return n


def _where_text(where: Where) -> str:
    return "; ".join(f"{k}: {one_line(str(v or '-'))}" for k, v in where.fields().items())


def l2t_case_row(ce: CaseEvent, notes: CaseNotes | None = None) -> tuple[str, ...]:
    """plaso's 17 columns; ``host`` is the pod's label, and the pod, container and
    namespace are in ``extra`` as well; notes (tags) in plaso's notes column."""
    row = l2t_row(ce.event, ce.where.label)
    where = _where_text(ce.where)
    note = _note(ce, notes)
    if note is not None:
        parts = (["bookmarked"] if note.bookmarked else []) + [f"tag:{t}" for t in note.tags]
        if note.text:
            parts.append(f"note:{note.text}")
        text = one_line(" ".join(parts))
        row = (*row[:14], text if row[14] == "-" else f"{row[14]} {text}", *row[15:])
    return (*row[:16], f"{row[16]}; {where}" if row[16] else where)


def _l2tcsv(events: Iterable[CaseEvent], f: IO[str], notes: CaseNotes | None) -> int:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(L2T_COLUMNS)
    n = 0
    for ce in events:
        w.writerow(l2t_case_row(ce, notes))
        n += 1
    return n


def _bodyfile(ct: CaseTimeline, q: Query, pods: Iterable[str] | None, f: IO[str],
              limit: int | None) -> int:  # fmt: skip
    # TSK's convention for many file systems in one bodyfile (fls -m MOUNT): every
    # name is prefixed with where it was mounted, here namespace/pod/container
    n = 0
    for w, tl in ct._selected(pods):
        for rec in tl.file_records(q):
            if limit is not None and n >= limit:
                return n
            line = bodyfile_line(rec)
            md5, _, rest = line.partition("|")
            f.write(f"{md5}|{w.label}{rest}")
            n += 1
    return n


def write_case_export(
    ct: CaseTimeline,
    q: Query,
    fmt: str,
    out: str | Path,
    *,
    pods: Iterable[str] | None = None,
    limit: int | None = None,
    notes: CaseNotes | None = None,
) -> int:
    """Write the case's merged events in ``fmt`` to ``out`` ('-' = stdout); the count
    of lines written (events, or file entries for a bodyfile). ``notes``: per bundle
    label, as for :func:`~forensics.timeline.export.write_export`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if notes is not None and fmt == "bodyfile":
        raise ValueError("a bodyfile has no place for notes; export jsonl, csv or l2tcsv")
    chosen = list(pods or ())

    def body(f: IO[str]) -> int:
        if fmt == "bodyfile":
            return _bodyfile(ct, q, chosen, f, limit)
        if notes is not None:  # the general path, an event at a time
            events = ct.iter_events(q, pods=chosen, limit=limit)
            if fmt == "jsonl":
                return _jsonl(events, f, notes)
            if fmt == "csv":
                return _csv(events, f, notes)
            return _l2tcsv(events, f, notes)
        sel = ct._selected(chosen)
        at = _split_time(sel, q, limit, out)
        if at is None:
            return _fast_export(sel, q, fmt, f, limit)
        # a large whole-case export to a file: the events from ``at`` on by a second
        # process (as a bundle's own large export is written, export.write_export)
        parts = [[str(tl.path), *dataclasses.astuple(w)] for w, tl in sel]

        def child(part: Path) -> ChildPart:
            spec = {"fmt": fmt, "from_ts": at, "out": str(part), "parts": parts}
            return ChildPart("forensics.timeline.exportchild", ["--case", json.dumps(spec)], part)

        return write_in_two(f, out, child, lambda: _fast_export(sel, q, fmt, f, None, ("<", at)))

    if fmt == "l2tcsv" and notes is None:  # each bundle's l2tcsv record formats
        for _w, tl in ct._selected(chosen):
            prepare_l2t(tl, limit)
    # one pass over every store: SQLite's bounded page cache, not memory maps whose
    # pages would all count in the process's RSS (as write_export does)
    for _w, tl in ct.parts:
        tl.con.execute("PRAGMA mmap_size = 0")
    try:
        return write_atomically(out, body)
    finally:
        for _w, tl in ct.parts:
            tl.con.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")


def _split_time(
    sel: list[tuple[Where, Timeline]], q: Query, limit: int | None, out: str | Path
) -> int | None:
    """The time that cuts a large whole-case export to a file into two parts of about
    as many events (the median of the bundles' median times, weighted by their
    sizes: each a walk of half its time index), or None: one process writes it all."""
    if str(out) == "-" or limit is not None or q != Query():
        return None
    sizes = [tl.meta.get("events") for _w, tl in sel]
    if not all(isinstance(n, int) for n in sizes) or len(sel) > SPLIT_MAX_BUNDLES:
        return None
    total = sum(n for n in sizes if isinstance(n, int))
    if total < PARALLEL_MIN:
        return None
    medians = []
    for (_w, tl), n in zip(sel, sizes, strict=True):
        if not n:
            continue
        row = tl.con.execute(
            "SELECT ts FROM events ORDER BY ts LIMIT 1 OFFSET ?", (int(n) // 2,)
        ).fetchone()
        if row is None:
            return None
        medians.append((int(row[0]), int(n)))
    medians.sort()
    seen = 0
    for ts, n in medians:
        seen += n
        if 2 * seen >= total:
            return ts
    return None  # not reached: the weights add up to the whole


def write_part(spec: str) -> int:
    """Write the part of a large case export a second process writes (``python -m
    forensics.timeline.exportchild --case SPEC``); SPEC is JSON: ``fmt``, ``from_ts``
    (the events from that time on), ``out`` and ``parts`` (per bundle, its store and
    :class:`Where`). Returns the line count."""
    d = json.loads(spec)
    sel: list[tuple[Where, Timeline]] = []
    try:
        for store, *where in d["parts"]:
            tl = Timeline(store)
            sel.append((Where(*where), tl))
            tl.con.execute("PRAGMA mmap_size = 0")
        with open(d["out"], "w", encoding="utf-8", newline="", errors="surrogateescape") as f:
            return _fast_export(sel, Query(), d["fmt"], f, None, (">=", d["from_ts"]), header=False)
    finally:
        for _w, tl in sel:
            tl.close()


def _fast_export(  # noqa: PLR0917
    sel: list[tuple[Where, Timeline]],
    q: Query,
    fmt: str,
    f: IO[str],
    limit: int | None,
    split: Split = None,
    *,
    header: bool = True,
) -> int:
    """jsonl, csv or l2tcsv: the bundles' lines rendered by SQLite as for a bundle alone
    (forensics/timeline/exportsql.py), the where fields (formatted once per bundle)
    appended by the SQL, merged in case order a block at a time
    (forensics/timeline/casemerge.py); an event the SQL leaves is written by the Python fast path
    (forensics/timeline/casefast.py), itself checked against the event-at-a-time code
    above. ``split``: only the events before or from a time (no header with
    ``header`` False)."""
    wheres = [w for w, _tl in sel]
    tls = [tl for _w, tl in sel]

    def event(k: int, row: tuple[Any, ...]) -> CaseEvent:
        return CaseEvent(wheres[k], tls[k].event_of(row))

    def rows(line: str, extra: str = "NULL", params: Any = None) -> Any:
        return casemerge.merged(tls, q, line, extra, params, limit, split)

    w = csv.writer(f, lineterminator="\n")
    if fmt == "jsonl":
        fields = [wh.fields() for wh in wheres]
        tails = ["," + compact(x)[1:] + "\n" for x in fields]

        def slow_line(k: int, row: tuple[Any, ...]) -> str:
            ev = tls[k].event_of(row)
            if any(name in ev.attrs for name in WHERE_FIELDS):  # renamed attr_…: the long way
                return _jsonl_line(CaseEvent(wheres[k], ev))
            return bundle_jsonl_line(ev)[:-2] + tails[k]  # the bundle's line, where appended

        py_jsonl = fast.jsonl_lines(tls, fields, slow_line)

        # the where fields appended by SQLite: each line is written as it comes
        tail_params = [{"tail": t[:-1]} for t in tails]
        raw = getattr(f, "buffer", None)
        if raw is None:
            with rows(sql_x._JSONL_TAIL_LINE, params=tail_params) as merged:
                return fast.write_sql_lines(tls, merged, f, None, py_jsonl)
        f.flush()  # as bytes straight to the file, as a bundle's own export does
        with rows(f"CAST({sql_x._JSONL_TAIL_LINE} AS BLOB)", params=tail_params) as merged:
            return fast.write_sql_bytes(tls, merged, raw, py_jsonl)
    if fmt == "csv":
        if header:
            w.writerow(CASE_CSV_COLUMNS)
        cells = [wh.fields() for wh in wheres]
        csv_tails = ["," + _csv_line(_where_cells(wh)) + "\n" for wh in wheres]

        py_csv = fast.csv_lines(tls, cells, lambda k, r: case_csv_row(event(k, r)))

        # the where cells appended by SQLite; a line not printable is Python's
        tail_params = [{"tail": t[:-1]} for t in csv_tails]
        with rows(sql_x._CSV_LINE + " || :tail", params=tail_params) as merged:
            return fast.write_sql_lines(tls, merged, f, None, py_csv, printable=True)
    if header:
        w.writerow(L2T_COLUMNS)
    hosts = [(wh.label, _where_text(wh)) for wh in wheres]

    py_l2t = fast.l2t_lines(tls, hosts, lambda k, r: l2t_case_row(event(k, r)))

    def l2t_line(k: int, line: str, extra: str | None) -> str | None:
        if extra is None:
            return None
        full = line + sql_x._quoted(f"{extra}; {hosts[k][1]}")
        return full + "\n" if full.isprintable() else None

    params = [{"host": sql_x._csv_cell(label or "-")} for label, _t in hosts]
    # each bundle's record formats when its store has them (export.prepare_l2t)
    with casemerge.merged(
        tls, q, sql_x._L2T_LINE, sql_x._L2T_EXTRA, params, limit, split, sql_x.l2t_sql
    ) as merged:
        return fast.write_sql_lines(tls, merged, f, l2t_line, py_l2t)


def _csv_line(cells: tuple[str, ...]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


__all__ = [
    "CASE_CSV_COLUMNS",
    "WHERE_FIELDS",
    "CaseEvent",
    "CaseNotes",
    "CaseTimeline",
    "Where",
    "case_csv_row",
    "case_timesketch_record",
    "l2t_case_row",
    "open_case_timeline",
    "write_case_export",
]
