"""A case's bundles merged a block at a time: no merge step per event in Python.

Each bundle's store renders its selected events' finished lines with the same
SQL as the bundle's own export (:mod:`forensics.timeline.exportsql`), the
bundle's pre-formatted pieces (the where fields) bound as parameters, and
returns them in its time index's order as :data:`Merged` rows (time, the
bundle's place in the case, event id, line, extra), read :data:`CHUNK` rows at a
time. The merge works on blocks of those rows: every buffered row earlier than
the lowest "last time read" of the bundles still being read cannot be preceded
by a row not read yet, so those rows of every bundle are cut off their buffers
(a bisection), put together and sorted (``list.sort``: runs already in order,
merged by the C code with galloping); the bundle whose buffer set the bound is
read on. Rows compare as tuples on (time, bundle, event id), which no two rows
share: that is the case order, ties in time listed bundle by bundle.

Measured against the alternatives (docs/performance.md, "A case's merged
timeline"): a heap step per event in Python cost about half a microsecond per
event; one compound ``SELECT … UNION ALL … ORDER BY ts, bundle, id`` over the
stores ATTACHed to one connection (merged by SQLite's co-routines, no sort) cost
more again, as its arms step the five stores in turn, row by row (their B-tree
pages and the CPU's caches switching at every row), where here each store is
read a chunk at a time.
"""

# ruff: noqa: S608 - SQL text is built only from exportsql's constants and the store's
# query builder; every value from a bundle is a column of the store or a bound parameter.

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from typing import Any

from forensics.timeline import exportsql as sql_x
from forensics.timeline.query import Query, Timeline

#: rows read from one store at a time
CHUNK = 2048
#: a part of the case: the events before ("<") or from (">=") a time
Split = tuple[str, int] | None
#: (ts, bundle, event id, line or NULL, extra or NULL): a merged row
Merged = tuple[int, int, int, Any, Any]
_TS = itemgetter(0)


def select_sql(  # noqa: PLR0917
    tl: Timeline,
    k: int,
    q: Query,
    line: str,
    extra: str = "NULL",
    params: Mapping[str, Any] | None = None,
    limit: int | None = None,
    split: Split = None,
    joins: str = "",
) -> tuple[str, dict[str, Any]]:
    """The SELECT (and its parameters) of bundle ``k``'s selected events (of ``split``'s
    part) as :data:`Merged` rows in its time order; ``line`` and ``extra`` are SQL over
    ``e``, ``r``, ``k``, ``fl`` and ``m`` as in exportsql (and the tables of ``joins``),
    ``params`` the values they bind for this bundle. The export's temporary tables are
    made on ``tl``'s connection."""
    sql_x._tables(tl)
    s = tl._sql(q)
    if split is not None:
        s.where.append(f"e.ts {'<' if split[0] == '<' else '>='} :split_ts")
        s.params["split_ts"] = split[1]
    fast = sql_x._FAST
    # no extra column (jsonl, csv): NULL, not the test of every row once more
    last = "NULL" if extra == "NULL" else f"CASE WHEN {fast} THEN {extra} END"
    sql = (
        f"SELECT e.ts, {int(k)}, e.id, CASE WHEN {fast} THEN {line} END, {last}"
        f" FROM {tl._from(s)}"
        f" JOIN records r ON r.id = e.id >> 2{sql_x._JOINS}{joins}{tl._where(s)}"
        " ORDER BY e.ts, e.id"
    )
    if limit is not None:  # the case's first N events are among each bundle's first N
        sql += " LIMIT :limit"
        s.params["limit"] = limit
    s.params.update(params or {})
    return sql, s.params


def blocks(cursors: Sequence[sqlite3.Cursor], chunk: int | None = None) -> Iterator[list[Merged]]:
    """The rows of ``cursors`` (each in (time, event id) order, bundle ``k``'s rows
    holding ``k``) in case order, a sorted block at a time; ``chunk`` rows read from
    a cursor at a time (default :data:`CHUNK`; less for more than 16 bundles, so that
    about 16 × CHUNK rows are held at most, some 20 MB of JSON lines)."""
    chunk = chunk or max(1, CHUNK * 16 // max(16, len(cursors)))
    bufs: list[list[Merged]] = []
    reading: list[int] = []  # the bundles whose cursor may have more rows
    for k, cur in enumerate(cursors):
        rows = cur.fetchmany(chunk)
        bufs.append(rows)
        if len(rows) == chunk:
            reading.append(k)
    while reading:
        # no row still unread comes before ``bound``: the earliest of the last read times
        bound = min(bufs[k][-1][0] for k in reading)
        out: list[Merged] = []
        for k, rows in enumerate(bufs):
            cut = bisect_left(rows, bound, key=_TS)
            if cut:
                out += rows[:cut]
                bufs[k] = rows[cut:]
        if out:
            out.sort()
            yield out
        for k in [k for k in reading if bufs[k][-1][0] == bound]:
            more = cursors[k].fetchmany(chunk)
            bufs[k] += more
            if len(more) < chunk:
                reading.remove(k)
    rest = list(chain.from_iterable(bufs))
    if rest:
        rest.sort()
        yield rest


class _Rows:
    """The merged blocks behind a cursor's ``fetchmany`` (a block of any size), at
    most ``limit`` rows."""

    def __init__(self, it: Iterator[list[Merged]], limit: int | None) -> None:
        self._it = it
        self._left = limit

    def fetchmany(self, _size: int) -> list[Merged]:
        block = next(self._it, [])
        if self._left is not None:
            block = block[: self._left]
            self._left -= len(block)
        return block


@contextmanager
def merged(  # noqa: PLR0917
    tls: Sequence[Timeline],
    q: Query,
    line: str,
    extra: str = "NULL",
    params: Sequence[Mapping[str, Any]] | None = None,
    limit: int | None = None,
    split: Split = None,
    pick: Callable[[Timeline], tuple[str, str, str]] | None = None,
) -> Iterator[_Rows]:
    """Every selected event of ``tls`` (a case's bundles, in its order) as :data:`Merged`
    rows in case order (time, bundle, event id), from something with ``fetchmany``;
    ``params``: per bundle, the values ``line`` and ``extra`` bind (as ``:tail``);
    ``pick``: per bundle's store, its own (line, extra, joins) instead."""
    cursors = []
    for k, tl in enumerate(tls):
        own_line, own_extra, joins = (line, extra, "") if pick is None else pick(tl)
        sql, bound = select_sql(
            tl, k, q, own_line, own_extra, params[k] if params else None, limit, split, joins
        )
        cursors.append(tl.con.execute(sql, bound))
    try:
        yield _Rows(blocks(cursors), limit)
    finally:
        for cur in cursors:
            cur.close()


__all__ = ["CHUNK", "Merged", "Split", "blocks", "merged", "select_sql"]
