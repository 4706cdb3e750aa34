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


def to_bytes(path: str | bytes) -> bytes:
    return path if isinstance(path, bytes) else os.fsencode(path)
