"""A case's bundles merged inside SQLite: their stores ATTACHed, one compound SELECT.

Each bundle's store is ATTACHed (read-only) to one connection of its own, and
one ``SELECT … UNION ALL SELECT … ORDER BY ts, bundle, id`` returns every
selected event of the case in case order, its finished line rendered by the
same SQL as a bundle's own export (:mod:`forensics.timeline.exportsql`) with the
bundle's pre-formatted pieces (the where fields) bound per arm. Each arm reads
its bundle's time index in order, so SQLite merges the arms with co-routines
(``MERGE (UNION ALL)`` in the query plan) and sorts nothing: the bundle's place
is a column of a one-row lookup (``temp.x_bundles``, searched by its key), which
the planner knows is constant within the arm; a literal constant would make it
sort each run of equal times ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY",
see tests/unit/test_case_merge.py).

SQLite attaches at most ``SQLITE_LIMIT_ATTACHED`` databases to a connection (10
as built here): a larger case is cut into groups of consecutive bundles, each
merged by its own connection, and the groups' streams are merged by a heap on
(time, group): the groups hold consecutive bundles, so that is the case order.
"""

# ruff: noqa: S608 - SQL text is built only from exportsql's constants and the store's
# query builder; every value from a bundle is a column of the store or a bound parameter.

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from heapq import heapify, heappop, heapreplace
from itertools import chain, islice
from typing import Any, cast

from forensics.timeline import exportsql as sql_x
from forensics.timeline.query import Query, Timeline, _ro_uri

#: rows read from one group's connection at a time (when there are several groups)
CHUNK = 2048
#: a part of the case: the events before ("<") or from (">=") a time
Split = tuple[str, int] | None
#: (ts, bundle, event id, line or NULL, extra or NULL): a merged row
Merged = tuple[int, int, int, Any, Any]
_END: Any = object()
_STORE_TABLE = re.compile(r"\b(FROM|JOIN)\s+(events|records|fts|members)\b")
_UNQUALIFIED = re.compile(r"(?<![\w.])(events|records|members)\b")
_MEMBERS_JOIN = "temp.x_members m "


def attach_limit() -> int:
    """How many databases one connection may attach (SQLITE_LIMIT_ATTACHED)."""
    con = sqlite3.connect(":memory:")
    try:
        return con.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)
    finally:
        con.close()


