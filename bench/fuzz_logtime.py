"""Fuzz the log-timestamp parsers (forensics/timeline/logtime.py) with hypothesis.

Two kinds of examples:

* **hostile text**: arbitrary Unicode, and lines made of timestamp-like pieces
  (digits, separators, month names, zones, brackets, ``time=``) glued at
  random, fed to ``LogClock.line``, ``LogClock.value``, ``rfc3339_ns`` and
  ``parse_user_time`` in UTC and in a zone with DST. Allowed: None, a Stamp
  whose ns is an int inside exuvia's range (or INVALID), and for
  ``parse_user_time`` a ValueError. Anything else — another exception, a
  float, an out-of-range time — is a crasher.
* **oracle**: a random instant (1970..2096) and zone rendered six ways (RFC
  3339 with 0-9 fraction digits and an offset, ISO with a space and a
  ``+HHMM`` offset, ISO basic, CLF, epoch seconds and milliseconds); the parser
  must give exactly the instant ``datetime`` computes.

A crasher is shrunk by hypothesis, printed with its traceback and written to
bench/fuzz-crashers/; each one becomes a test in tests/unit/test_logtime.py.

    .venv/bin/python bench/fuzz_logtime.py [--examples 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "exuvia-hypothesis")
)

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.timeline.logtime import (
    INVALID,
    MAX_NS,
    MIN_NS,
    LogClock,
    Stamp,
    parse_user_time,
    rfc3339_ns,
)

OUT = Path(__file__).resolve().parent / "fuzz-crashers"
NS = 1_000_000_000
ZONES = [
    UTC,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/St_Johns"),
    timezone(timedelta(hours=5, minutes=45)),
]
PIECES = [
    "2026", "-", "11", "23", "T", "t", " ", ":", "15", "55", "00", ".", ",", "123456789",
    "9999999999999999999", "0", "Z", "z", "+", "-", "05:30", "+0000", "UTC", "GMT", "Nov",
    "Feb 29", "/", "[", "]", "(", ")", "<13>", "I", "E1123", "time=", "ts=", '"', "\\",
    "@timestamp=", "1795449300", "1795449300123", "1795449300.5", "NaN", "inf", "\x00",
    "\u0663", "\uff12", "\n", "99", "60", "24:00", "0000-00-00", "1e400", "-1",
]  # fmt: skip
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
COUNTS: dict[str, int] = {"text": 0, "oracle": 0, "parsed": 0, "invalid": 0, "none": 0}


def _check_stamp(st: object, where: str) -> None:
    if st is None:
        COUNTS["none"] += 1
        return
    if not isinstance(st, Stamp) or type(st.ns) is not int or type(st.flags) is not int:
        raise AssertionError(f"{where} returned {st!r}")
    if st is INVALID or st == INVALID:
        COUNTS["invalid"] += 1
        return
    if not MIN_NS < st.ns < MAX_NS:
        raise AssertionError(f"{where} returned an out-of-range time {st.ns}")
    COUNTS["parsed"] += 1


def run_text(text: str, zone: int) -> None:
    clock = LogClock(ZONES[zone], ref_ns=1_795_449_300 * NS)
    _check_stamp(clock.line(text), "line")
    _check_stamp(clock.value(text), "value")
    ns = rfc3339_ns(text)
    if ns is not None and (type(ns) is not int or not MIN_NS < ns < MAX_NS):
        raise AssertionError(f"rfc3339_ns returned {ns!r}")
    try:
        got = parse_user_time(text, ZONES[zone])
    except ValueError:
        pass
    else:
        if type(got) is not int:
            raise AssertionError(f"parse_user_time returned {got!r}")
    COUNTS["text"] += 1


def renderings(when: datetime, frac_digits: int) -> list[tuple[str, int]]:
    """(text, exact UTC ns) for each format, from an aware ``when``."""
    utc = when.astimezone(UTC)
    whole = int(utc.replace(microsecond=0).timestamp()) * NS
    frac = str(utc.microsecond * 1000).rjust(9, "0")[:frac_digits]
    ns = whole + int((frac or "0").ljust(9, "0"))
    off = when.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    mins = abs(int(off.total_seconds())) // 60
    zone = f"{sign}{mins // 60:02d}:{mins % 60:02d}"
    local = when.replace(microsecond=0)
    f = f".{frac}" if frac else ""
    clf = f"[{utc.strftime('%d')}/{MONTHS[utc.month - 1]}/{utc.strftime('%Y:%H:%M:%S')} +0000]"
    out = [
        (local.strftime("%Y-%m-%dT%H:%M:%S") + f + zone + " msg", ns),
        (local.strftime("%Y-%m-%d %H:%M:%S") + f + " " + zone.replace(":", "") + " msg", ns),
        (utc.strftime("%Y%m%dT%H%M%S") + f + "Z msg", ns),
        (clf + " x", whole),
        (f"{whole // NS} msg", whole),
        (f"{whole // 1_000_000} msg", whole),
    ]  # fmt: skip
    return out


def run_oracle(ts: int, zone: int, frac_digits: int) -> None:
    tz = ZONES[zone]
    when = datetime.fromtimestamp(ts / 1e6, UTC).astimezone(tz)
    clock = LogClock(UTC, ref_ns=ts * 1000)
    for text, want in renderings(when, frac_digits):
        st = clock.line(text)
        if st is None or st.ns != want:
            raise AssertionError(f"{text!r}: parsed {st!r}, expected ns {want}")
    COUNTS["oracle"] += 1


@st.composite
def glued(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
    return "".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    crashers: list[tuple[str, str]] = []

    def guard(fn: object, *a: object) -> None:
        try:
            fn(*a)  # type: ignore[operator]
        except Exception:
            crashers.append((repr(a), traceback.format_exc(limit=5)))
            raise

    common = {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
    }

    @settings(max_examples=args.examples, **common)  # type: ignore[arg-type]
    @given(st.one_of(st.text(max_size=80), glued()), st.integers(0, len(ZONES) - 1))
    def text_case(text: str, zone: int) -> None:
        guard(run_text, text, zone)

    @settings(max_examples=max(1, args.examples // 4), **common)  # type: ignore[arg-type]
    @given(
        st.integers(1_000_000_000 * 1_000_000, 4_000_000_000 * 1_000_000),
        st.integers(0, len(ZONES) - 1),
        st.integers(0, 9),
    )
    def oracle_case(ts: int, zone: int, frac_digits: int) -> None:
        guard(run_oracle, ts, zone, frac_digits)

    t0 = time.monotonic()
    failed = []
    for case in (text_case, oracle_case):
        try:
            seed(args.seed)(case)()
        except Exception:  # noqa: BLE001 - reported below
            failed.append(case.__name__)
    spent = time.monotonic() - t0
    total = COUNTS["text"] + COUNTS["oracle"]
    print(f"examples: {total} in {spent:.1f}s ({total / spent:.0f}/s)")
    print(
        f"  text {COUNTS['text']} (parsed {COUNTS['parsed']}, invalid {COUNTS['invalid']}, "
        f"no time {COUNTS['none']}); oracle {COUNTS['oracle']} instants x 6 formats"
    )
    if failed and crashers:
        args_repr, tb = crashers[-1]
        OUT.mkdir(exist_ok=True)
        path = OUT / f"logtime-{zlib.crc32(args_repr.encode()):08x}.txt"
        path.write_text(args_repr + "\n\n" + tb)
        print(f"CRASHER in {failed} written to {path}:\n{args_repr}\n{tb}")
        return 1
    print("crashers: 0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
