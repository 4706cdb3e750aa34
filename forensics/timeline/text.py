"""Untrusted text made safe to show on one line (terminals, CSV, l2tcsv)."""

from __future__ import annotations

_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line(text: str) -> str:
    """Control characters (newlines, escapes, C1) written as visible escapes."""
    if text.isprintable():  # every character escaped below is non-printable
        return text
    return text.translate(_ESCAPES)
