"""Bytes-safe text for records: names from a target may not be valid UTF-8."""

from __future__ import annotations

import base64
import os
from typing import Any


def fsdecode_safe(raw: bytes) -> str:
    """Text for display and JSON: invalid UTF-8 bytes become U+FFFD."""
    return raw.decode("utf-8", errors="replace")


def bytes_field(name: str, raw: bytes) -> dict[str, Any]:
    """A record field for bytes that are usually text.

    Always gives ``name`` as readable UTF-8; adds ``name_b64`` with the exact
    bytes only when they are not valid UTF-8, so nothing is lost.
    """
    try:
        return {name: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            name: raw.decode("utf-8", errors="replace"),
            f"{name}_b64": base64.b64encode(raw).decode("ascii"),
        }


def field_bytes(record: dict[str, Any], name: str) -> bytes:
    """The exact bytes of a field written by :func:`bytes_field`."""
    b64 = record.get(f"{name}_b64")
    if isinstance(b64, str):
        return base64.b64decode(b64)
    value = record.get(name, "")
    return str(value).encode("utf-8")


def no_surrogates(v: Any) -> Any:
    """``v`` (a JSON value) with lone surrogates replaced by U+FFFD: JSON text from a
    bundle can carry ``\\udcff`` escapes, which UTF-8 (and SQLite) refuse."""
    if isinstance(v, str):
        return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(v, list):
        return [no_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {no_surrogates(k): no_surrogates(x) for k, x in v.items()}
    return v


def to_bytes(path: str | bytes) -> bytes:
    return path if isinstance(path, bytes) else os.fsencode(path)


_CONTROL_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: control characters (C0, DEL, C1) and
    bidirectional overrides become visible escapes (``\\x1b``, ``\\n``, ``\\u202e``),
    so a name or log line from a target can never move the cursor, change colours
    or reorder what is shown; a lone surrogate (JSON can carry one) becomes ``\\udcff``.
    Everything else is kept as it is."""
    if text.isprintable() and not any(c in _BIDI for c in text):
        return text
    out = []
    for c in text:
        o = ord(c)
        if c in _CONTROL_ESCAPES:
            out.append(_CONTROL_ESCAPES[c])
        elif o < 0x20 or 0x7F <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        elif c in _BIDI or 0xD800 <= o <= 0xDFFF:  # a lone surrogate cannot be printed
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    return "".join(out)
