"""Exports: Timesketch JSONL, CSV, plaso's l2tcsv, and a TSK 3.x bodyfile.

Every export is written to a temporary file beside the output and renamed when
complete (or streamed to stdout with ``-``).

* ``jsonl``: one JSON object per event, importable by Timesketch: ``message``,
  ``datetime`` (ISO 8601, microseconds, ``+00:00``), ``timestamp`` (µs),
  ``timestamp_desc``, and every other field as an attribute.
* ``csv``: :data:`CSV_COLUMNS`, times in RFC 3339 with nanoseconds (also a
  Timesketch CSV: it has message, datetime and timestamp_desc).
* ``l2tcsv``: plaso's 17 columns, :data:`L2T_COLUMNS`.
* ``bodyfile``: ``MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime``
  for each filesystem entry with a selected event; times in whole seconds
  (0 = none), MD5 ``0`` (the bundle keeps SHA-256). In names, ``%``, ``|``
  and bytes that are not UTF-8 are percent-encoded (mactime decodes them) and
  control characters are written ``\\xNN`` (plaso decodes them).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import functools
import io
import itertools
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from forensics.bundle.format import decode_path
from forensics.errors import OutputError
from forensics.timeline import exportfast as fast
from forensics.timeline import exportsql as fastsql
from forensics.timeline import l2tsql
from forensics.timeline.events import Event, event_key
from forensics.timeline.exportfast import compact
from forensics.timeline.exportpart import PARALLEL_MIN, PartWriter, write_in_two
from forensics.timeline.query import MMAP_SIZE, Query, Timeline
from forensics.timeline.text import one_line
from forensics.timeutil import NS_PER_S, iso_ns

FORMATS = ("jsonl", "csv", "l2tcsv", "bodyfile")
CSV_COLUMNS = (
    "datetime", "timestamp_ns", "timestamp_desc", "kind", "source", "entity", "macb", "flags",
    "message", "ref_member", "ref_line", "event_id", "attributes",
)  # fmt: skip
L2T_COLUMNS = (
    "date", "time", "timezone", "MACB", "source", "sourcetype", "type", "user", "host",
    "short", "desc", "version", "filename", "inode", "notes", "format", "extra",
)  # fmt: skip
_L2T_SOURCE = {
    "fs": ("FILE", "Container file system (exuvia)"),
    "proc": ("PROC", "Container process (exuvia)"),
    "log": ("LOG", "Container log (exuvia)"),
    "net": ("NET", "Container network (exuvia)"),
    "runtime": ("RUNTIME", "Container runtime (exuvia)"),
    "custody": ("CUSTODY", "exuvia chain of custody"),
    "k8s": ("K8S", "Kubernetes (exuvia)"),
    "scan": ("YARA", "YARA scan of the capture (exuvia)"),
}
_TIMESKETCH_RESERVED = {"message", "datetime", "timestamp", "timestamp_desc", "tag", "label"}
_TYPE_CHAR = {
    "file": "r", "dir": "d", "symlink": "l", "fifo": "p", "socket": "s",
    "chardev": "c", "blockdev": "b", "whiteout": "w",
}  # fmt: skip


def iso_us(ns: int) -> str:
    """ISO 8601 with microseconds and +00:00 (what Timesketch parses everywhere)."""
    try:
        dt = datetime.fromtimestamp(ns // NS_PER_S, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00.000000+00:00"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % NS_PER_S) // 1000:06d}+00:00"


def timesketch_record(ev: Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "message": ev.message,
        "datetime": iso_us(ev.ts),
        "timestamp": ev.ts // 1000,
        "timestamp_desc": ev.timestamp_desc,
        "timestamp_ns": ev.ts,
        "event_id": ev.id,
        "kind": ev.kind,
        "kinds": list(ev.kinds),
        "source": ev.source,
        "entity": ev.entity,
        "flags": ev.flag_names,
        "ref_member": ev.ref.member,
        "ref_line": ev.ref.line,
    }
    if ev.macb:
        out["macb"] = ev.macb
    for k, v in ev.attrs.items():
        key = k if k not in out and k not in _TIMESKETCH_RESERVED else f"attr_{k}"
        out[key] = v
    return out


class NoteLike(Protocol):
    """What an export needs of an examiner's note (see :mod:`forensics.notes`)."""

    bookmarked: bool
    tags: list[str]
    text: str


NoteMap = Mapping[str, NoteLike]
#: extra CSV columns when notes are included
NOTE_COLUMNS = ("bookmarked", "tags", "note")