def groups(n: int, size: int) -> list[range]:
    """``range(n)`` cut into the fewest runs of at most ``size``, as even as can be."""
    count = max(1, -(-n // max(1, size)))
    base, more = divmod(n, count)
    out, start = [], 0
    for g in range(count):
        end = start + base + (1 if g < more else 0)
        out.append(range(start, end))
        start = end
    return out


class _Pieces:
    """What :func:`exportsql._tables` reads of a timeline: a connection and the members."""

    def __init__(self, con: sqlite3.Connection, members: Mapping[int, str]) -> None:
        self.con = con
        self._members = members


def _qualified(sql: str, db: str) -> str:
    """``sql`` with every store table it names read from the attached ``db`` (a name
    left unqualified would silently read the first attached store's table)."""
    out = _STORE_TABLE.sub(lambda m: f"{m[1]} {db}.{m[2]}", sql)
    left = _UNQUALIFIED.findall(out)
    if left:
        raise AssertionError(f"store tables not qualified in the case's SQL: {left}")
    return out


def _bound(text: str, names: Sequence[str], k: int) -> str:
    """``text`` with each of its per-bundle parameters ``:name`` renamed ``:name_k``."""
    for name in names:
        text = re.sub(rf":{name}\b", f":{name}_{k}", text)
    return text


class Group:
    """Consecutive bundles of a case (``first`` is the first one's place in the case),
    their stores ATTACHed to one connection with the export's per-value tables."""

    def __init__(self, tls: Sequence[Timeline], first: int) -> None:
        self.tls = list(tls)
        self.first = first
        self.con = sqlite3.connect(":memory:", uri=True, check_same_thread=False)
        try:
            self._open()
        except BaseException:
            self.con.close()
            raise

    def _open(self) -> None:
        con = self.con
        for j, tl in enumerate(self.tls):
            con.execute(f"ATTACH DATABASE ? AS b{j}", (_ro_uri(tl.path),))
            con.execute(f"PRAGMA b{j}.cache_size = -32768")  # as a Timeline's own
            con.execute(f"PRAGMA b{j}.mmap_size = 0")  # one pass: no mapped RSS
            # the kinds and flags tables (the same for every bundle) and this bundle's
            # members, kept as x_members<k>
            sql_x._tables(cast(Timeline, _Pieces(con, tl._members)))
            con.execute(f"ALTER TABLE temp.x_members RENAME TO x_members{self.first + j}")
        con.execute("CREATE TEMP TABLE x_bundles(b INTEGER PRIMARY KEY)")
        con.executemany(
            "INSERT INTO temp.x_bundles VALUES (?)",
            [(self.first + j,) for j in range(len(self.tls))],
        )

    def close(self) -> None:
        self.con.close()

    def select(  # noqa: PLR0917
        self,
        q: Query,
        line: str,
        extra: str = "NULL",
        params: Sequence[Mapping[str, Any]] | None = None,
        limit: int | None = None,
        split: Split = None,
    ) -> tuple[str, dict[str, Any]]:
        """The compound SELECT of this group's :data:`Merged` rows in case order, and
        its parameters; ``params``: per bundle of the case, the values of the names
        ``line`` and ``extra`` bind (e.g. ``:tail``), each bound apart for each arm."""
        arms: list[str] = []
        bound: dict[str, Any] = {}
        for j, tl in enumerate(self.tls):
            k = self.first + j
            s = tl._sql(q)
            if split is not None:
                s.where.append(f"e.ts {'<' if split[0] == '<' else '>='} :split_ts")
                s.params["split_ts"] = split[1]
            s.where.append(f"xb.b = {k}")
            for name, value in s.params.items():  # the same query: the same values
                if bound.setdefault(name, value) != value:
                    raise AssertionError(f"parameter {name} differs between bundles")
            own = dict(params[k]) if params else {}
            for name, value in own.items():
                bound[f"{name}_{k}"] = value
            names = list(own)
            fast = sql_x._FAST
            joins = sql_x._JOINS.replace(_MEMBERS_JOIN, f"temp.x_members{k} m ")
            assert joins != sql_x._JOINS, "exportsql's members join changed"
            arm = (
                f"SELECT e.ts, xb.b, e.id, CASE WHEN {fast} THEN {_bound(line, names, k)} END,"
                f" CASE WHEN {fast} THEN {_bound(extra, names, k)} END"
                f" FROM temp.x_bundles xb CROSS JOIN {tl._from(s)}"
                f" JOIN records r ON r.id = e.id >> 2{joins}{tl._where(s)}"
            )
            arms.append(_qualified(arm, f"b{j}"))
        sql = " UNION ALL ".join(arms) + " ORDER BY 1, 2, 3"
        if limit is not None:
            sql += " LIMIT :limit"
            bound["limit"] = limit
        return sql, bound

    def plan(self, sql: str, params: Mapping[str, Any]) -> list[str]:
        """SQLite's query plan of ``sql`` (EXPLAIN QUERY PLAN), one line per step."""
        return [str(r[3]) for r in self.con.execute("EXPLAIN QUERY PLAN " + sql, params)]


class _Rows:
    """The merged rows of several groups' cursors, with a cursor's ``fetchmany``."""

    def __init__(self, cursors: Sequence[sqlite3.Cursor], limit: int | None) -> None:
        chunked = [chain.from_iterable(iter(lambda c=c: c.fetchmany(CHUNK), [])) for c in cursors]
        self._it = islice(_merge(chunked), limit)

    def fetchmany(self, size: int) -> list[Merged]:
        return list(islice(self._it, size))


def _merge(sources: Sequence[Iterator[Merged]]) -> Iterator[Merged]:
    """The rows of ``sources`` (each in case order, the sources in the case's order)
    in (time, source) order, which is the case order: a source's bundles all come
    after the previous source's."""
    heap: list[list[Any]] = []
    for g, it in enumerate(sources):
        row = next(it, _END)
        if row is not _END:
            heap.append([row[0], g, row, it])
    heapify(heap)
    while len(heap) > 1:
        s = heap[0]
        yield s[2]
        row = next(s[3], _END)
        if row is _END:
            heappop(heap)
            continue
        s[0] = row[0]
        s[2] = row
        heapreplace(heap, s)
    if heap:  # the last source left: no more merging
        yield heap[0][2]
        yield from heap[0][3]


@contextmanager
def merged(  # noqa: PLR0917
    tls: Sequence[Timeline],
    q: Query,
    line: str,
    extra: str = "NULL",
    params: Sequence[Mapping[str, Any]] | None = None,
    limit: int | None = None,
    split: Split = None,
) -> Iterator[sqlite3.Cursor | _Rows]:
    """Every selected event of ``tls`` (a case's bundles, in its order) as :data:`Merged`
    rows in case order (time, bundle, event id), from something with ``fetchmany``;
    ``line`` and ``extra`` are SQL over the arm's ``e``, ``r``, ``k``, ``fl``, ``m``
    (as in exportsql), ``params`` the values they bind per bundle."""
    opened: list[Group] = []
    try:
        for run in groups(len(tls), attach_limit()):
            opened.append(Group([tls[k] for k in run], run.start))
        cursors = []
        for g in opened:
            sql, bound = g.select(q, line, extra, params, limit, split)
            cursors.append(g.con.execute(sql, bound))
        yield cursors[0] if len(cursors) == 1 else _Rows(cursors, limit)
    finally:
        for g in opened:
            g.close()


__all__ = ["CHUNK", "Group", "Merged", "Split", "attach_limit", "groups", "merged"]
