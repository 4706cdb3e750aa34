"""A filesystem record's l2tcsv line as two ``printf`` formats, made when first needed.

plaso's l2tcsv line of a filesystem event is mostly the same for every event of
one record (up to four: its m, a, c and b times): the owner, the inode, the CSV
quoting of its message and path, the display fields of the ``extra`` column. The
first l2tcsv export of a store so writes, in one pass over its records, two
``printf`` formats per file record into the side table :data:`TABLE` (record id,
``line``, ``extra``) with a hole for each part that is the event's own or that
the store already holds; that export and every later one fill the holes with
one ``printf`` per column and event (:data:`EXPORT_LINE`, :data:`EXPORT_EXTRA`),
where the general SQL (:mod:`forensics.timeline.exportsql`) makes eleven
``json_extract`` calls and two dozen concatenations per event. Building a store
does not make them: the build, the store's schema and the other formats are
untouched, and a store without the table is exported as before.

Holes, in order: ``line``: the date and time (``MM/DD/YYYY,HH:MM:SS``), the MACB
letters, the kind's description (a CSV cell), the host (a CSV cell), the
message's first 80 characters, the message, the path, the flags (a CSV cell);
``extra``: the path, the event id, the kind names, the member, the line, the time
in ns. A text cell's hole is ``%s``, or ``"%s"`` when it holds a comma (every
message does); a text holding a ``"`` (doubled in a CSV cell) has its cell written
in the format after a ``%.0s`` (which writes nothing of the argument). Every ``%``
of the record's own text in a format is written ``%%``. A record the formats
cannot render exactly (a NUL, display fields that are not what the build writes:
the store is not trusted) gets no row: its events are written by the Python code,
the reference (:func:`~forensics.timeline.exportfast.l2t_fields`).

The table is made in one transaction of its own connection (``BEGIN IMMEDIATE``,
``CREATE TABLE``, the rows, ``COMMIT``): a crash or Ctrl-C before the commit
leaves the store as it was (SQLite rolls the journal back), never half a table.
A store that cannot be written (a read-only directory or file, a store still
being built, another process holding it past :data:`LOCK_WAIT_S`) gets no table,
and the export takes the general SQL: the same bytes, only slower.
"""

# ruff: noqa: S608 - SQL text is built only from this module's constants.

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from forensics.timeline.store import BUILDING_KEY

#: the side table (its name carries the version of the formats: a change of them is
#: a new name, so a store's older table is never read as the new one)
TABLE = "l2t_v1"
#: how long a fill waits for another connection's lock (a reader of the store in the
#: middle of a statement, or a second export making the same table) before the
#: export goes without it
LOCK_WAIT_S = 2.0
#: an export of fewer lines than this (``--limit``) does not make the table
FILL_MIN = 10_000
#: rows written at a time (``progress`` is called after each batch)
FILL_BATCH = 8192

#: the join of an export's SELECT (``r``: the event's record)
JOIN = f" LEFT JOIN main.{TABLE} x ON x.id = r.id"
#: the line's first 16 cells and the comma before ``extra`` (as exportfast.l2t_fields)
EXPORT_LINE = (
    "printf(x.line, strftime('%m/%d/%Y,%H:%M:%S', e.ts / 1000000000, 'unixepoch'),"
    " k.macb_upper, k.descr_csv, :host, substr(r.message, 1, 80), r.message, r.entity,"
    " fl.comma_csv)"
)
#: the ``extra`` text, not quoted (the caller quotes it as a cell)
EXPORT_EXTRA = (
    "CASE WHEN x.extra IS NOT NULL AND m.name IS NOT NULL"
    " THEN printf(x.extra, r.entity, e.id, k.kind_commas, m.name, r.line, e.ts) END"
)

_I64 = 1 << 63
_STR_KEYS = frozenset(("link_target", "mode", "note", "path_b64", "read_error", "sha256", "type"))
_INT_KEYS = frozenset(("gid", "inode", "nlink", "size", "uid"))
_RECORDS = (
    "SELECT id, entity, message, attrs FROM main.records"
    " WHERE source = 1 AND message IS NOT NULL AND attrs IS NOT NULL ORDER BY id"
)


def _pct(text: str) -> str:
    return text.replace("%", "%%") if "%" in text else text


def _hole(text: str) -> str:
    """The hole of a CSV cell: ``%s``, ``"%s"`` (a comma), or the quoted cell itself
    after ``%.0s`` (a quote)."""
    if '"' in text:
        return '%.0s"' + _pct(text).replace('"', '""') + '"'
    return '"%s"' if "," in text else "%s"