def _note_cells(ev: Event, notes: NoteMap | None) -> tuple[str, ...]:
    if notes is None:
        return ()
    note = notes.get(event_key(ev))
    if note is None:
        return ("", "", "")
    return ("yes" if note.bookmarked else "", "|".join(note.tags), one_line(note.text))


def _note_text(ev: Event, notes: NoteMap | None) -> str:
    note = notes.get(event_key(ev)) if notes is not None else None
    if note is None:
        return ""
    parts = (["bookmarked"] if note.bookmarked else []) + [f"tag:{t}" for t in note.tags]
    if note.text:
        parts.append(f"note:{note.text}")
    return one_line(" ".join(parts))


def _jsonl_line(ev: Event, notes: NoteMap | None = None) -> str:
    rec = timesketch_record(ev)
    note = notes.get(event_key(ev)) if notes is not None else None
    if note is not None:
        # Timesketch's own fields for labels and comments
        rec["tag"] = [*note.tags, *(["bookmark"] if note.bookmarked else [])]
        if note.text:
            rec["comment"] = [note.text]
    return compact(rec) + "\n"


def _jsonl(events: Iterable[Event], f: IO[str], notes: NoteMap | None) -> int:
    n = 0
    for ev in events:
        f.write(_jsonl_line(ev, notes))
        n += 1
    return n


def _csv(events: Iterable[Event], f: IO[str], notes: NoteMap | None) -> int:
    w = csv.writer(f, lineterminator="\n")
    w.writerow((*CSV_COLUMNS, *(NOTE_COLUMNS if notes is not None else ())))
    n = 0
    for ev in events:
        w.writerow((*csv_row(ev), *_note_cells(ev, notes)))
        n += 1
    return n


def csv_row(ev: Event) -> tuple[Any, ...]:
    """One event's CSV cells (:data:`CSV_COLUMNS`); attributes as compact JSON, keys sorted."""
    return (
        iso_ns(ev.ts), ev.ts, ev.timestamp_desc, ev.kind, ev.source, one_line(ev.entity),
        ev.macb, "|".join(ev.flag_names), one_line(ev.message), ev.ref.member, ev.ref.line,
        ev.id, _sorted_json(dict(ev.attrs)),
    )  # fmt: skip


def l2t_row(ev: Event, host: str) -> tuple[str, ...]:
    dt = iso_ns(ev.ts)
    date = f"{dt[5:7]}/{dt[8:10]}/{dt[0:4]}" if not dt.startswith("@") else "00/00/0000"
    clock = dt[11:19] if not dt.startswith("@") else "00:00:00"
    macb = ev.macb.upper() if ev.macb else "...."
    short, long = _L2T_SOURCE.get(ev.source, (ev.source.upper(), ev.source))
    a = ev.attrs
    user = a.get("user") or a.get("uid")
    if ev.source == "fs" and a.get("uid") is not None:
        user = a.get("uid")
    filename = ev.entity if ev.source == "fs" or ev.entity.startswith("/") else ev.ref.member
    extra = dict(a)
    extra.update(ts_ns=ev.ts, kind=",".join(ev.kinds), entity=ev.entity, event_id=ev.id)
    extra["ref"] = f"{ev.ref.member}:{ev.ref.line}"
    message = one_line(ev.message)
    return (
        date,
        clock,
        "UTC",
        macb,
        short,
        long,
        ev.timestamp_desc,
        "-" if user is None else str(user),
        host or "-",
        message[:80],
        message,
        "2",
        one_line(filename),
        str(a.get("inode", "-")),
        ",".join(ev.flag_names) or "-",
        f"exuvia/{ev.source}",
        "; ".join(f"{k}: {one_line(_text(v))}" for k, v in sorted(extra.items())),
    )


def _text(v: Any) -> str:
    return v if isinstance(v, str) else compact(v)


_sorted_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
).encode


def _l2tcsv(events: Iterable[Event], f: IO[str], host: str, notes: NoteMap | None) -> int:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(L2T_COLUMNS)
    n = 0
    for ev in events:
        row = l2t_row(ev, host)
        note = _note_text(ev, notes)
        if note:  # plaso's "notes" column (the 15th)
            row = (*row[:14], note if row[14] == "-" else f"{row[14]} {note}", *row[15:])
        w.writerow(row)
        n += 1
    return n


