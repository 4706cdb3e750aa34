"""The exports' fast path: filesystem events written straight from their stored rows.

A filesystem record's display fields and message are worked out once, when it is
extracted (:mod:`forensics.timeline.fs`), so exporting one of its events is string
assembly: no JSON is parsed, no :class:`~forensics.timeline.events.Event` is built,
and what depends only on the kinds, the flags, the member or the second of the
time is computed once per distinct value. Every other event (and a filesystem
record of a store without the stored fields) goes through the general code in
:mod:`forensics.timeline.export`, which gives the same fields and values.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring as _quote
from typing import IO, Any

from forensics.timeline.events import KIND_DESCRIPTIONS as _DESC
from forensics.timeline.events import Event, flag_names, kind_names, macb
from forensics.timeline.query import Timeline
from forensics.timeline.text import one_line
from forensics.timeutil import NS_PER_S, iso_ns

_FS = 1
_EPOCH_US = "1970-01-01T00:00:00.000000+00:00"
compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode

Row = tuple[Any, ...]


class _Memo:
    """Per-value pieces of the output (kinds, flags, members, seconds)."""

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.kinds: dict[int, tuple[str, str, str, str]] = {}
        self.flags: dict[int, tuple[str, str, str]] = {}
        self.members: dict[int, tuple[str, str]] = {}
        self.seconds: dict[int, str | None] = {}

    def kind(self, bits: int) -> tuple[str, str, str, str]:
        """(kind, kinds as JSON, timestamp_desc, macb)."""
        got = self.kinds.get(bits)
        if got is None:
            names = kind_names(bits)
            got = self.kinds[bits] = (
                names[0] if names else "",
                compact(list(names)),
                "; ".join(_DESC.get(k, k) for k in names),
                macb(bits),
            )
        return got

    def flag(self, bits: int) -> tuple[str, str, str]:
        """(flag names as JSON, joined with '|', joined with ',' or '-')."""
        got = self.flags.get(bits)
        if got is None:
            names = flag_names(bits)
            got = self.flags[bits] = (compact(names), "|".join(names), ",".join(names) or "-")
        return got

    def member(self, mid: int) -> tuple[str, str]:
        """(name, name as JSON)."""
        got = self.members.get(mid)
        if got is None:
            name = self.tl.member_name(mid)
            got = self.members[mid] = (name, _quote(name))
        return got

    def iso_us(self, ts: int) -> str:
        sec, frac = divmod(ts, NS_PER_S)
        base = self.seconds.get(sec, "")
        if base == "":
            full = iso_ns(sec * NS_PER_S)
            base = self.seconds[sec] = None if full.startswith("@") else full[:19]
        if base is None:
            return _EPOCH_US
        return f"{base}.{frac // 1000:06d}+00:00"

    def iso_ns(self, ts: int) -> str:
        sec, frac = divmod(ts, NS_PER_S)
        base = self.seconds.get(sec, "")
        if base == "":
            full = iso_ns(sec * NS_PER_S)
            base = self.seconds[sec] = None if full.startswith("@") else full[:19]
        if base is None:
            return f"@{ts}ns"
        return f"{base}.{frac:09d}Z"


def _fast(row: Row) -> bool:
    return row[3] == _FS and row[6] is not None and row[9] is not None


def jsonl_line(memo: _Memo, row: Row, tail: str = "}\n") -> str:
    """One filesystem event's Timesketch JSON line (its message and attrs stored);
    ``tail`` closes the object (a case adds its pod fields before the brace)."""
    eid, ts, kinds, _source, flags, entity, message, member, line, attrs = row[:10]
    kind, kinds_json, desc, letters = memo.kind(kinds)
    attrs_part = "," + attrs[1:-1] if len(attrs) > 2 else ""
    return (
        '{"message":%s,"datetime":"%s","timestamp":%d,"timestamp_desc":"%s",'  # noqa: UP031 - %-formatting is the fastest here
        '"timestamp_ns":%d,"event_id":%d,"kind":"%s","kinds":%s,"source":"fs",'
        '"entity":%s,"flags":%s,"ref_member":%s,"ref_line":%d,"macb":"%s"%s%s'
        % (
            _quote(message), memo.iso_us(ts), ts // 1000, desc, ts, eid, kind,
            kinds_json, _quote(entity), memo.flag(flags)[0], memo.member(member)[1],
            line, letters, attrs_part, tail,
        )
    )  # fmt: skip


def csv_fields(memo: _Memo, row: Row) -> tuple[Any, ...]:
    """One filesystem event's CSV cells (its message and attrs stored)."""
    eid, ts, kinds, _source, flags, entity, message, member, line, attrs = row[:10]
    kind, _kj, desc, letters = memo.kind(kinds)
    return (
        memo.iso_ns(ts), ts, desc, kind, "fs", one_line(entity), letters,
        memo.flag(flags)[1], one_line(message), memo.member(member)[0], line, eid, attrs,
    )  # fmt: skip


