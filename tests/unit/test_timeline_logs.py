"""Log lines in the timeline: own times, runtime envelopes, untimed and broken lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.timeline import Flag, Query, open_timeline
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_support import (
    ACQ_END,
    NS,
    T0,
    make_bundle,
)


def build(tmp_path: Path, **kw: Any) -> Timeline:
    bundle = make_bundle(tmp_path / "b.exv", **kw)
    return open_timeline(bundle, cache_dir=tmp_path / "cache")


# -- logs --------------------------------------------------------------------------------------
def cri(ts: str, stream: str, tag: str, msg: str) -> str:
    return f"{ts} {stream} {tag} {msg}\n"


def test_cri_log_own_times_receive_times_and_partial_lines(tmp_path: Path) -> None:
    log = (
        cri("2026-11-23T15:55:10Z", "stdout", "F", "2026-11-23T15:55:09Z INFO own time")
        + cri("2026-11-23T15:55:11Z", "stderr", "F", "no time of its own")
        + cri("2026-11-23T15:55:12Z", "stdout", "P", "first half, ")
        + cri("2026-11-23T15:55:12.5Z", "stdout", "F", "second half")
        + cri("2026-11-23T15:55:13Z", "stdout", "F", "0000-01-01T00:00:00Z absurd")
        + "this line has no envelope\n"
    )
    tl = build(tmp_path, runtime_logs=[("cri", log.encode())])
    ev = tl.events(Query(sources=("log",)))
    got = [(e.ts, e.message, e.attrs.get("stream"), e.attrs.get("time_from")) for e in ev]
    s = 1_000_000_000
    assert got == [
        (T0 + 9 * s, "2026-11-23T15:55:09Z INFO own time", "stdout", None),
        (T0 + 11 * s, "no time of its own", "stderr", "receive time"),
        (T0 + 12 * s, "first half, second half", "stdout", "receive time"),
        (T0 + 13 * s, "0000-01-01T00:00:00Z absurd", "stdout", "receive time"),
        (T0 + 13 * s, "this line has no envelope", "stdio", "previous line"),
    ]
    assert ev[0].attrs["receive_ts"] == T0 + 10 * s
    assert ev[0].flags == Flag.NONE
    assert ev[1].flags == Flag.TIME_INFERRED
    assert ev[3].flags == Flag.TIME_INFERRED | Flag.TIME_INVALID
    assert ev[2].ref.line == 3  # the first piece
    assert ev[0].entity == "container:web"
    c = tl.meta["counts"]
    assert c["log_lines"] == 5
    assert c["log_lines_own_time"] == 1
    assert c["log_lines_receive_time"] == 3
    assert c["log_lines_previous_time"] == 1
    assert c["log_lines_joined"] == 1
    assert c["log_time_invalid"] == 1
    assert c["log_envelope_malformed"] == 1


def test_podman_k8s_file_log_with_zone_offsets(tmp_path: Path) -> None:
    log = (
        "2026-11-23T16:55:10.5+01:00 stdout F ready\n"
        "2026-11-23T10:55:11-05:00 stderr F 2026-11-23T15:55:11.25Z own time wins\n"
    )
    tl = build(tmp_path, runtime_logs=[("k8s-file", log.encode())])
    ev = tl.events(Query(sources=("log",)))
    assert [(e.ts, e.attrs["stream"]) for e in ev] == [
        (T0 + 10 * NS + NS // 2, "stdout"),
        (T0 + 11 * NS + NS // 4, "stderr"),
    ]
    assert ev[1].attrs["receive_ts"] == T0 + 11 * NS


def test_docker_json_file_log(tmp_path: Path) -> None:
    lines = [
        {"log": "2026-11-23T15:55:01Z up\n", "stream": "stdout", "time": "2026-11-23T15:55:02Z"},
        {"log": "a very long line split ", "stream": "stderr", "time": "2026-11-23T15:55:03Z"},
        {"log": "by docker\n", "stream": "stderr", "time": "2026-11-23T15:55:03.1Z"},
    ]  # fmt: skip
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines) + b'{"log": 5}\n'
    tl = build(tmp_path, runtime_logs=[("json-file", data)])
    ev = tl.events(Query(sources=("log",)))
    assert [(e.ts, e.message) for e in ev[:2]] == [
        (T0 + NS, "2026-11-23T15:55:01Z up"),
        (T0 + 3 * NS, "a very long line split by docker"),
    ]
    assert ev[1].attrs["stream"] == "stderr"
    assert tl.meta["counts"]["log_envelope_malformed"] == 1
    assert ev[2].message == '{"log": 5}'


def test_raw_target_log_untimed_lines_take_neighbours_times(tmp_path: Path) -> None:
    log = (
        b"banner without time\n"
        b"\n"
        b"Nov 23 15:55:05 host app[1]: first timed\n"
        b"  continuation of a stack trace\n"
        b"2026-11-23T15:55:07+00:00 next\n"
    )
    tl = build(tmp_path, target_logs={"/var/log/app/app.log": log})
    ev = tl.events(Query(entity="/var/log/app/app.log"))
    got = [(e.ts, e.message, e.attrs.get("time_from"), e.ref.line) for e in ev]
    assert got == [
        (T0 + 5 * NS, "banner without time", "next line", 1),
        (T0 + 5 * NS, "Nov 23 15:55:05 host app[1]: first timed", None, 3),
        (T0 + 5 * NS, "  continuation of a stack trace", "previous line", 4),
        (T0 + 7 * NS, "2026-11-23T15:55:07+00:00 next", None, 5),
    ]
    assert ev[1].flags == Flag.YEAR_ASSUMED | Flag.ZONE_ASSUMED
    assert ev[0].flags == Flag.TIME_INFERRED
    assert ev[0].ref.member == "files/var/log/app/app.log"
    assert tl.meta["counts"]["log_lines_blank"] == 1


def test_a_log_without_any_time_is_placed_at_the_log_or_capture_time(tmp_path: Path) -> None:
    tl = build(
        tmp_path,
        runtime_logs=[("raw", b"one\ntwo\n")],
        target_logs={"/srv/out.log": b"alpha\n"},
    )
    runtime = tl.events(Query(entity="container:web", sources=("log",)))
    assert [(e.ts, e.attrs["time_from"]) for e in runtime] == [
        (ACQ_END - NS, "log file time"),
        (ACQ_END - NS, "log file time"),
    ]
    target_log = tl.events(Query(entity="/srv/out.log"))
    assert [(e.ts, e.attrs["time_from"]) for e in target_log] == [(ACQ_END, "capture time")]
    assert tl.meta["counts"]["log_lines_fallback_time"] == 3


def test_overlong_and_invalid_utf8_lines_are_kept_and_flagged(tmp_path: Path) -> None:
    big = b"2026-11-23T15:55:01Z " + b"x" * (3 << 20)
    log = big + b"\n" + b"2026-11-23T15:55:02Z caf\xe9 \xff\n" + b"2026-11-23T15:55:03Z ok"
    tl = build(tmp_path, runtime_logs=[("raw", log)])
    ev = tl.events(Query(sources=("log",)))
    assert len(ev) == 3
    assert ev[0].flags == Flag.TRUNCATED
    assert ev[0].attrs["length"] == len(big)
    assert len(ev[0].message) == 1 << 20
    assert ev[0].ts == T0 + NS
    assert ev[1].flags == Flag.INVALID_UTF8
    assert ev[1].message == "2026-11-23T15:55:02Z caf\ufffd \ufffd"
    assert ev[2].message == "2026-11-23T15:55:03Z ok"  # no trailing newline: still a line
    c = tl.meta["counts"]
    assert (c["log_lines_truncated"], c["log_lines_invalid_utf8"]) == (1, 1)


def test_tz_applies_to_naive_log_times_and_is_recorded(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.exv", runtime_logs=[("raw", b"2026-11-23 16:55:00 x\n")])
    utc = open_timeline(bundle, cache_dir=tmp_path / "c")
    paris = open_timeline(bundle, cache_dir=tmp_path / "c", tz="Europe/Paris")
    assert utc.path != paris.path
    assert utc.events(Query(sources=("log",)))[0].ts == T0 + 3600 * NS
    assert paris.events(Query(sources=("log",)))[0].ts == T0
    assert paris.meta["tz"] == "Europe/Paris"
    assert paris.events(Query(sources=("log",)))[0].flags == Flag.ZONE_ASSUMED