@functools.lru_cache(maxsize=4096)
def mode_string(ftype: str | None, mode: str | None) -> str:
    """TSK's mode_as_string, e.g. ``r/rrw-r--r--``, ``d/drwxr-xr-x``, ``l/lrwxrwxrwx``."""
    t = _TYPE_CHAR.get(ftype or "", "-")
    try:
        bits = int(mode or "0", 8)
    except ValueError:
        bits = 0
    out = []
    for shift, special, char in ((6, 0o4000, "s"), (3, 0o2000, "s"), (0, 0o1000, "t")):
        r = "r" if bits >> shift & 4 else "-"
        wr = "w" if bits >> shift & 2 else "-"
        x = bits >> shift & 1
        plain = "x" if x else "-"
        out.append(r + wr + ((char if x else char.upper()) if bits & special else plain))
    return f"{t}/{t}{''.join(out)}"


def bodyfile_name(path: str, path_b64: str | None = None, link: str | None = None) -> str:
    """A path as a bodyfile name (see the module doc for the escaping)."""
    if not path_b64 and not _ESCAPED.search(path):  # the common case: nothing to escape
        return path + (" -> " + bodyfile_name(link) if link else "")
    raw = decode_path_b64(path_b64) if path_b64 else path.encode("utf-8", "surrogateescape")
    out: list[str] = []
    text = raw.decode("utf-8", "surrogateescape")
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"%{code - 0xDC00:02X}")
        elif ch == "%":
            out.append("%25")
        elif ch == "|":
            out.append("%7C")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    name = "".join(out)
    if link:
        name += " -> " + bodyfile_name(link)
    return name


_ESCAPED = re.compile("[%|\x00-\x1f\x7f\udc80-\udcff]")


