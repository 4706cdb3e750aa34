"""The exports' fastest path: SQLite writes each filesystem event's finished line.

One SELECT per export walks the time index and, for a filesystem event whose
display fields were stored (:mod:`forensics.timeline.fs`), returns the whole
output line, assembled by SQLite's own C code (``printf``, ``json_quote``,
``strftime``, ``||``) from the stored row and a few small temporary tables of
per-value pieces (kinds, flags, members) made here in Python with the same
functions the general code uses. Python only joins the lines into large
blocks and writes them.

Any event the SQL cannot render exactly gets ``NULL`` instead of a line and is
written by the Python code (:mod:`forensics.timeline.exportfast`, whose output
is the reference): any other source, a time outside 1970..2100, a text holding
a NUL. For CSV and l2tcsv, where :func:`~forensics.timeline.text.one_line`
escapes control characters, a finished line that is not entirely printable is
also handed back to Python (the escaping of such a line is the exception, and
Python's is the rule).
"""

# ruff: noqa: S608 - SQL text is built only from this module's constants; every value
# from a bundle is a column of the store or a bound parameter.

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import IO, Any

from forensics.timeline import l2tsql
from forensics.timeline.events import FLAG_NAMES, flag_names, kind_names, macb
from forensics.timeline.events import KIND_DESCRIPTIONS as _DESC
from forensics.timeline.exportfast import Row, compact
from forensics.timeline.query import _EVENT_COLS, Query, Timeline
from forensics.timeline.store import SUSPECT_AFTER_NS

#: lines fetched (and written) at a time
BLOCK = 4096
#: a part of the timeline: the events before ("<") or from (">=") the event (ts, id)
Part = tuple[str, tuple[int, int]] | None
_ALL_FLAGS = 1 << len(FLAG_NAMES)
# a filesystem event the SQL renders: stored fields, a time in 1970..2100 (strftime's
# and Python's calendars agree there), no NUL in the texts (printf would stop at it)
_FAST = (
    f"e.source = 1 AND r.message IS NOT NULL AND r.attrs IS NOT NULL AND e.ts >= 0"
    f" AND e.ts < {SUSPECT_AFTER_NS} AND instr(r.message, char(0)) = 0"
    " AND instr(r.attrs, char(0)) = 0"
)
_JOINS = (
    " LEFT JOIN temp.x_kinds k ON k.bits = e.kinds"
    " LEFT JOIN temp.x_flags fl ON fl.bits = e.flags"
    " LEFT JOIN temp.x_members m ON m.id = r.member"
)
_SECONDS = "strftime('%Y-%m-%dT%H:%M:%S', e.ts / 1000000000, 'unixepoch')"

_JSONL_LINE = (
    """printf('{"message":%s,"datetime":"%s.%06d+00:00","timestamp":%d,"timestamp_desc":"%s",'"""
    """ || '"timestamp_ns":%d,"event_id":%d,"kind":"%s","kinds":%s,"source":"fs",'"""
    """ || '"entity":%s,"flags":%s,"ref_member":%s,"ref_line":%d,"macb":"%s"%s',"""
    f" json_quote(r.message), {_SECONDS}, (e.ts % 1000000000) / 1000, e.ts / 1000, k.descr,"
    " e.ts, e.id, k.kind, k.kinds_json, json_quote(r.entity), fl.json, m.json, r.line,"
    " k.macb, CASE WHEN length(r.attrs) > 2 THEN ',' || substr(r.attrs, 2) ELSE '}' END)"
)


