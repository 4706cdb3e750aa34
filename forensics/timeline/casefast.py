"""A case export's fast path: lines of the merged rows written in blocks.

The case's rows come merged by SQLite (:mod:`forensics.timeline.casemerge`), each
with its finished line rendered by the single-bundle export's SQL
(:mod:`forensics.timeline.exportsql`) and where the event was captured appended
as a pre-built tail (the namespace, pod, container, node and bundle are the same
for every event of a bundle, so they are formatted once per bundle and bound to
its arm of the SELECT). The writers here only join those lines into blocks.

An event the SQL leaves (NULL) is written by the Python fast path below (the
single-bundle code of :mod:`forensics.timeline.exportfast` with the same tail). A
stored filesystem row's attributes are :func:`~forensics.timeline.fs.display_fields`,
a fixed set of keys none of which is a where field, so the tail never collides
with an attribute (tests/unit/test_case_timeline.py checks that). Every other
event goes through ``slow``: the general code in :mod:`forensics.timeline.case`,
which gives the same fields and values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Protocol

from forensics.timeline import exportsql as sql_x
from forensics.timeline.exportfast import _fast, _Memo, compact, csv_fields, jsonl_line, l2t_fields
from forensics.timeline.query import Timeline
from forensics.timeline.text import one_line

#: lines joined into one write
BATCH = 512
Row = tuple[Any, ...]


class Rows(Protocol):
    """Merged rows (:data:`forensics.timeline.casemerge.Merged`), a block at a time."""

    def fetchmany(self, size: int, /) -> list[Any]: ...


def jsonl_lines(
    parts: Sequence[Timeline],
    wheres: Sequence[Mapping[str, Any]],
    slow: Callable[[int, Row], str],
) -> Callable[[int, Row], str]:
    """The Timesketch JSON line of bundle ``k``'s ``row``, ending with the bundle's
    where fields (its pieces made once per export, not once per line)."""
    memos = [_Memo(tl) for tl in parts]
    tails = ["," + compact(dict(w))[1:] + "\n" for w in wheres]

    def line(k: int, row: Row) -> str:
        return jsonl_line(memos[k], row, tails[k]) if _fast(row) else slow(k, row)

    return line


def _csv_line_of(cells: Callable[[int, Row], Sequence[Any]]) -> Callable[[int, Row], str]:
    """The CSV line of the cells ``cells(k, row)`` gives, as the csv module writes it."""
    buf = io.StringIO()
    writerow = csv.writer(buf, lineterminator="\n").writerow

    def line(k: int, row: Row) -> str:
        buf.seek(0)
        buf.truncate()
        writerow(cells(k, row))
        return buf.getvalue()

    return line


def csv_lines(
    parts: Sequence[Timeline],
    wheres: Sequence[Mapping[str, Any]],
    slow: Callable[[int, Row], tuple[Any, ...]],
) -> Callable[[int, Row], str]:
    """The case CSV's line of bundle ``k``'s ``row``: the bundle's columns, then the
    where cells."""
    memos = [_Memo(tl) for tl in parts]
    where = [tuple(one_line(str(v or "")) for v in w.values()) for w in wheres]

    def cells(k: int, row: Row) -> Sequence[Any]:
        return (*csv_fields(memos[k], row), *where[k]) if _fast(row) else slow(k, row)

    return _csv_line_of(cells)


def l2t_lines(
    parts: Sequence[Timeline],
    wheres: Sequence[tuple[str, str]],
    slow: Callable[[int, Row], tuple[str, ...]],
) -> Callable[[int, Row], str]:
    """The plaso l2tcsv line of bundle ``k``'s ``row``; ``wheres``: per bundle, (host,
    where text): the host column is the bundle's label, the where text ends ``extra``."""
    memos = [_Memo(tl) for tl in parts]

    def cells(k: int, row: Row) -> Sequence[Any]:
        if not _fast(row):
            return slow(k, row)
        host, where = wheres[k]
        return l2t_fields(memos[k], row, host, where)

    return _csv_line_of(cells)


# -- lines rendered and merged by SQLite (forensics/timeline/casemerge.py) -----------
def write_sql_lines(
    parts: Sequence[Timeline],
    rows: Rows,
    f: IO[str],
    finish: Callable[[int, str, str | None], str | None] | None,
    python: Callable[[int, Row], str],
    *,
    printable: bool = False,
) -> int:
    """Write each merged row's line as ``finish(bundle, line, extra)`` makes it (None:
    not exactly renderable, so Python's), else the Python line of the event's row;
    ``finish`` None: the SQL's line is the whole line, without its newline (with
    ``printable``, a line that is not printable is Python's, as in a CSV)."""
    if finish is None:
        return _write_whole(parts, rows, f, python, printable)
    out: list[str] = []
    n = 0
    while block := rows.fetchmany(BATCH):
        n += len(block)
        for _ts, k, eid, line, extra in block:
            done = finish(k, line, extra) if line is not None else None
            out.append(done if done is not None else python(k, sql_x._row(parts[k], eid)))
        f.write("".join(out))
        out.clear()
    return n


def _write_whole(
    parts: Sequence[Timeline],
    rows: Rows,
    f: IO[str],
    python: Callable[[int, Row], str],
    printable: bool,
) -> int:
    """:func:`write_sql_lines` of lines SQLite rendered whole: BATCH at a time, each
    batch checked at once (as exportsql._write does for a bundle alone)."""
    write = f.write
    n = 0
    while block := rows.fetchmany(BATCH):
        n += len(block)
        lines = [r[3] for r in block]
        # each line checked, not the joined text: its newlines are not printable
        if None not in lines and (not printable or all(map(str.isprintable, lines))):
            lines.append("")  # the last newline, without copying the text once more
            write("\n".join(lines))
            continue
        for line, r in zip(lines, block, strict=True):
            if line is None or (printable and not line.isprintable()):
                write(python(r[1], sql_x._row(parts[r[1]], r[2])))
            else:
                write(line + "\n")
    return n


def write_sql_bytes(
    parts: Sequence[Timeline], rows: Rows, raw: IO[bytes], python: Callable[[int, Row], str]
) -> int:
    """:func:`_write_whole` of lines fetched as UTF-8 bytes (``CAST(… AS BLOB)``): JSON
    lines need no check in Python, so they are written as they come, not decoded into
    str and encoded back (as exportsql.jsonl does for a bundle alone)."""
    write = raw.write
    n = 0
    while block := rows.fetchmany(BATCH):
        n += len(block)
        lines = [r[3] for r in block]
        if None not in lines:
            lines.append(b"")  # the last newline, without copying the text once more
            write(b"\n".join(lines))
            continue
        for line, r in zip(lines, block, strict=True):
            if line is None:
                text = python(r[1], sql_x._row(parts[r[1]], r[2]))
                write(text.encode("utf-8", "surrogateescape"))
            else:
                write(line + b"\n")
    return n


__all__ = ["csv_lines", "jsonl_lines", "l2t_lines", "write_sql_bytes", "write_sql_lines"]