def decode_path_b64(b64: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return decode_path(b64)


def _secs(ns: int | None) -> int:
    return 0 if ns is None else ns // NS_PER_S


def bodyfile_line(rec: dict[str, Any]) -> str:
    """One TSK 3.x line for a file record from :meth:`Timeline.file_records`."""
    link = rec.get("link_target") if rec.get("type") == "symlink" else None
    fields = (
        "0",
        bodyfile_name(rec["path"], rec.get("path_b64"), link),
        str(rec.get("inode") or 0),
        mode_string(rec.get("type"), rec.get("mode")),
        str(rec.get("uid") or 0),
        str(rec.get("gid") or 0),
        str(rec.get("size") or 0),
        str(_secs(rec.get("atime"))),
        str(_secs(rec.get("mtime"))),
        str(_secs(rec.get("ctime"))),
        str(_secs(rec.get("btime"))),
    )
    return "|".join(fields) + "\n"


def bodyfile_row_line(row: tuple[Any, ...]) -> str:
    """:func:`bodyfile_line` of a row of :meth:`Timeline.bodyfile_rows` (the same text)."""
    path, b64, ftype, link, inode, mode, uid, gid, size, atime, mtime, ctime, btime = row
    name = bodyfile_name(path, b64, link if ftype == "symlink" else None)
    return "0|%s|%s|%s|%s|%s|%s|%d|%d|%d|%d\n" % (  # noqa: UP031 - the fastest here
        name, inode or 0, mode_string(ftype, mode), uid or 0, gid or 0, size or 0,
        _secs(atime), _secs(mtime), _secs(ctime), _secs(btime),
    )  # fmt: skip


def _bodyfile(tl: Timeline, q: Query, f: IO[str], limit: int | None = None) -> int:
    lines: Iterator[str] = map(bodyfile_row_line, tl.bodyfile_rows(q))
    if limit is not None:
        lines = itertools.islice(lines, limit)
    n = 0
    write = f.write
    while block := list(itertools.islice(lines, 4096)):
        write("".join(block))
        n += len(block)
    return n


def write_export(
    tl: Timeline,
    q: Query,
    fmt: str,
    out: str | Path,
    *,
    host: str | None = None,
    limit: int | None = None,
    notes: NoteMap | None = None,
) -> int:
    """Write the selected events in ``fmt`` to ``out`` ('-' = stdout); returns the count
    of lines written (events, or file entries for a bodyfile).

    With ``notes`` (keyed by :func:`~forensics.timeline.events.event_key`), the
    examiner's bookmarks, tags and notes go along: Timesketch's ``tag`` and
    ``comment`` in jsonl, three more columns in csv, plaso's notes column in
    l2tcsv. A bodyfile has no place for them (ValueError)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if notes is not None and fmt == "bodyfile":
        raise ValueError("a bodyfile has no place for notes; export jsonl, csv or l2tcsv")
    if host is None:
        host = str(tl.meta.get("container") or "").removeprefix("container:")

    def body(f: IO[str]) -> int:
        if fmt == "bodyfile":
            return _bodyfile(tl, q, f, limit)
        if notes is not None:  # the general path, an event at a time
            events = tl.iter_events(q, limit=limit)
            if fmt == "jsonl":
                return _jsonl(events, f, notes)
            if fmt == "csv":
                return _csv(events, f, notes)
            return _l2tcsv(events, f, host or "-", notes)
        if fmt != "jsonl":
            header = CSV_COLUMNS if fmt == "csv" else L2T_COLUMNS
            csv.writer(f, lineterminator="\n").writerow(header)
        key = _split_key(tl, q, limit, out)
        if key is None:
            return part_lines(tl, q, fmt, f, host or "-", None, limit)
        # a large whole-timeline export to a file: the second half by a second process
        return write_in_two(
            f,
            out,
            lambda part: PartWriter(tl.path, fmt, host or "-", key, part),
            lambda: part_lines(tl, q, fmt, f, host or "-", ("<", key)),
        )

    if fmt == "l2tcsv" and notes is None:
        prepare_l2t(tl, limit)
    # one pass over the whole store: read through SQLite's bounded page cache, not a
    # memory map whose pages would all count in the process's RSS
    tl.con.execute("PRAGMA mmap_size = 0")
    try:
        return write_atomically(out, body)
    finally:
        tl.con.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")


def prepare_l2t(tl: Timeline, limit: int | None = None) -> bool:
    """Before an l2tcsv export of ``tl``: its file records' l2tcsv formats made once
    (:func:`forensics.timeline.l2tsql.fill`) unless the store has them, or the export
    is short (``limit`` under :data:`~forensics.timeline.l2tsql.FILL_MIN`); whether
    the store has them now (False: the export takes the general SQL, same bytes)."""
    if l2tsql.present(tl.con):
        return True
    if limit is not None and limit < l2tsql.FILL_MIN:
        return False
    if tl.con.in_transaction:  # its read lock would keep the fill's commit waiting
        tl.con.commit()
    return l2tsql.fill(tl.path)


def _split_key(
    tl: Timeline, q: Query, limit: int | None, out: str | Path
) -> tuple[int, int] | None:
    """The (ts, id) of the middle event of a large whole-timeline export to a file."""
    if str(out) == "-" or limit is not None or q != Query():
        return None
    events = tl.meta.get("events")
    if not isinstance(events, int) or events < PARALLEL_MIN:
        return None
    row = tl.con.execute(
        "SELECT ts, id FROM events ORDER BY ts, id LIMIT 1 OFFSET ?", (events // 2,)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def part_lines(  # noqa: PLR0917
    tl: Timeline,
    q: Query,
    fmt: str,
    f: IO[str],
    host: str,
    part: fastsql.Part,
    limit: int | None = None,
) -> int:
    """The lines (no header) of the selected events, or of a ``part`` of them."""
    if fmt == "jsonl":
        return fastsql.jsonl(tl, q, limit, f, _python(tl, fast.jsonl, _jsonl_line), part)
    if fmt == "csv":
        return fastsql.csv_lines(tl, q, limit, f, _python(tl, fast.csv_rows, csv_row), part)

    def l2t(tl: Timeline, rows: Iterable[fast.Row], f: IO[str], slow: Any) -> int:
        return fast.l2t_rows(tl, rows, f, host, slow)

    slow = _python(tl, l2t, lambda ev: l2t_row(ev, host))
    return fastsql.l2t_lines(tl, q, limit, f, host, slow, part)


def _python(tl: Timeline, writer: Callable[..., int], slow: Any) -> Callable[[fast.Row], str]:
    """The line of one row as the Python code writes it (for the rows the SQL leaves)."""

    def line(row: fast.Row) -> str:
        buf = io.StringIO()
        writer(tl, [row], buf, slow)
        return buf.getvalue()

    return line


def write_atomically(out: str | Path, body: Callable[[IO[str]], int]) -> int:
    if str(out) == "-":
        n = body(sys.stdout)
        sys.stdout.flush()
        return n
    dest = Path(out)
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"cannot write {dest}: {err.strerror}") from err
    try:
        with open(fd, "w", encoding="utf-8", newline="", errors="surrogateescape") as f:
            n = body(f)
        os.replace(tmp, dest)
    except OSError as err:
        raise OutputError(f"writing {dest} failed: {err.strerror}") from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return n