def jsonl(tl: Timeline, rows: Iterable[Row], f: IO[str], slow: Callable[[Event], str]) -> int:
    """Timesketch JSONL; ``slow`` writes the line of an event off the fast path."""
    memo = _Memo(tl)
    write = f.write
    n = 0
    event_of = tl.event_of
    for row in rows:
        n += 1
        if not _fast(row):
            write(slow(event_of(row)))
            continue
        write(jsonl_line(memo, row))
    return n


def csv_rows(
    tl: Timeline, rows: Iterable[Row], f: IO[str], slow: Callable[[Event], tuple[Any, ...]]
) -> int:
    """The CSV export's rows (after its header)."""
    memo = _Memo(tl)
    writerow = csv.writer(f, lineterminator="\n").writerow
    n = 0
    event_of = tl.event_of
    for row in rows:
        n += 1
        if not _fast(row):
            writerow(slow(event_of(row)))
            continue
        writerow(csv_fields(memo, row))
    return n


def _l2t_value(v: Any) -> str:
    if type(v) is int:
        return str(v)
    return one_line(v if isinstance(v, str) else compact(v))


def l2t_fields(memo: _Memo, row: Row, host: str, where: str = "") -> tuple[str, ...]:
    """One filesystem event's l2tcsv row (its message and attrs stored); ``where``
    (a case's pod fields) ends the ``extra`` column."""
    eid, ts, kinds, _source, flags, entity, message, member, line, attrs = row[:10]
    _kind, _kj, desc, letters = memo.kind(kinds)
    a = json.loads(attrs)
    dt = memo.iso_ns(ts)
    if dt.startswith("@"):
        date, clock = "00/00/0000", "00:00:00"
    else:
        date, clock = f"{dt[5:7]}/{dt[8:10]}/{dt[0:4]}", dt[11:19]
    extra = dict(a)
    extra.update(
        ts_ns=ts,
        kind=",".join(kind_names(kinds)),
        entity=entity,
        event_id=eid,
        ref=f"{memo.member(member)[0]}:{line}",
    )
    uid = a.get("uid")
    msg = one_line(message)
    text = "; ".join(f"{k}: {_l2t_value(v)}" for k, v in sorted(extra.items()))
    if where:
        text = f"{text}; {where}" if text else where
    return (
        date, clock, "UTC", letters.upper(), "FILE", "Container file system (exuvia)",
        desc, "-" if uid is None else str(uid), host or "-", msg[:80], msg, "2",
        one_line(entity), str(a.get("inode", "-")), memo.flag(flags)[2], "exuvia/fs", text,
    )  # fmt: skip


def l2t_rows(
    tl: Timeline,
    rows: Iterable[Row],
    f: IO[str],
    host: str,
    slow: Callable[[Event], tuple[str, ...]],
) -> int:
    """plaso l2tcsv rows (after its header)."""
    memo = _Memo(tl)
    writerow = csv.writer(f, lineterminator="\n").writerow
    n = 0
    event_of = tl.event_of
    for row in rows:
        n += 1
        if not _fast(row):
            writerow(slow(event_of(row)))
            continue
        writerow(l2t_fields(memo, row, host))
    return n


__all__ = ["compact", "csv_fields", "csv_rows", "jsonl", "jsonl_line", "l2t_fields", "l2t_rows"]
