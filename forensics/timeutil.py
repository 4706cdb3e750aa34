"""Time in exuvia: integers of nanoseconds since the Unix epoch, UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime

NS_PER_S = 1_000_000_000
CLOCK_SOURCE = "CLOCK_REALTIME (time.time_ns)"


def now_ns() -> int:
    """Wall-clock time now, UTC nanoseconds."""
    return time.time_ns()


def iso_ns(ns: int) -> str:
    """Render UTC nanoseconds as RFC 3339 with nine fractional digits and a Z."""
    secs, frac = divmod(ns, NS_PER_S)
    try:
        base = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"@{ns}ns"
    return f"{base}.{frac:09d}Z"


def parse_iso_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp (any number of fractional digits) to UTC ns.

    Raises ValueError for anything that is not such a timestamp.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty timestamp")
    frac_ns = 0
    main = s
    tz = ""
    # split off the zone
    if s.endswith(("Z", "z")):
        main, tz = s[:-1], "+00:00"
    else:
        for sign in ("+", "-"):
            idx = s.rfind(sign)
            if idx > 10:
                main, tz = s[:idx], s[idx:]
                break
    if "." in main:
        main, digits = main.split(".", 1)
        if not digits.isdigit():
            raise ValueError(f"bad fraction in {text!r}")
        frac_ns = int((digits + "000000000")[:9])
    dt = datetime.fromisoformat(main.replace(" ", "T") + (tz or "+00:00"))
    return int(dt.timestamp()) * NS_PER_S + frac_ns
