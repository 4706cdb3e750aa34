"""Literal text for the screen: everything from a target goes through ``lit``.

``lit`` builds a rich Text (never parsed as markup) from a string whose control
characters are escaped (forensics.textsafe.printable).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from forensics.textsafe import printable


def lit(value: object, style: str = "") -> Text:
    return Text(printable("" if value is None else str(value)), style=style)


def size(n: int | None) -> str:
    if n is None:
        return "-"
    f = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if f < 1024 or unit == "T":
            return f"{f:.0f}{unit}" if unit == "B" else f"{f:.1f}{unit}"
        f /= 1024
    return f"{n}B"


def age(ns: int | None, now_s: float | None = None) -> str:
    if not ns:
        return "-"
    secs = int((now_s if now_s is not None else time.time()) - ns / 1e9)
    if secs < 0:
        return "0s"
    for unit, div in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= div:
            return f"{secs // div}{unit}"
    return f"{secs}s"


def utc(ns: int | None) -> str:
    if not ns:
        return "-"
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{ns % 1_000_000_000:09d}Z"


def notice(widget: Any, message: str, severity: str = "information", timeout: float = 5) -> None:
    """A toast whose text may come from the target: escaped, never markup."""
    widget.notify(printable(message), severity=severity, markup=False, timeout=timeout)
