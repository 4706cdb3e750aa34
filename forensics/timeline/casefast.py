"""A case export's fast path: the bundles' stored rows merged, lines written from them.

The single-bundle exports (:mod:`forensics.timeline.exportfast`) write a filesystem
event straight from its stored row; a case export does the same on the k-way merge
of its bundles' rows, and adds where the event was captured as a pre-built tail of
the line (the namespace, pod, container, node and bundle are the same for every
event of a bundle, so they are formatted once per bundle, not once per event).

The merge is a heap of one entry per bundle, ordered by (time, the bundle's place
in the case); a bundle's rows come in (time, event id) order, so the case's order
is (time, bundle, event id), the same as :meth:`CaseTimeline.iter_events`.

A stored filesystem row's attributes are :func:`~forensics.timeline.fs.display_fields`,
a fixed set of keys none of which is a where field, so the tail never collides
with an attribute (tests/unit/test_case_timeline.py checks that). Every other
event goes through ``slow``: the general code in :mod:`forensics.timeline.case`,
which gives the same fields and values.
"""

# ruff: noqa: S608 - SQL text is built only from exportsql's constants and the store's
# query builder; every value from a bundle is a column of the store or a bound parameter.

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from heapq import heapify, heappop, heapreplace
from itertools import chain, islice
from typing import IO, Any

from forensics.timeline import exportsql as sql_x
from forensics.timeline.exportfast import _fast, _Memo, compact, csv_fields, jsonl_line, l2t_fields
from forensics.timeline.query import Query, Timeline
from forensics.timeline.text import one_line

_FS = 1
_END: Any = object()
#: lines joined into one write
BATCH = 512
#: rows read from one store at a time
CHUNK = 2048
Row = tuple[Any, ...]
#: (index of the bundle among ``parts``, its stored row)
Merged = Iterable[tuple[int, Row]]


def _chunked(rows: Iterator[Row], size: int = CHUNK) -> Iterator[Row]:
    """``rows``, read ``size`` at a time: one store's cursor steps through a run of rows
    before the next store's does (stepping five cursors in turn, row by row, cost
    half as much CPU again as reading them one after the other: SQLite's pages and
    the CPU's caches switch at every row)."""
    return chain.from_iterable(iter(lambda: list(islice(rows, size)), []))


def _merge(sources: Sequence[Iterator[Any]], key: int) -> Iterator[tuple[int, Any]]:
    """(source index, row) of every row of ``sources`` (each in order), ordered by
    (row[key], source index); the rest of the last source left is yielded as is."""
    heap: list[list[Any]] = []
    for k, it in enumerate(sources):
        row = next(it, _END)
        if row is not _END:
            heap.append([row[key], k, row, it])
    heapify(heap)
    while len(heap) > 1:
        s = heap[0]
        yield s[1], s[2]
        row = next(s[3], _END)
        if row is _END:
            heappop(heap)
            continue
        s[0] = row[key]
        s[2] = row
        heapreplace(heap, s)
    if heap:  # the last bundle left: no more merging
        _ts, k, row, it = heap[0]
        yield k, row
        for row in it:
            yield k, row


def merged_rows(parts: Sequence[Timeline], q: Query) -> Iterator[tuple[int, Row]]:
    """Every selected row of every timeline in ``parts``, in (time, part, event id) order."""
    return _merge([_chunked(tl.iter_rows(q)) for tl in parts], 1)


def jsonl(
    parts: Sequence[Timeline],
    wheres: Sequence[Mapping[str, Any]],
    merged: Merged,
    f: IO[str],
    slow: Callable[[int, Row], str],
) -> int:
    """Timesketch JSONL, each line ending with its bundle's where fields."""
    memos = [_Memo(tl) for tl in parts]
    tails = ["," + compact(dict(w))[1:] + "\n" for w in wheres]
    lines: list[str] = []
    write = lines.append  # written BATCH lines at a time: one write call, not one per line
    n = 0
    for k, row in merged:
        n += 1
        if len(lines) >= BATCH:
            f.write("".join(lines))
            lines.clear()
        if not _fast(row):
            write(slow(k, row))
            continue
        write(jsonl_line(memos[k], row, tails[k]))
    f.write("".join(lines))
    return n


def csv_rows(
    parts: Sequence[Timeline],
    wheres: Sequence[Mapping[str, Any]],
    merged: Merged,
    f: IO[str],
    slow: Callable[[int, Row], tuple[Any, ...]],
) -> int:
    """The case CSV's rows (after its header): the bundle's columns, then the where cells."""
    memos = [_Memo(tl) for tl in parts]
    cells = [tuple(one_line(str(v or "")) for v in w.values()) for w in wheres]
    writerow = csv.writer(f, lineterminator="\n").writerow
    n = 0
    for k, row in merged:
        n += 1
        if not _fast(row):
            writerow(slow(k, row))
            continue
        writerow((*csv_fields(memos[k], row), *cells[k]))
    return n


