"""Filesystem records (``artifacts/filesystem.jsonl``) into file rows.

Each ``fs_entry`` becomes one record carrying its path, its four times and its
own JSON text; the store makes one event per distinct time with the MACB
letters combined, as mactime does. The times and the path are checked here: a
time that is not an integer that fits in 64 bits is not used (and counted); a
record that is not a JSON object is counted and listed, never silently
dropped. The other fields (type, mode, owner, size, inode, link, hash) are read
from the kept JSON, with the same checks, when an event is shown or exported
(:func:`file_fields`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring as _quote
from typing import Any

from forensics.textsafe import no_surrogates
from forensics.timeline.bundleio import MemberStream, iter_lines
from forensics.timeline.events import Flag
from forensics.timeline.sink import Sink

MAX_RECORD = 16 << 20
I64 = 1 << 63
_decode = json.JSONDecoder().raw_decode
#: raw_decode without its Python frame: (value, end), StopIteration when no value starts
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_CHANGED = int(Flag.CHANGED)
_DELETED = int(Flag.DELETED)
_CHANGED_DELETED = _CHANGED | _DELETED


def _int(v: Any) -> int | None:
    return v if type(v) is int and -I64 <= v < I64 else None


def kind_records(
    stream: MemberStream, sink: Any, kind: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each JSON object of ``kind`` in a JSONL member; too
    long and malformed lines are recorded on ``sink`` as problems and skipped."""
    name = stream.name
    lineno = 0
    for raw in iter_lines(stream, MAX_RECORD):
        lineno += 1
        if type(raw) is not bytes:
            sink.problem("record_too_long", name, lineno, f"{getattr(raw, 'full', '?')} bytes")
            continue
        if not raw or raw.isspace():
            continue
        rec, why = parse_json_line(raw)
        if not isinstance(rec, dict):
            sink.problem("record_malformed", name, lineno, why or "not a JSON object")
            continue
        if rec.get("kind") == kind:
            yield lineno, rec


