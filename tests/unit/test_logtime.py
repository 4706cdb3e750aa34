"""Log timestamp parsing: every supported format, zones, years, and absurd input."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from forensics.timeline.events import Flag
from forensics.timeline.logtime import (
    INVALID,
    MAX_NS,
    MIN_NS,
    LogClock,
    Stamp,
    parse_user_time,
    resolve_tz,
    rfc3339_ns,
    tz_name,
)

NS = 1_000_000_000
ZONE = int(Flag.ZONE_ASSUMED)
YEAR = int(Flag.YEAR_ASSUMED)


def ns(dt: datetime, frac_ns: int = 0) -> int:
    """The expected value, computed by the standard library (not by the code under test)."""
    return int(dt.timestamp()) * NS + frac_ns


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


REF = ns(utc(2026, 11, 23, 16, 0, 0))  # the capture's time, for year-less formats
clock = LogClock(UTC, ref_ns=REF)


# -- RFC 3339 / ISO 8601 ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected", "flags"),
    [
        ("2026-11-23T15:55:00Z msg", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23T15:55:00.582394610Z INFO x", ns(utc(2026, 11, 23, 15, 55), 582394610), 0),
        ("2026-11-23T15:55:00.5Z", ns(utc(2026, 11, 23, 15, 55), 500_000_000), 0),
        ("2026-11-23T15:55:00.123456789123Z", ns(utc(2026, 11, 23, 15, 55), 123456789), 0),
        ("2026-11-23t15:55:00z lower-case T and Z", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23T17:55:00+02:00 east", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23T10:55:00-05:00 west", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23T17:55:00+0200 no colon", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23T17:55:00+02 hours only", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23 15:55:00 UTC spaced zone", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23 17:55:00 +0200 spaced offset", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23 15:55:00,123 python", ns(utc(2026, 11, 23, 15, 55), 123_000_000), ZONE),
        ("2026-11-23 15:55:00 no zone", ns(utc(2026, 11, 23, 15, 55)), ZONE),
        ("2026-11-23T15:55 no seconds", ns(utc(2026, 11, 23, 15, 55)), ZONE),
        ("20261123T155500Z basic format", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("20261123T175500.25+0200 basic", ns(utc(2026, 11, 23, 15, 55), 250_000_000), 0),
        ("[2026-11-23T15:55:00Z] bracketed", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("<34>1 2026-11-23T15:55:00.003Z h a - - x", ns(utc(2026, 11, 23, 15, 55), 3_000_000), 0),
        ("INFO 2026-11-23T15:55:00Z level first", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("[main] WARN 2026-11-23 15:55:00 two words first", ns(utc(2026, 11, 23, 15, 55)), ZONE),
        ("  2026-11-23T15:55:00Z leading spaces", ns(utc(2026, 11, 23, 15, 55)), 0),
        ("2026-11-23T23:59:60Z leap second", ns(utc(2026, 11, 23, 23, 59, 59), NS - 1), 0),
    ],
)  # fmt: skip
def test_iso_8601_forms(line: str, expected: int, flags: int) -> None:
    assert clock.line(line) == Stamp(expected, flags)


def test_a_date_in_the_message_is_not_the_line_time() -> None:
    # digits before the date: not a leading timestamp
    assert clock.line("id=12 certificate expires 2027-01-01T00:00:00Z") is None
    # a date far into the line is not searched for
    assert clock.line("x" * 80 + " 2026-11-23T15:55:00Z") is None


# -- Go log, syslog, klog, CLF ------------------------------------------------------------
def test_go_log_and_nginx_error_log() -> None:
    assert clock.line("2026/11/23 15:55:00 listening on :8080") == Stamp(
        ns(utc(2026, 11, 23, 15, 55)), ZONE
    )
    assert clock.line("2026/11/23 15:55:00.250 [error] 7#7: *1 open()") == Stamp(
        ns(utc(2026, 11, 23, 15, 55), 250_000_000), ZONE
    )


def test_syslog_takes_the_year_of_the_reference() -> None:
    st = clock.line("Nov 23 15:55:00 host sshd[12]: Accepted publickey")
    assert st == Stamp(ns(utc(2026, 11, 23, 15, 55)), YEAR | ZONE)
    # single-digit day, padded with a space; a priority in front; fractions
    st = clock.line("<13>Nov  3 01:02:03.5 host app: x")
    assert st == Stamp(ns(utc(2026, 11, 3, 1, 2, 3), 500_000_000), YEAR | ZONE)


def test_syslog_after_the_reference_is_last_year() -> None:
    # a December line read in a log captured in January belongs to the year before
    jan = LogClock(UTC, ref_ns=ns(utc(2027, 1, 5)))
    assert jan.line("Dec 31 23:59:59 host x") == Stamp(
        ns(utc(2026, 12, 31, 23, 59, 59)), YEAR | ZONE
    )
    assert jan.line("Jan  4 10:00:00 host x") == Stamp(ns(utc(2027, 1, 4, 10)), YEAR | ZONE)
    # up to two days ahead of the reference (clock skew) stays in the same year
    assert jan.line("Jan  6 10:00:00 host x") == Stamp(ns(utc(2027, 1, 6, 10)), YEAR | ZONE)


def test_syslog_29_february_goes_back_to_a_leap_year() -> None:
    c = LogClock(UTC, ref_ns=ns(utc(2027, 6, 1)))
    assert c.line("Feb 29 12:00:00 host x") == Stamp(ns(utc(2024, 2, 29, 12)), YEAR | ZONE)


def test_year_less_times_without_any_reference_are_invalid() -> None:
    assert LogClock(UTC).line("Nov 23 15:55:00 host x") is INVALID


def test_klog() -> None:
    st = clock.line("I1123 15:55:00.000123    1234 main.go:42] Starting")
    assert st == Stamp(ns(utc(2026, 11, 23, 15, 55), 123_000), YEAR | ZONE)
    st = clock.line("E0102 03:04:05.000000 1 x.go:1] failed")
    assert st == Stamp(ns(utc(2026, 1, 2, 3, 4, 5)), YEAR | ZONE)


def test_apache_common_and_combined_log() -> None:
    common = '10.0.0.1 - frank [23/Nov/2026:10:55:00 -0500] "GET / HTTP/1.1" 200 2326'
    assert clock.line(common) == Stamp(ns(utc(2026, 11, 23, 15, 55)), 0)
    combined = (
        '127.0.0.1 - - [23/Nov/2026:15:55:00 +0000] "GET /a?b=c HTTP/2.0" 404 153 '
        '"http://ref/" "Mozilla/5.0 (X11)"'
    )
    assert clock.line(combined) == Stamp(ns(utc(2026, 11, 23, 15, 55)), 0)


# -- logfmt, JSON, epochs -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected", "flags"),
    [
        ('level=info time="2026-11-23T15:55:00Z" msg="x"', ns(utc(2026, 11, 23, 15, 55)), 0),
        ("level=info ts=2026-11-23T15:55:00.1Z msg=x", ns(utc(2026, 11, 23, 15, 55), 10**8), 0),
        ("ts=1795449300.25 caller=main.go:1", ns(utc(2026, 11, 23, 15, 55), 250_000_000), 0),
        ("msg=x timestamp=1795449300123", ns(utc(2026, 11, 23, 15, 55), 123_000_000), 0),
        ('time="2026-11-23 15:55:00"', ns(utc(2026, 11, 23, 15, 55)), ZONE),
    ],
)
def test_logfmt(line: str, expected: int, flags: int) -> None:
    assert clock.line(line) == Stamp(expected, flags)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"time":"2026-11-23T15:55:00Z","msg":"x"}', ns(utc(2026, 11, 23, 15, 55))),
        ('{"level":"info","ts":1795449300.5}', ns(utc(2026, 11, 23, 15, 55), 500_000_000)),
        ('{"timestamp":1795449300000}', ns(utc(2026, 11, 23, 15, 55))),
        ('{"@timestamp":"2026-11-23T15:55:00.001Z"}', ns(utc(2026, 11, 23, 15, 55), 1_000_000)),
        ('{"ts":"1795449300123456"}', ns(utc(2026, 11, 23, 15, 55), 123_456_000)),
        ('{"datetime":"2026-11-23T16:55:00+01:00"}', ns(utc(2026, 11, 23, 15, 55))),
        ('  {"time":1795449300000000000}', ns(utc(2026, 11, 23, 15, 55))),
    ],
)
def test_json_lines(line: str, expected: int) -> None:
    assert clock.line(line) == Stamp(expected, 0)


def test_json_without_a_time_field_has_no_time() -> None:
    assert clock.line('{"msg":"no time here 2026-11-23T15:55:00Z"}') is None


def test_malformed_json_falls_back_to_the_text_formats() -> None:
    assert clock.line('{"msg": unterminated 2026') is None
    # not JSON, but a time the text formats find
    assert clock.line("{2026-11-23T15:55:00Z} odd") == Stamp(ns(utc(2026, 11, 23, 15, 55)), 0)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1795449300 started", ns(utc(2026, 11, 23, 15, 55))),
        ("1795449300.123456 started", ns(utc(2026, 11, 23, 15, 55), 123_456_000)),
        ("1795449300123 millis", ns(utc(2026, 11, 23, 15, 55), 123_000_000)),
        ("1795449300123456 micros", ns(utc(2026, 11, 23, 15, 55), 123_456_000)),
        ("1795449300123456789 nanos", ns(utc(2026, 11, 23, 15, 55), 123_456_789)),
    ],
)
def test_epochs_at_the_start(line: str, expected: int) -> None:
    assert clock.line(line) == Stamp(expected, 0)


def test_short_numbers_are_not_epochs() -> None:
    assert clock.line("200 OK") is None
    assert clock.line("12345 items") is None


# -- absurd input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "0000-01-01T00:00:00Z year zero",
        "9999-12-31T23:59:59Z year 9999",
        "1969-12-31T23:59:59Z before the epoch",
        "2100-01-01T00:00:00Z too far ahead",
        "2026-02-30T00:00:00Z thirty february",
        "2026-13-01T00:00:00Z month 13",
        "2026-11-23T25:00:00Z hour 25",
        "2026-11-23T15:61:00Z minute 61",
        "2026-11-23T15:55:00+24:00 offset out of range",
        '{"ts": -1795449300}',
        '{"ts": NaN}',
        '{"ts": Infinity}',
        '{"time": "-1"}',
        '{"ts": 1e300}',
        '{"time": 0}',
        "ts=-5 negative logfmt",
        "ts=99999999999999999999 huge epoch",
        '[23/Nov/2026:15:55:00 +9900] "GET /"',
    ],
)
def test_absurd_timestamps_are_invalid(line: str) -> None:
    assert clock.line(line) is INVALID
    assert INVALID.flags == Flag.TIME_INVALID


def test_epoch_helper_edges() -> None:
    assert clock.epoch(math.nan) is INVALID
    assert clock.epoch(-1) is INVALID
    assert clock.epoch(0) is INVALID
    assert clock.epoch(1795449300) == Stamp(ns(utc(2026, 11, 23, 15, 55)), 0)


def test_lines_without_time() -> None:
    for line in ("", "plain text", "Mon is a day", "I think so", "[x] y", "{}", '{"a": 1}'):
        assert clock.line(line) is None


@pytest.mark.parametrize(
    "junk",
    [
        "\x00\x01\x02", "\ufffd" * 50, "{" * 5000, "[" * 5000 + "2026", "9" * 100_000,
        "2026-11-23T" + "9" * 1000, "ts=" + '"' * 1000, "<" * 300, "Nov 99 99:99:99 x",
        "2026-11-23T15:55:00." + "1" * 100_000 + "Z",
    ],
)  # fmt: skip
def test_hostile_lines_never_raise(junk: str) -> None:
    st = clock.line(junk)
    assert st is None or isinstance(st, tuple)


# -- zones ----------------------------------------------------------------------------------------
def test_zone_for_naive_times_follows_dst() -> None:
    paris = LogClock(resolve_tz("Europe/Paris"), ref_ns=REF)
    winter = paris.line("2026-01-15 12:00:00 x")
    summer = paris.line("2026-07-15 12:00:00 x")
    assert winter == Stamp(ns(utc(2026, 1, 15, 11)), ZONE)
    assert summer == Stamp(ns(utc(2026, 7, 15, 10)), ZONE)
    # an explicit zone wins over --tz
    assert paris.line("2026-07-15T12:00:00Z x") == Stamp(ns(utc(2026, 7, 15, 12)), 0)
    # year-less formats use the zone too
    assert paris.line("Jul 15 12:00:00 host x") == Stamp(ns(utc(2026, 7, 15, 10)), ZONE | YEAR)


def test_fixed_offset_zone() -> None:
    c = LogClock(resolve_tz("-05:00"))
    assert c.line("2026-11-23 10:55:00 x") == Stamp(ns(utc(2026, 11, 23, 15, 55)), ZONE)


def test_resolve_tz() -> None:
    assert resolve_tz("UTC") is UTC
    assert resolve_tz("utc") is UTC
    assert resolve_tz("+02:00").utcoffset(None) == timedelta(hours=2)
    assert resolve_tz("-0530").utcoffset(None) == timedelta(hours=-5, minutes=-30)
    assert isinstance(resolve_tz("America/New_York"), ZoneInfo)
    assert tz_name(resolve_tz("America/New_York")) == "America/New_York"
    assert tz_name(UTC) == "UTC"
    assert tz_name(timezone(timedelta(hours=2))) == "UTC+02:00"
    for bad in ("Mars/Olympus", "+25:00", "../../etc/passwd", "nonsense"):
        with pytest.raises(ValueError, match="time zone"):
            resolve_tz(bad)


# -- runtime envelopes' times ---------------------------------------------------------------------
def test_rfc3339_for_envelopes_needs_a_zone_and_nothing_else() -> None:
    assert rfc3339_ns("2026-11-23T15:55:00.582394610Z") == ns(utc(2026, 11, 23, 15, 55), 582394610)
    assert rfc3339_ns("2026-11-23T17:55:00.5+02:00") == ns(utc(2026, 11, 23, 15, 55), 500_000_000)
    for bad in (
        "2026-11-23T15:55:00",  # no zone
        "2026-11-23T15:55:00Zjunk",
        "2026-11-23T15:55:00Z+00:00",
        "0001-01-01T00:00:00Z",  # Docker's 'never'
        "",
        "stdout",
    ):
        assert rfc3339_ns(bad) is None, bad


# -- user input (--from/--to) ------------------------------------------------------------------
def test_parse_user_time() -> None:
    assert parse_user_time("2026-11-23T15:55:00Z") == ns(utc(2026, 11, 23, 15, 55))
    assert parse_user_time("2026-11-23") == ns(utc(2026, 11, 23))
    assert parse_user_time("2026-11-23", end_of_day=True) == ns(utc(2026, 11, 24))
    assert parse_user_time("@1795449300") == ns(utc(2026, 11, 23, 15, 55))
    paris = resolve_tz("Europe/Paris")
    assert parse_user_time("2026-11-23 16:55", paris) == ns(utc(2026, 11, 23, 15, 55))
    with pytest.raises(ValueError, match="not a time"):
        parse_user_time("yesterday")


def renderings(dt: datetime, frac: int) -> list[str]:
    """The same instant written as different programs write it (by strftime, not by us)."""
    east = dt.astimezone(timezone(timedelta(hours=5, minutes=30)))
    west = dt.astimezone(timezone(timedelta(hours=-8)))
    return [
        f"{dt:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z",
        f"{dt:%Y-%m-%d %H:%M:%S}.{frac:09d}+00:00",
        f"{east:%Y-%m-%dT%H:%M:%S}.{frac:09d}+05:30",
        f"{west:%Y-%m-%dT%H:%M:%S}.{frac:09d}-0800",
        f"{dt:%Y%m%dT%H%M%S}.{frac:09d}Z",
        f'{{"ts": "{dt:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"}}',
        f"time={dt:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z",
    ] + ([f"{int(dt.timestamp())}.{frac:09d}"] if dt.year >= 2002 else [])


def test_round_trip_against_the_standard_library() -> None:
    """Many instants, rendered several ways, parse back to the same ns."""
    step = 7_919_000_003_001  # ~2.2 hours and some ns, so every field varies
    t = ns(utc(1971, 1, 1))
    end = ns(utc(2099, 1, 1))
    count = 0
    while t < end:
        dt = datetime.fromtimestamp(t // NS, tz=UTC)
        frac = t % NS
        for text in renderings(dt, frac):
            assert clock.line(text + " msg") == Stamp(t, 0), text
        t += step * 37
        count += 1
    assert count > 1000


def test_any_text_gives_a_time_in_range_or_none() -> None:
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=3000, deadline=None)
    @hyp.given(
        st.one_of(
            st.text(),
            st.from_regex(r"\A[0-9TZ:.,+\- /\[\]<>{}\"a-z=]{0,60}\Z"),
            st.builds(
                lambda a, b: a + b,
                st.sampled_from(["2026-11-23T", "Nov 23 ", "I1123 ", '{"ts":', "ts=", "[23/"]),
                st.text(max_size=40),
            ),
        )
    )
    def check(text: str) -> None:
        out = clock.line(text)
        assert out is None or out is INVALID or MIN_NS < out.ns < MAX_NS

    check()


def test_random_instants_round_trip() -> None:
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=2000, deadline=None)
    @hyp.given(st.integers(min_value=ns(utc(1970, 1, 2)), max_value=ns(utc(2099, 12, 30))))
    def check(t: int) -> None:
        dt = datetime.fromtimestamp(t // NS, tz=UTC)
        for text in renderings(dt, t % NS):
            assert clock.line(text) == Stamp(t, 0), text

    check()