def l2t_rows(
    parts: Sequence[Timeline],
    wheres: Sequence[tuple[str, str]],
    merged: Merged,
    f: IO[str],
    slow: Callable[[int, Row], tuple[str, ...]],
) -> int:
    """plaso l2tcsv rows (after its header); ``wheres``: per bundle, (host, where
    text): the host column is the bundle's label, the where text ends ``extra``."""
    memos = [_Memo(tl) for tl in parts]
    writerow = csv.writer(f, lineterminator="\n").writerow
    n = 0
    for k, row in merged:
        n += 1
        if not _fast(row):
            writerow(slow(k, row))
            continue
        host, where = wheres[k]
        writerow(l2t_fields(memos[k], row, host, where))
    return n


# -- lines rendered by SQLite (forensics/timeline/exportsql.py), merged --------------
SqlRow = tuple[int, int, str | None, str | None]  # ts, event id, line or NULL, extra


def _sql_rows(tl: Timeline, q: Query, line: str, extra: str = "NULL", **params: Any) -> Any:
    """(ts, id, line, extra) of each selected event in timeline order, ``line`` NULL
    where the SQL does not render the event (exportsql's own test, ``_FAST``)."""
    sql_x._tables(tl)
    s = tl._sql(q)
    fast_test = sql_x._FAST
    sql = (
        f"SELECT e.ts, e.id, CASE WHEN {fast_test} THEN {line} END,"
        f" CASE WHEN {fast_test} THEN {extra} END FROM {tl._from(s)}"
        f" JOIN records r ON r.id = e.id >> 2{sql_x._JOINS}{tl._where(s)} ORDER BY e.ts, e.id"
    )
    s.params.update(params)
    cur = tl.con.execute(sql, s.params)
    return chain.from_iterable(iter(lambda: cur.fetchmany(CHUNK), []))


def merged_sql(
    parts: Sequence[Timeline], q: Query, line: str, extra: str = "NULL",
    params: Sequence[Mapping[str, Any]] | None = None,
) -> Iterator[tuple[int, SqlRow]]:  # fmt: skip
    """:func:`merged_rows` of the SQL-rendered lines."""
    return _merge(
        [
            _sql_rows(tl, q, line, extra, **(params[k] if params else {}))
            for k, tl in enumerate(parts)
        ],
        0,
    )


def write_sql_lines(
    parts: Sequence[Timeline],
    merged: Iterable[tuple[int, SqlRow]],
    f: IO[str],
    finish: Callable[[int, str, str | None], str | None] | None,
    python: Callable[[int, Row], str],
    *,
    printable: bool = False,
) -> int:
    """Write each merged line as ``finish(bundle, line, extra)`` makes it (None: not
    exactly renderable, so Python's), else the Python line of the event's row;
    ``finish`` None: the SQL's line is the whole line, without its newline (with
    ``printable``, a line that is not printable is Python's, as in a CSV)."""
    out: list[str] = []
    n = 0
    if finish is None:
        return _write_whole(parts, merged, f, python, printable)
    for k, (_ts, eid, line, extra) in merged:
        n += 1
        if len(out) >= BATCH:
            f.write("".join(out))
            out.clear()
        done = finish(k, line, extra) if line is not None else None
        out.append(done if done is not None else python(k, sql_x._row(parts[k], eid)))
    f.write("".join(out))
    return n


def _write_whole(
    parts: Sequence[Timeline],
    merged: Iterable[tuple[int, SqlRow]],
    f: IO[str],
    python: Callable[[int, Row], str],
    printable: bool,
) -> int:
    """:func:`write_sql_lines` of lines SQLite rendered whole: BATCH at a time, each
    batch checked at once (as exportsql._write does for a bundle alone)."""
    it = iter(merged)
    write = f.write
    n = 0
    while True:
        block = list(islice(it, BATCH))
        if not block:
            return n
        n += len(block)
        lines = [r[2] for _k, r in block]
        if None not in lines:
            text = "\n".join(lines)  # type: ignore[arg-type]
            if not printable or text.isprintable():
                write(text + "\n")
                continue
        for line, (k, r) in zip(lines, block, strict=True):
            if line is None or (printable and not line.isprintable()):
                write(python(k, sql_x._row(parts[k], r[1])))
            else:
                write(line + "\n")


__all__ = ["csv_rows", "jsonl", "l2t_rows", "merged_rows", "merged_sql", "write_sql_lines"]