def _fields(attrs: str) -> dict[str, Any] | None:
    """The stored display fields, when each is what the build writes (else None)."""
    try:
        a = json.loads(attrs)
    except (ValueError, RecursionError):
        return None
    if type(a) is not dict:
        return None
    for k, v in a.items():
        if k in _STR_KEYS:
            if type(v) is not str or "\x00" in v:
                return None
        elif k not in _INT_KEYS or type(v) is not int or not -_I64 <= v < _I64:
            return None
    return a


def formats(entity: str, message: str, attrs: str) -> tuple[str, str] | None:
    """(line format, extra format) of a file record's stored path, message and display
    fields (``attrs``), or None: the record's events are Python's to write."""
    if "\x00" in entity or "\x00" in message:  # printf stops at a NUL
        return None
    a = _fields(attrs)
    if a is None:
        return None
    g = a.get
    gid, inode, uid = g("gid"), g("inode"), g("uid")
    # the display fields of "extra" between its holes (keys sorted with the five added)
    b = "".join(
        f"; {k}: {a[k]}"
        for k in ("link_target", "mode", "nlink", "note", "path_b64", "read_error")
        if k in a
    )
    c = "".join(f"; {k}: {a[k]}" for k in ("sha256", "size") if k in a)
    d = "".join(f"; {k}: {a[k]}" for k in ("type", "uid") if k in a)
    extra = (
        f"entity: %s; event_id: %d{'' if gid is None else f'; gid: {gid}'}"
        f"{'' if inode is None else f'; inode: {inode}'}; kind: %s{_pct(b)}; ref: %s:%d"
        f"{_pct(c)}; ts_ns: %d{_pct(d)}"
    )
    line = (
        "%s,UTC,%s,FILE,Container file system (exuvia),%s,"
        f"{'-' if uid is None else uid},%s,{_hole(message[:80])},{_hole(message)},2,"
        f"{_hole(entity)},{'-' if inode is None else inode},%s,exuvia/fs,"
    )
    return line, extra


def _rows(records: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, str, str]]:
    for rid, entity, message, attrs in records:
        if type(entity) is not str or type(message) is not str or type(attrs) is not str:
            continue
        got = formats(entity, message, attrs)
        if got is not None:
            yield rid, got[0], got[1]


def present(con: sqlite3.Connection) -> bool:
    """Whether the store on ``con`` has the (complete: see the module doc) table."""
    row = con.execute(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    return row is not None


def fill(path: Path, progress: Callable[[int], None] | None = None) -> bool:
    """Make the table in the store at ``path`` unless it is there; whether it is there
    now (False: the store could not be written, see the module doc). ``progress(n)``
    after each batch of rows (tests use it to interrupt a fill)."""
    quoted = str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    try:  # mode=rw: a store that is gone is not made anew, empty
        con = sqlite3.connect(
            f"file:{quoted}?mode=rw", uri=True, timeout=LOCK_WAIT_S, isolation_level=None
        )
    except sqlite3.Error:
        return False
    try:
        con.execute("PRAGMA cache_size = -16384")
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "delete":
            return False  # a live build's WAL store: its indexer writes it
        con.execute("BEGIN IMMEDIATE")
        try:
            if present(con):  # made by another export meanwhile
                con.execute("ROLLBACK")
                return True
            building = con.execute("SELECT 1 FROM meta WHERE key = ?", (BUILDING_KEY,))
            if building.fetchone() is not None:
                con.execute("ROLLBACK")
                return False
            con.execute(
                f"CREATE TABLE main.{TABLE}"
                "(id INTEGER PRIMARY KEY, line TEXT NOT NULL, extra TEXT NOT NULL)"
            )
            rows = _rows(con.execute(_RECORDS))
            insert = f"INSERT INTO main.{TABLE} VALUES (?, ?, ?)"
            n = 0
            while True:
                batch = list(itertools.islice(rows, FILL_BATCH))
                if not batch:
                    break
                con.executemany(insert, batch)
                n += len(batch)
                if progress is not None:
                    progress(n)
            con.execute("COMMIT")
            return True
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
    except sqlite3.Error:
        return False
    finally:
        con.close()


__all__ = ["EXPORT_EXTRA", "EXPORT_LINE", "JOIN", "TABLE", "fill", "formats", "present"]