def _csv_cell(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue() if text else ""  # alone, an empty cell is written ''


def _sql_cell(col: str) -> str:
    """``col`` as a CSV cell (QUOTE_MINIMAL): quoted when it holds a comma or a quote.
    (CR and LF are not printable: such a line goes back to Python.)"""
    return (
        f"CASE WHEN instr({col}, ',') OR instr({col}, '\"')"
        f" THEN '\"' || replace({col}, '\"', '\"\"') || '\"' ELSE {col} END"
    )


#: a case's JSON line: the bundle's, its closing brace replaced by the bound ``:tail``
#: (the where fields and the brace; formatted once per bundle)
_JSONL_TAIL_LINE = _JSONL_LINE.replace(
    "THEN ',' || substr(r.attrs, 2) ELSE '}' END)",
    "THEN ',' || substr(r.attrs, 2, length(r.attrs) - 2) ELSE '' END) || :tail",
)
assert _JSONL_TAIL_LINE != _JSONL_LINE

_CSV_LINE = (
    f"{_SECONDS} || printf('.%09dZ,%d,', e.ts % 1000000000, e.ts) || k.descr_csv || ','"
    f" || k.kind || ',fs,' || {_sql_cell('r.entity')} || ',' || k.macb || ',' || fl.pipe_csv"
    f" || ',' || {_sql_cell('r.message')} || ',' || m.csv || printf(',%d,%d,', r.line, e.id)"
    f" || {_sql_cell('r.attrs')}"
)


def _attr(key: str, sep: str = "; ") -> str:
    return f"coalesce('{sep}{key}: ' || json_extract(r.attrs, '$.{key}'), '')"


# plaso's 17 columns; "extra" (the last) is returned apart, Python quotes it when needed
_L2T_LINE = (
    "strftime('%m/%d/%Y,%H:%M:%S', e.ts / 1000000000, 'unixepoch') || ',UTC,'"
    " || k.macb_upper || ',FILE,Container file system (exuvia),' || k.descr_csv || ','"
    " || coalesce(json_extract(r.attrs, '$.uid'), '-') || ',' || :host || ','"
    f" || {_sql_cell('substr(r.message, 1, 80)')} || ',' || {_sql_cell('r.message')}"
    f" || ',2,' || {_sql_cell('r.entity')}"
    " || ',' || coalesce(json_extract(r.attrs, '$.inode'), '-')"
    " || ',' || fl.comma_csv || ',exuvia/fs,'"
)
# the fields of a stored record's attrs (fs.display_fields), sorted with the five added
_L2T_EXTRA = (
    "'entity: ' || r.entity || '; event_id: ' || e.id"
    f" || {_attr('gid')} || {_attr('inode')} || '; kind: ' || k.kind_commas"
    f" || {_attr('link_target')} || {_attr('mode')} || {_attr('nlink')} || {_attr('note')}"
    f" || {_attr('path_b64')} || {_attr('read_error')} || '; ref: ' || m.name || ':' || r.line"
    f" || {_attr('sha256')} || {_attr('size')} || '; ts_ns: ' || e.ts || {_attr('type')}"
    f" || {_attr('uid')}"
)


def l2t_sql(tl: Timeline) -> tuple[str, str, str]:
    """The l2tcsv line and extra SQL for ``tl``'s store, and the join they need: the
    record formats (l2tsql) when the store has them."""
    if l2tsql.present(tl.con):
        return l2tsql.EXPORT_LINE, l2tsql.EXPORT_EXTRA, l2tsql.JOIN
    return _L2T_LINE, _L2T_EXTRA, ""


def _tables(tl: Timeline) -> None:
    """The temporary per-value tables (kinds, flags, members) on ``tl``'s connection."""
    con = tl.con
    con.execute("DROP TABLE IF EXISTS temp.x_kinds")
    con.execute("DROP TABLE IF EXISTS temp.x_flags")
    con.execute("DROP TABLE IF EXISTS temp.x_members")
    con.execute(
        "CREATE TEMP TABLE x_kinds(bits INTEGER PRIMARY KEY, kind TEXT, kinds_json TEXT,"
        " kind_commas TEXT, descr TEXT, descr_csv TEXT, macb TEXT, macb_upper TEXT)"
    )
    con.execute(
        "CREATE TEMP TABLE x_flags(bits INTEGER PRIMARY KEY, json TEXT, pipe_csv TEXT,"
        " comma_csv TEXT)"
    )
    con.execute(
        "CREATE TEMP TABLE x_members(id INTEGER PRIMARY KEY, name TEXT, json TEXT, csv TEXT)"
    )
    kinds = []
    for bits in range(1, 16):  # a filesystem event's kinds: m, a, c, b combined
        names = kind_names(bits)
        desc = "; ".join(_DESC.get(k, k) for k in names)
        letters = macb(bits)
        kinds.append(
            (bits, names[0], compact(list(names)), ",".join(names), desc, _csv_cell(desc),
             letters, letters.upper())
        )  # fmt: skip
    con.executemany("INSERT INTO temp.x_kinds VALUES (?, ?, ?, ?, ?, ?, ?, ?)", kinds)
    flags = []
    for bits in range(_ALL_FLAGS):
        fnames = flag_names(bits)
        flags.append(
            (bits, compact(fnames), _csv_cell("|".join(fnames)), _csv_cell(",".join(fnames) or "-"))
        )
    con.executemany("INSERT INTO temp.x_flags VALUES (?, ?, ?, ?)", flags)
    members = [(mid, name, compact(name), _csv_cell(name)) for mid, name in tl._members.items()]
    con.executemany("INSERT INTO temp.x_members VALUES (?, ?, ?, ?)", members)
    # the INSERTs opened a transaction (the sqlite3 module's): ended here, or its read
    # lock on the store would outlast the export and keep a writer out (l2tsql.fill)
    con.commit()


def _select(  # noqa: PLR0917
    tl: Timeline,
    q: Query,
    limit: int | None,
    line: str,
    extra: str = "NULL",
    part: Part = None,
    joins: str = "",
    **params: Any,
) -> Iterator[tuple[Any, ...]]:
    """(line or NULL, extra, event id) for each selected event, in timeline order;
    with ``part`` = ("<" or ">=", (ts, id)), only those before or from that event;
    ``joins``: more tables the line or extra reads."""
    s = tl._sql(q)
    if part is not None:
        op = "<" if part[0] == "<" else ">="
        s.where.append(f"(e.ts, e.id) {op} (:part_ts, :part_id)")
        s.params.update(part_ts=part[1][0], part_id=part[1][1])
    sql = (
        f"SELECT CASE WHEN {_FAST} THEN {line} END, CASE WHEN {_FAST} THEN {extra} END, e.id"
        f" FROM {tl._from(s)}"
        f" JOIN records r ON r.id = e.id >> 2{_JOINS}{joins}{tl._where(s)} ORDER BY e.ts, e.id"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        s.params["limit"] = limit
    s.params.update(params)
    return tl.con.execute(sql, s.params)


def _row(tl: Timeline, eid: int) -> Row:
    row: Row = tl.con.execute(
        f"SELECT {_EVENT_COLS} FROM events e JOIN records r ON r.id = e.id >> 2 WHERE e.id = ?",
        (eid,),
    ).fetchone()
    return row


def _quoted(cell: str) -> str:
    """A CSV cell as the csv module writes it (QUOTE_MINIMAL; CR/LF never get here)."""
    if "," in cell or '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _write(  # noqa: PLR0917
    tl: Timeline,
    cur: Iterator[tuple[Any, ...]],
    f: IO[str],
    slow: Callable[[Row], str],
    csv_cells: bool,
    extra: bool = False,
) -> int:
    """Write the lines of ``cur`` in blocks; ``slow`` writes the line of any other event.

    With ``csv_cells`` (CSV, l2tcsv) a line holding a character that is not printable
    is Python's too (:func:`~forensics.timeline.text.one_line` escapes it), and an
    ``extra`` column, when there is one, is appended as a quoted-when-needed cell."""
    n = 0
    fetch = cur.fetchmany  # type: ignore[attr-defined]
    write = f.write
    while True:
        block = fetch(BLOCK)
        if not block:
            return n
        n += len(block)
        if not extra:
            lines = [line for line, _x, _eid in block]
        else:  # l2tcsv: the line, then its last cell
            lines = [
                None if line is None or x is None else line + _quoted(x) for line, x, _eid in block
            ]
        ok = None not in lines and (not csv_cells or "".join(lines).isprintable())
        if ok:
            write("\n".join(lines) + "\n")
            continue
        # some events are Python's to write: line by line, in order
        for line, (_line, _x, eid) in zip(lines, block, strict=True):
            if line is None or (csv_cells and not line.isprintable()):
                write(slow(_row(tl, eid)))
            else:
                write(line + "\n")


def jsonl(  # noqa: PLR0917
    tl: Timeline,
    q: Query,
    limit: int | None,
    f: IO[str],
    slow: Callable[[Row], str],
    part: Part = None,
) -> int:
    """Timesketch JSONL (the same bytes as :func:`~forensics.timeline.exportfast.jsonl`)."""
    _tables(tl)
    raw = getattr(f, "buffer", None)
    if raw is None:
        return _write(tl, _select(tl, q, limit, _JSONL_LINE, part=part), f, slow, csv_cells=False)
    # JSON lines need no check in Python: fetched as UTF-8 bytes, written as they come
    # (no decoding into str and encoding back: a tenth of the export's CPU)
    f.flush()
    cur = _select(tl, q, limit, f"CAST({_JSONL_LINE} AS BLOB)", part=part)
    n = 0
    write = raw.write
    while True:
        block = cur.fetchmany(BLOCK)  # type: ignore[attr-defined]
        if not block:
            return n
        n += len(block)
        lines = [line for line, _x, _eid in block]
        if None not in lines:
            write(b"\n".join(lines) + b"\n")
            continue
        for line, _x, eid in block:
            if line is None:
                write(slow(_row(tl, eid)).encode("utf-8", "surrogateescape"))
            else:
                write(line + b"\n")


def csv_lines(  # noqa: PLR0917
    tl: Timeline,
    q: Query,
    limit: int | None,
    f: IO[str],
    slow: Callable[[Row], str],
    part: Part = None,
) -> int:
    """The CSV export's lines after its header (as exportfast.csv_rows)."""
    _tables(tl)
    return _write(tl, _select(tl, q, limit, _CSV_LINE, part=part), f, slow, csv_cells=True)


def l2t_lines(  # noqa: PLR0917
    tl: Timeline,
    q: Query,
    limit: int | None,
    f: IO[str],
    host: str,
    slow: Callable[[Row], str],
    part: Part = None,
) -> int:
    """plaso l2tcsv lines after its header (as exportfast.l2t_rows): from the record
    formats of :mod:`forensics.timeline.l2tsql` when the store has them, else from
    the stored fields by :data:`_L2T_LINE` and :data:`_L2T_EXTRA`."""
    _tables(tl)
    line, extra, joins = l2t_sql(tl)
    cur = _select(tl, q, limit, line, extra, part, joins, host=_csv_cell(host or "-"))
    return _write(tl, cur, f, slow, csv_cells=True, extra=True)


__all__ = ["csv_lines", "jsonl", "l2t_lines"]
