"""Timestamps in log lines: pure parsers, no I/O.

:class:`LogClock` finds a line's own time in the common formats and returns it
as UTC nanoseconds with flags saying what was assumed:

* RFC 3339 / ISO 8601, extended (``2006-01-02T15:04:05.999Z``, space or ``T``,
  ``.`` or ``,`` fractions, ``Z``/``±hh:mm``/``±hhmm``/``UTC``, or no zone) and
  basic (``20060102T150405Z``), also after ``<PRI>1 `` (RFC 5424), ``[`` or a
  few leading words without digits (``INFO 2006-01-02 ...``);
* Go's ``log`` and nginx's error log: ``2006/01/02 15:04:05[.000]``;
* syslog (RFC 3164): ``Jan  2 15:04:05`` (year from context);
* Go/klog: ``I0102 15:04:05.000000`` (year from context);
* Apache/nginx common and combined log: ``[02/Jan/2006:15:04:05 -0700]``;
* logfmt ``time=``/``ts=``/``timestamp=`` (quoted or not; ISO or epoch);
* JSON lines with a ``time``/``ts``/``timestamp``/``@timestamp``/``datetime``
  field (ISO string or epoch number or string);
* epoch seconds, millis, micros or nanos at the start of a line.

Times without a zone take the clock's zone (``--tz``, default UTC) and get
``ZONE_ASSUMED``; times without a year take the year of the reference time
(the log's or the capture's), or the year before when that would put them more
than two days after it, and get ``YEAR_ASSUMED``. A timestamp that is found
but absurd (year 0 or 9999, before 1970 or after 2099, negative epoch, NaN,
31 February) gives :data:`INVALID`, so the caller can count it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from forensics.timeline.events import Flag

NS = 1_000_000_000
_EPOCH_ORD = date(1970, 1, 1).toordinal()
#: a log line's own time must fall in (1970-01-01, 2100-01-01)
MIN_NS = 0
MAX_NS = (date(2100, 1, 1).toordinal() - _EPOCH_ORD) * 86400 * NS
_REF_SLACK_S = 2 * 86400

MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_MON = "(" + "|".join(MONTHS) + ")"
JSON_TIME_KEYS = ("time", "ts", "timestamp", "@timestamp", "datetime")


class Stamp(NamedTuple):
    """A parsed time: UTC ns and what was assumed (ZONE_ASSUMED, YEAR_ASSUMED)."""

    ns: int
    flags: int


#: a timestamp was found but cannot be used
INVALID = Stamp(0, int(Flag.TIME_INVALID))

_ZONE = r"(?:(Z|z|[+-]\d{2}(?::?\d{2})?)|\s(UTC|GMT|[+-]\d{4}|[+-]\d{2}:\d{2})(?![\w:]))?"
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?" + _ZONE)
_ISO_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:[.,](\d+))?" + _ZONE)
_GO = re.compile(r"(\d{4})/(\d{2})/(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?")
_SYSLOG = re.compile(_MON + r" {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?=\s|$)")
_KLOG = re.compile(r"[IWEF](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?=\s|$)")
_CLF = re.compile(
    r"\[(\d{2})/" + _MON + r"/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ([+-]\d{4})\]"
)
_LOGFMT = re.compile(r'(?:^|[\s,])(?:time|ts|timestamp|@timestamp)=("(?:[^"\\]|\\.)*"|[^\s,]+)')
_EPOCH_START = re.compile(r"(\d{10}|\d{13}|\d{16}|\d{19})(?:\.(\d{1,9}))?(?=[\s,;|\]]|$)")
_EPOCH_TEXT = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
_PREFIX = re.compile(r"\s*(?:<\d{1,3}>(?:\d{1,2} )?)?[\[(]?")
_HEAD = 64
_FAST = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d):(\d\d)(?:[.,](\d+))?(Z|z|[+-]\d\d:\d\d)?")
#: after a zoneless time: a zone the fast path leaves to the full parser, or more digits
_ZONE_AFTER = re.compile(r"\s?(?:UTC|GMT|[+-]\d)|[\d:.,+-]")
_ZONE_ASSUMED = int(Flag.ZONE_ASSUMED)


def resolve_tz(name: str) -> tzinfo:
    """'UTC', an IANA name ('Europe/Paris') or a fixed offset ('+02:00', '-0500')."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT", ""):
        return UTC
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        if minutes >= 24 * 60:
            raise ValueError(f"time zone offset out of range: {name!r}")
        sign = -1 if m.group(1) == "-" else 1
        return timezone(timedelta(minutes=sign * minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"unknown time zone {name!r} (use UTC, an IANA name like Europe/Paris, or +02:00)"
        ) from err


def tz_name(tz: tzinfo) -> str:
    """A stable name for a zone (recorded with the timeline)."""
    if tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None)
    return str(key) if key else str(tz.tzname(None))