def parse_json_line(raw: bytes) -> tuple[Any, str | None]:
    """One JSONL record: (value, None), or (None, why it is not one)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
    return parse_json_text(text)


def parse_json_text(text: str) -> tuple[Any, str | None]:
    """One JSON value that must fill the whole text: (value, None) or (None, why)."""
    text = text.strip()
    try:
        obj, end = _decode(text)
    except (ValueError, RecursionError) as err:
        return None, f"not valid JSON ({str(err)[:80]})"
    if end != len(text):
        return None, "not valid JSON (extra data after the record)"
    if "\\ud" in text or "\\uD" in text:  # a crafted record can carry lone surrogates
        obj = no_surrogates(obj)
    return obj, None


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _times(rec: dict[str, Any]) -> tuple[tuple[int | None, ...], str | None]:
    """The four times of a record, each an int64 of ns or None; and what was wrong."""
    out: list[int | None] = []
    bad = []
    for key in ("mtime_ns", "atime_ns", "ctime_ns", "btime_ns"):
        v = rec.get(key)
        if v is None or (type(v) is int and -I64 <= v < I64):
            out.append(v)
        else:
            out.append(None)
            bad.append(f"{key}={v!r}"[:60])
    return tuple(out), ", ".join(bad) or None


def extract_fs(stream: MemberStream, sink: Sink) -> None:
    """One file row per ``fs_entry`` record (the store derives its MACB events)."""
    name = stream.name
    mid = sink.member(name)
    rows = sink.begin_files()
    append = rows.append
    flush = sink.flush
    problem = sink.problem
    scan = _scan
    batch = sink.batch
    lineno = 0
    for raw in iter_lines(stream, MAX_RECORD):
        lineno += 1
        if type(raw) is not bytes:
            problem("record_too_long", name, lineno, f"{getattr(raw, 'full', '?')} bytes")
            continue
        try:
            text = raw.decode("utf-8")
            rec, end = scan(text, 0)
            if end != len(text):
                raise ValueError("extra data after the record")
        except (ValueError, RecursionError, StopIteration):  # UnicodeDecodeError: ValueError
            if not raw or raw.isspace():
                continue
            text = raw.decode("utf-8", "replace")
            rec, why = parse_json_line(raw)
            if not isinstance(rec, dict):
                problem("record_malformed", name, lineno, why or "not a JSON object")
                continue
            if not _utf8(raw):  # kept, its invalid bytes shown as U+FFFD
                problem("record_invalid_utf8", name, lineno, repr(raw[:120]))
        if type(rec) is not dict:
            problem("record_malformed", name, lineno, "not a JSON object")
            continue
        g = rec.get
        if g("kind") != "fs_entry":
            continue
        path = g("path")
        m = g("mtime_ns")
        a = g("atime_ns")
        c = g("ctime_ns")
        b = g("btime_ns")
        if not (
            type(m) is int
            and type(a) is int
            and type(c) is int
            and (b is None or type(b) is int)
            and -I64 <= m < I64
            and -I64 <= a < I64
            and -I64 <= c < I64
            and (b is None or -I64 <= b < I64)
        ):
            (m, a, c, b), bad = _times(rec)
            if bad:
                problem("time_invalid", name, lineno, f"{path}: not an integer of ns: {bad}")
            if m is None and a is None and c is None and b is None:
                problem("no_time", name, lineno, f"{path}: no usable time")
                continue
        if type(path) is not str:
            problem("record_malformed", name, lineno, "no path")
            continue
        flags = _CHANGED if g("changed") is True else 0
        if g("deleted") is True or g("type") == "whiteout":
            flags |= _CHANGED_DELETED
        # one scan for the rare escape; a lone surrogate (crafted) cannot be stored
        if "\\u" in text and ("\\ud" in text or "\\uD" in text):
            path = no_surrogates(path)
            rec = no_surrogates(rec)
        # the record itself is kept; its checked display fields and message too, so
        # showing or exporting an event parses nothing
        append((flags, path, mid, lineno, text, m, a, c, b, *stored_fields(rec, path, flags)))
        if len(rows) >= batch:
            flush()
            batch = sink.batch


FILE_FIELDS = ("type", "mode", "uid", "gid", "size", "inode", "link_target", "sha256", "path_b64")


_STR_FIELDS = ("type", "mode", "link_target", "sha256", "path_b64", "note", "read_error")
_INT_FIELDS = ("uid", "gid", "size", "inode", "nlink")
#: compact JSON, keys sorted, non-ASCII kept (what the exports write)
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def file_fields(raw: str | None) -> dict[str, Any]:
    """The display fields of a kept ``fs_entry``, each of its expected type or absent."""
    if not raw:
        return {}
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(rec, dict):
        return {}
    return display_fields(rec)


def display_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """:func:`file_fields` of a parsed record."""
    out: dict[str, Any] = {}
    g = rec.get
    for key in _STR_FIELDS:
        v = g(key)
        if type(v) is str:
            out[key] = v
    for key in _INT_FIELDS:
        v = g(key)
        if type(v) is int and -I64 <= v < I64:
            out[key] = v
    return out


def stored_fields(rec: dict[str, Any], path: str, flags: int) -> tuple[str, str]:
    """(message, display fields as compact JSON) of a parsed ``fs_entry``, in one pass:
    the same text as ``file_message(path, display_fields(rec), flags)`` and
    ``dumps(display_fields(rec))``, without the intermediate dict and encoder."""
    g = rec.get
    out: list[str] = []
    add = out.append
    # the keys in sorted order (as dumps(sort_keys=True) writes them)
    gid = g("gid")
    if type(gid) is int and -I64 <= gid < I64:
        add(f'"gid":{gid}')
    else:
        gid = None
    v = g("inode")
    if type(v) is int and -I64 <= v < I64:
        add(f'"inode":{v}')
    link = g("link_target")
    if type(link) is str:
        add('"link_target":' + _quote(link))
    else:
        link = None
    mode = g("mode")
    if type(mode) is str:
        add('"mode":' + _quote(mode))
    else:
        mode = None
    v = g("nlink")
    if type(v) is int and -I64 <= v < I64:
        add(f'"nlink":{v}')
    for key in ("note", "path_b64", "read_error", "sha256"):
        v = g(key)
        if type(v) is str:
            add(f'"{key}":' + _quote(v))
    size = g("size")
    if type(size) is int and -I64 <= size < I64:
        add(f'"size":{size}')
    else:
        size = None
    ftype = g("type")
    if type(ftype) is str:
        add('"type":' + _quote(ftype))
    else:
        ftype = None
    uid = g("uid")
    if type(uid) is int and -I64 <= uid < I64:
        add(f'"uid":{uid}')
    else:
        uid = None
    # the message, as file_message writes it
    if size is not None and ftype not in ("dir", "whiteout"):
        desc = f"{ftype or '?'}, {size} bytes"
    else:
        desc = ftype or "?"
    if mode is not None:
        desc = f"{desc}, {mode}"
    desc = f"{desc}, {'?' if uid is None else uid}:{'?' if gid is None else gid}"
    text = f"{path} -> {link} ({desc})" if link else f"{path} ({desc})"
    if flags & _DELETED:
        text += " [deleted since start]"
    elif flags & _CHANGED:
        text += " [changed since start]"
    return text, "{" + ",".join(out) + "}"


def file_message(path: str, f: dict[str, Any], flags: int) -> str:
    """The message of a filesystem event, e.g. '/etc/passwd (file, 148 bytes, 0644, 0:0)'."""
    ftype = f.get("type")
    parts = [ftype or "?"]
    if f.get("size") is not None and ftype not in ("dir", "whiteout"):
        parts.append(f"{f['size']} bytes")
    if f.get("mode") is not None:
        parts.append(f["mode"])
    uid, gid = f.get("uid"), f.get("gid")
    parts.append(f"{'?' if uid is None else uid}:{'?' if gid is None else gid}")
    link = f.get("link_target")
    text = path + (f" -> {link}" if link else "") + f" ({', '.join(parts)})"
    if flags & _DELETED:
        text += " [deleted since start]"
    elif flags & _CHANGED:
        text += " [changed since start]"
    return text
