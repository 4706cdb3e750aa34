"""An ``fs_entry`` record's JSON line, built from a format string per key shape.

The capture writes each record as ``jsonfast.dumps({"kind": kind, **data})``
and a newline. For the filesystem's ~one record per file that call (a merged
dict, the C encoder's key sort) and carrying the dict from the reader process
to the writer (marshal both ways) were a good part of the per-entry cost
(docs/performance.md). The reader now sends the line itself, built here:

* a record's keys, in the order the acquirer adds them, pick a *shape*; each
  shape is compiled once into a ``%``-format string with the keys in sorted
  order, an ``itemgetter`` for the values and the few conversions JSON needs
  (strings quoted by json's own ``encode_basestring``, booleans and ``null``);
* a record with a key not listed in :data:`_KINDS` (or more shapes than
  :data:`MAX_SHAPES`), or a value of another type than its key's, is encoded
  by ``jsonfast.dumps`` as before.

The bytes are the same either way (tests/unit/test_fs_record_line.py checks
odd names, every key and random records against ``jsonfast.dumps``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forensics.jsonfast import dumps, quote

#: how each value is written: "d" an int, "n" an int or None, "b" a bool or None,
#: "s" a str that needs no escaping (hex, octal, "major:minor", base64, a file
#: kind), "q" any str. The acquirer builds these values itself (statx's ints,
#: hexdigest, _MODES, _dev, base64, file_kind); tests pin each kind's encoding
_KINDS = {
    "path": "q",
    "path_b64": "s",
    "type": "s",
    "mode": "s",
    "uid": "d",
    "gid": "d",
    "size": "d",
    "inode": "d",
    "nlink": "d",
    "dev": "s",
    "rdev": "s",
    "mtime_ns": "d",
    "atime_ns": "d",
    "ctime_ns": "d",
    "btime_ns": "n",
    "setid": "b",
    "changed": "b",
    "link_target": "q",
    "link_target_b64": "s",
    "hardlink_of": "q",
    "hardlink_of_b64": "s",
    "sha256": "s",
    "hashed_bytes": "d",
    "member": "q",
    "read_error": "q",
    "atime_preserved": "b",
    "secret": "b",
    "changed_during_read": "b",
    "sparse": "b",
    "allocated_bytes": "d",
}
#: JSON of a "b" value (a KeyError for anything else)
_JSON_BOOL = {True: "true", False: "false", None: "null"}
MAX_SHAPES = 256

Encoder = Callable[[dict[str, Any]], bytes]


def _int_or_null(v: Any) -> str:
    if v is None:
        return "null"
    if type(v) is not int:
        raise TypeError(v)
    return str(v)


#: how a value of each kind goes into the format string ("d" and "s" values as they
#: are: ``%d`` raises for anything but a number, ``"%s"`` is only for safe strings)
_FORMAT = {"d": "%d", "n": "%s", "b": "%s", "s": '"%s"', "q": "%s"}
#: and the expression that converts it first ("n", "b", "q")
_EXPR = {"d": "d[{k!r}]", "n": "_n(d[{k!r}])", "b": "_b[d[{k!r}]]", "s": "d[{k!r}]",
         "q": "_q(d[{k!r}])"}  # fmt: skip
#: names the compiled expressions use: _q raises TypeError for a non-str, _b a
#: KeyError for a non-bool
_GLOBALS = {"_n": _int_or_null, "_b": _JSON_BOOL, "_q": quote}


def _compile(kind: str, keys: tuple[str, ...]) -> Encoder | None:
    """The encoder of records of ``kind`` with exactly these keys, or None.

    One expression: ``(FORMAT % (d["atime_ns"], _n(d["btime_ns"]), ...)).encode()``
    with the keys in sorted order, compiled from the whitelisted names above.
    """
    if not keys or "kind" in keys or any(k not in _KINDS for k in keys):
        return None
    parts = []
    values = []
    for k in sorted((*keys, "kind")):
        if k == "kind":
            parts.append(f'"kind":{quote(kind)}'.replace("%", "%%"))
            continue
        code = _KINDS[k]
        parts.append(f'"{k}":{_FORMAT[code]}')
        values.append(_EXPR[code].format(k=k))
    fmt = "{" + ",".join(parts) + "}\n"
    source = f"lambda d: ({fmt!r} % ({', '.join(values)},)).encode()"
    encode: Encoder = eval(source, dict(_GLOBALS))  # noqa: S307 - built from _KINDS only
    return encode


class LineEncoder:
    """``dumps({"kind": kind, **data}) + b"\\n"`` for records of one kind, faster."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._shapes: dict[tuple[str, ...], Encoder | None] = {}

    def __call__(self, data: dict[str, Any]) -> bytes:
        keys = tuple(data)
        enc: Encoder | None = self._shapes.get(keys, _MISSING)
        if enc is _MISSING:
            enc = _compile(self.kind, keys) if len(self._shapes) < MAX_SHAPES else None
            self._shapes[keys] = enc
        if enc is not None:
            try:
                return enc(data)
            except (TypeError, KeyError):
                pass  # a value of another type than its key's: the general encoder
        return dumps({"kind": self.kind, **data}) + b"\n"


_MISSING: Any = object()
