"""Turning untrusted strings from a bundle into text a terminal shows literally.

Every string that came from a target (file names, log lines, command lines,
environment) goes through :func:`safe` before it reaches a widget: control
characters (ESC, BEL, newlines, C1) are shown as visible escapes, and the
result is a :class:`rich.text.Text`, which Textual never parses as markup.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, tzinfo
from typing import Any

from rich.text import Text

from forensics.timeline.text import one_line
from forensics.timeutil import iso_ns

NS = 1_000_000_000


def safe(value: Any, style: str = "") -> Text:
    """``value`` as literal, one-line text: no markup, no escape sequences."""
    return Text(one_line(value if isinstance(value, str) else str(value)), style=style)


def safe_block(value: str, style: str = "") -> Text:
    """Multi-line untrusted text: each line made safe, newlines kept."""
    return Text("\n".join(one_line(line) for line in value.split("\n")), style=style)


def local_zone() -> tzinfo:
    """The examiner's zone (``TZ`` or the system's), read when called."""
    if "TZ" in os.environ:
        time.tzset()
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


def fmt_time(ns: int, zone: tzinfo | None = None) -> str:
    """UTC ``...Z`` with nanoseconds, or the same instant in ``zone`` with its offset."""
    if zone is None:
        return iso_ns(ns)
    try:
        dt = datetime.fromtimestamp(ns // NS, tz=zone)
    except (OverflowError, OSError, ValueError):
        return iso_ns(ns)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % NS:09d}" + dt.strftime("%z")