def _frac_ns(digits: str | None) -> int:
    if not digits:
        return 0
    return int((digits + "00000000")[:9])


def _offset_s(zone: str | None) -> int | None:
    """Seconds east of UTC for a zone designator; None when there is none."""
    if zone is None:
        return None
    if zone in ("Z", "z", "UTC", "GMT"):
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    if hours > 23 or minutes > 59:
        raise ValueError("zone offset out of range")
    return sign * (hours * 3600 + minutes * 60)


class LogClock:
    """Parses timestamps for one log source.

    ``tz`` applies to times written without a zone; ``ref_ns`` (the log's or the
    capture's time) supplies the year of year-less formats.
    """

    def __init__(self, tz: tzinfo = UTC, ref_ns: int | None = None) -> None:
        self.tz = tz
        self._utc = tz is UTC or (isinstance(tz, timezone) and tz.utcoffset(None) == timedelta(0))
        self.ref_ns = ref_ns
        self.ref_year = datetime.fromtimestamp(ref_ns // NS, UTC).year if ref_ns else None
        self._days: dict[tuple[int, int, int], int] = {}
        self._offsets: dict[tuple[int, int, int, int, int], int] = {}
        self._minutes: dict[str, tuple[int, int, int, int, int, int]] = {}
        #: where the timestamp fast_iso last accepted ends
        self.last_end = 0

    # -- building a time -------------------------------------------------------------
    def _day(self, y: int, mo: int, d: int) -> int:
        key = (y, mo, d)
        days = self._days.get(key)
        if days is None:
            days = date(y, mo, d).toordinal() - _EPOCH_ORD  # ValueError when invalid
            if len(self._days) > 100_000:
                self._days.clear()
            self._days[key] = days
        return days

    def _local_offset(self, y: int, mo: int, d: int, h: int, mi: int) -> int:
        if self._utc:
            return 0
        key = (y, mo, d, h, mi)
        off = self._offsets.get(key)
        if off is None:
            delta = datetime(y, mo, d, h, mi, tzinfo=self.tz).utcoffset()
            off = int(delta.total_seconds()) if delta is not None else 0
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            self._offsets[key] = off
        return off

    def civil(
        self,
        ymdhms: tuple[int, int, int, int, int, int],
        frac: int,
        offset: int | None,
        flags: int = 0,
    ) -> Stamp:
        """UTC ns for a wall-clock time; ``offset`` None means 'no zone: use tz'."""
        y, mo, d, h, mi, s = ymdhms
        if s == 60:  # a leap second: the last instant of the minute
            s, frac = 59, NS - 1
        if h > 23 or mi > 59 or s > 59 or y < 1970 or y > 2099:
            return INVALID
        try:
            days = self._day(y, mo, d)
            if offset is None:
                offset = self._local_offset(y, mo, d, h, mi)
                flags |= Flag.ZONE_ASSUMED
        except (ValueError, OverflowError):
            return INVALID
        ns = ((days * 86400 + h * 3600 + mi * 60 + s) - offset) * NS + frac
        if not MIN_NS < ns < MAX_NS:
            return INVALID
        return Stamp(ns, int(flags))

    def _yearless(self, groups: tuple[str | None, ...], month: int | None = None) -> Stamp:
        """klog (mo, d, h, mi, s, frac) or syslog (d, h, mi, s, frac with ``month``) fields."""
        if self.ref_year is None or self.ref_ns is None:
            return INVALID
        if month is None:
            mo_s, d_s, h_s, mi_s, s_s, frac_s = groups
            mo = int(mo_s or 0)
        else:
            d_s, h_s, mi_s, s_s, frac_s = groups
            mo = month
        d, h, mi, s = int(d_s or 0), int(h_s or 0), int(mi_s or 0), int(s_s or 0)
        frac = _frac_ns(frac_s)
        flags = int(Flag.YEAR_ASSUMED)
        for year in (self.ref_year, self.ref_year - 1, self.ref_year - 2, self.ref_year - 3):
            st = self.civil((year, mo, d, h, mi, s), frac, None, flags)
            if st is INVALID:
                continue  # 29 February of a year that has none: an earlier one
            if st.ns <= self.ref_ns + _REF_SLACK_S * NS:
                return st
        return INVALID

    def _iso(self, m: re.Match[str]) -> Stamp:
        y, mo, d, h, mi, s, frac, zone, zone2 = m.groups()
        try:
            offset = _offset_s(zone or zone2)
        except ValueError:
            return INVALID
        return self.civil(
            (int(y), int(mo), int(d), int(h), int(mi), int(s or 0)), _frac_ns(frac), offset
        )

    def fast_iso(self, t: str, p: int, need_zone: bool = False) -> Stamp | None:
        """The common RFC 3339 shapes at ``p``, fast; None: use the full parser.

        ``YYYY-MM-DD[T ]HH:MM:SS[.frac]`` then ``Z``, ``±HH:MM`` or nothing
        (nothing only when followed by the end or a space and no zone word).
        Sets :attr:`last_end` to where the timestamp ends.
        """
        m = _FAST.match(t, p)
        if m is None:
            return None
        key, sec, frac, zone = m.groups()
        base = self._minutes.get(key)
        if base is None:
            base = self._minute(key)
            if base is None:
                return None
        s = int(sec)
        if s > 59:
            return None
        end = m.end()
        if zone is None:
            if need_zone or _ZONE_AFTER.match(t, end):
                return None
            _b, y, mo, d, h, mi = base
            offset = self._local_offset(y, mo, d, h, mi)
            flags = _ZONE_ASSUMED
        elif zone in ("Z", "z"):
            offset = flags = 0
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                return None
            offset = (hours * 3600 + minutes * 60) * (-1 if zone[0] == "-" else 1)
            flags = 0
        ns = (base[0] + s - offset) * NS + (int((frac + "00000000")[:9]) if frac else 0)
        self.last_end = end
        if not MIN_NS < ns < MAX_NS:
            return INVALID
        return Stamp(ns, flags)

    def _minute(self, key: str) -> tuple[int, int, int, int, int, int] | None:
        y, mo, d = int(key[:4]), int(key[5:7]), int(key[8:10])
        h, mi = int(key[11:13]), int(key[14:16])
        if h > 23 or mi > 59 or y < 1970 or y > 2099:
            return None
        try:
            days = self._day(y, mo, d)
        except ValueError:
            return None
        base = (days * 86400 + h * 3600 + mi * 60, y, mo, d, h, mi)
        if len(self._minutes) > 100_000:
            self._minutes.clear()
        self._minutes[key] = base
        return base

    # -- whole values ----------------------------------------------------------------
    def epoch(self, value: int | float, digits: int | None = None) -> Stamp:
        """Epoch seconds, millis, micros or nanos, told apart by magnitude."""
        if isinstance(value, float) and not math.isfinite(value):
            return INVALID
        if value <= 0:
            return INVALID
        mag = abs(value) if digits is None else 10 ** (digits - 1)
        if mag < 1e11:
            scale = NS
        elif mag < 1e14:
            scale = 1_000_000
        elif mag < 1e17:
            scale = 1_000
        else:
            scale = 1
        ns = int(value) * scale if isinstance(value, int) else round(value * scale)
        if not MIN_NS < ns < MAX_NS:
            return INVALID
        return Stamp(ns, 0)

    def _epoch_text(self, sign: str, whole: str, frac: str | None) -> Stamp:
        if sign:
            return INVALID
        w = int(whole)
        if w == 0:
            return INVALID
        base = self.epoch(w, len(whole.lstrip("0")) or 1)
        if base is INVALID or not frac:
            return base
        unit = base.ns // w  # ns per unit
        ns = base.ns + int((frac + "0" * 18)[:18]) * unit // 10**18
        return Stamp(ns, 0) if ns < MAX_NS else INVALID

    def value(self, value: object) -> Stamp | None:
        """A JSON or logfmt value that should be a time; None if it is not one."""
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return self.epoch(value)
        if not isinstance(value, str):
            return None
        text = value.strip().strip('"').strip()
        if not text:
            return None
        m = _EPOCH_TEXT.fullmatch(text)
        if m:
            return self._epoch_text(m.group(1), m.group(2), m.group(3))
        if text in ("NaN", "nan", "Infinity", "-Infinity", "inf", "-inf"):
            return INVALID
        st = self.line(text)
        return st

    # -- lines -----------------------------------------------------------------------
    def line(self, text: str) -> Stamp | None:
        """The line's own time; None when it has none; INVALID when it is absurd."""
        if not text:
            return None
        c = text[0]
        if "0" <= c <= "9":
            st = self.fast_iso(text, 0)
            if st is not None:
                return st
        elif c == "{" or (c in " \t" and text.lstrip()[:1] == "{"):
            found = self._json(text)
            if found is None or isinstance(found, Stamp):
                return found
        pos = _PREFIX.match(text)
        p = pos.end() if pos else 0
        c = text[p : p + 1]
        if c.isdigit():
            m = _ISO.match(text, p)
            if m:
                return self._iso(m)
            m = _GO.match(text, p)
            if m:
                y, mo, d, h, mi, s, frac = m.groups()
                ymdhms = (int(y), int(mo), int(d), int(h), int(mi), int(s))
                return self.civil(ymdhms, _frac_ns(frac), None)
            m = _ISO_BASIC.match(text, p)
            if m:
                return self._iso(m)
            m = _EPOCH_START.match(text, p)
            if m:
                return self._epoch_text("", m.group(1), m.group(2))
        elif c in "IWEF":
            m = _KLOG.match(text, p)
            if m:
                return self._yearless(m.groups())
        if c[:1].isupper():
            m = _SYSLOG.match(text, p)
            if m:
                return self._yearless(m.groups()[1:], MONTHS[m.group(1)])
        return self._search(text)

    def _search(self, text: str) -> Stamp | None:
        """Formats whose time is not at the start: CLF, logfmt, ISO after a few words."""
        if "/" in text:
            m = _CLF.search(text, 0, 512)
            if m:
                d, mon, y, h, mi, s, frac, zone = m.groups()
                try:
                    offset = _offset_s(zone)
                except ValueError:
                    return INVALID
                ymdhms = (int(y), MONTHS[mon], int(d), int(h), int(mi), int(s))
                return self.civil(ymdhms, _frac_ns(frac), offset)
        if "=" in text:
            m = _LOGFMT.search(text)
            if m:
                raw = m.group(1)
                if raw.startswith('"'):
                    raw = raw[1:-1]
                st = self.value(raw)
                if st is not None:
                    return st
        m = _ISO.search(text, 0, _HEAD)
        if m and not any(ch.isdigit() for ch in text[: m.start()]):
            return self._iso(m)
        return None

    def _json(self, text: str) -> Stamp | bool | None:
        """A JSON line's time field; False when the line is not a JSON object."""
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return False
        if not isinstance(obj, dict):
            return False
        for key in JSON_TIME_KEYS:
            if key in obj:
                st = self.value(obj[key])
                if st is not None:
                    return st
        return None


_UTC_CLOCK = LogClock()


def rfc3339_ns(text: str) -> int | None:
    """A runtime envelope's RFC 3339 time (zone required) as UTC ns; None if not one."""
    st = _UTC_CLOCK.fast_iso(text, 0, need_zone=True)
    if st is not None:
        if st is INVALID or _UTC_CLOCK.last_end != len(text):
            return None
        return st.ns
    m = _ISO.fullmatch(text)
    if m is None or not (m.group(8) or m.group(9)):
        return None
    st = _UTC_CLOCK._iso(m)
    return None if st is INVALID else st.ns


def parse_user_time(text: str, tz: tzinfo = UTC, *, end_of_day: bool = False) -> int:
    """A time typed by a user (``--from``/``--to``) as UTC ns.

    Accepts RFC 3339 / ISO 8601 (a time without a zone is in ``tz``), a date
    (``2026-11-23``: its midnight, or the next midnight with ``end_of_day``),
    ``@SECONDS[.frac]`` (epoch) or any form :meth:`LogClock.value` reads.
    Raises ValueError with a message naming the accepted forms.
    """
    s = text.strip()
    clock = LogClock(tz)
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", s)
    if m:
        st = clock.civil((int(m[1]), int(m[2]), int(m[3]), 0, 0, 0), 0, None)
        if st is not INVALID:
            return st.ns + (86400 * NS if end_of_day else 0)
    elif s.startswith("@"):
        st2 = clock.value(s[1:])
        if st2 is not None and st2 is not INVALID:
            return st2.ns
    else:
        st3 = clock.value(s)
        if st3 is not None and st3 is not INVALID:
            return st3.ns
    raise ValueError(
        f"not a time: {text!r} (use e.g. 2026-11-23T15:55:00Z, 2026-11-23 15:55, "
        "2026-11-23, or @1795449300)"
    )
