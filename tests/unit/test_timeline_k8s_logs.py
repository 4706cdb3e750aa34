"""Container logs a k8s:// capture read through the API (logs/k8s/*) on the timeline.

The bundles are written by the real BundleWriter in the order a k8s:// capture
writes them: the agent's members (target, processes, runtime logs) first, then
the client's Kubernetes facts and the API logs (collectors/k8s/assemble.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.bundle import BundleWriter, verify_bundle
from forensics.timeline import Flag, Query, open_timeline
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_support import NS, T0, jsonl, target

TS = "2026-11-23T15:55:"  # T0 is 2026-11-23T15:55:00Z


def k8s_source(member: str, container: str, previous: bool, **extra: Any) -> dict[str, Any]:
    rec = {
        "kind": "log_source",
        "origin": "k8s-api",
        "format": "k8s-timestamps",
        "member": member,
        "container": container,
        "type": "app",
        "previous": previous,
    }
    rec.update(extra)
    return rec


def k8s_bundle(
    path: Path,
    api_logs: dict[str, bytes],
    sources: list[dict[str, Any]] | None,
    runtime_log: bytes | None = None,
) -> Path:
    """A k8s:// bundle: the agent's members, then the API logs and their logs.jsonl."""
    tgt = target(uri="k8s://prod/api-1/app", runtime="k8s", name="app", container_id="c1",
                 log_paths=[], log_format=None)  # fmt: skip
    with path.open("wb") as raw:
        w = BundleWriter(raw, compress="zstd")
        w.add_bytes("artifacts/target.json", json.dumps(tgt).encode() + b"\n")
        w.add_bytes("artifacts/processes.jsonl", b"")
        w.add_bytes("artifacts/filesystem.jsonl", b"")
        logs = []
        if runtime_log is not None:
            w.add_bytes("logs/runtime/01-0.log", runtime_log)
            logs.append(
                {
                    "kind": "log_source",
                    "origin": "runtime",
                    "format": "cri",
                    "member": "logs/runtime/01-0.log",
                    "host_path": "/var/log/pods/x/0.log",
                }
            )
        w.add_bytes("artifacts/logs.jsonl", jsonl(logs))
        w.add_bytes("custody.jsonl", b"")
        for name, data in api_logs.items():
            w.add_bytes(name, data)
        if sources is not None:
            w.add_bytes("artifacts/k8s/logs.jsonl", jsonl(sources))
        w.finish({"acquisition": {"start_ns": T0, "end_ns": T0 + 3600 * NS}, "complete": True,
                  "target": tgt})  # fmt: skip
    assert verify_bundle(path).ok
    return path


def timeline(path: Path) -> Timeline:
    return open_timeline(path, cache_dir=path.parent / "cache")


def test_api_logs_current_and_previous_are_log_lines(tmp_path: Path) -> None:
    current = (
        f"{TS}10.5Z {TS}09Z INFO main[1]: ready\n"  # a time of its own, after the API's
        f"{TS}11.000000001Z no time of its own\n"
        f"{TS}12Z \n"  # the container printed an empty line
        "not an API line at all\n"
    ).encode()
    previous = f"{TS}01Z {TS}01Z ERROR main[1]: crashed\n".encode()
    b = k8s_bundle(
        tmp_path / "k.exv",
        {"logs/k8s/app.log": current, "logs/k8s/app.previous.log": previous},
        [k8s_source("logs/k8s/app.log", "app", False),
         k8s_source("logs/k8s/app.previous.log", "app", True)],
    )  # fmt: skip
    tl = timeline(b)
    ev = tl.events(Query(sources=("log",)), limit=50)
    got = [(e.ts - T0, e.message, e.attrs.get("time_from"), e.attrs["previous"]) for e in ev]
    assert got == [
        (1 * NS, f"{TS}01Z ERROR main[1]: crashed", None, True),
        (9 * NS, f"{TS}09Z INFO main[1]: ready", None, False),
        (11 * NS + 1, "no time of its own", "receive time", False),
        (12 * NS, "", "receive time", False),
        (12 * NS, "not an API line at all", "previous line", False),
    ]
    for e in ev:
        assert e.kind == "log.line" and e.entity == "container:app"
        assert e.attrs["origin"] == "k8s-api" and e.attrs["format"] == "k8s-timestamps"
        assert e.attrs["container"] == "app" and e.attrs["stream"] == "stdio"
    assert ev[1].attrs["receive_ts"] == 10 * NS + NS // 2 + T0
    assert ev[1].flags == Flag.NONE and ev[2].flags == Flag.TIME_INFERRED
    assert ev[0].ref.member == "logs/k8s/app.previous.log" and ev[2].ref.line == 2
    assert tl.meta["counts"]["log_envelope_malformed"] == 1
    assert tl.count(Query(text="crashed")) == 1


def test_api_logs_without_their_logs_jsonl_are_still_read(tmp_path: Path) -> None:
    """A bundle cut before artifacts/k8s/logs.jsonl: the container comes from the name."""
    b = k8s_bundle(
        tmp_path / "k.exv",
        {"logs/k8s/side-car.previous.log": f"{TS}03Z hello\n".encode()},
        None,
    )
    (e,) = timeline(b).events(Query(sources=("log",)))
    assert (e.ts, e.entity, e.message) == (T0 + 3 * NS, "container:side-car", "hello")
    assert e.attrs["previous"] is True and e.attrs["origin"] == "k8s-api"


def test_a_log_source_naming_a_member_outside_logs_k8s_is_ignored(tmp_path: Path) -> None:
    """A hostile logs.jsonl cannot make the timeline read other members as the API's logs."""
    b = k8s_bundle(
        tmp_path / "k.exv",
        {"logs/k8s/app.log": f"{TS}03Z fine\n".encode()},
        [k8s_source("custody.jsonl", "app", False), k8s_source("logs/k8s/app.log", "app", False)],
    )
    ev = timeline(b).events(Query(sources=("log",)))
    assert [(e.message, e.ref.member) for e in ev] == [("fine", "logs/k8s/app.log")]


def test_lines_the_runtime_copy_already_has_are_not_repeated(tmp_path: Path) -> None:
    """Both copies of the target container's log: each line once, with its stream from
    the runtime's copy; lines only the API has (later, or another container's) stay."""
    runtime = (
        f"{TS}10Z stdout F first line\n"
        f"{TS}11Z stderr P split in \n"
        f"{TS}11.5Z stderr F two pieces\n"
        f"{TS}12Z stdout F same text\n"
    ).encode()
    api = (
        f"{TS}10Z first line\n"
        f"{TS}11Z split in two pieces\n"  # the kubelet joins the pieces under the first time
        f"{TS}12Z same text\n"
        f"{TS}13Z same text\n"  # same text, another time: a line of its own
        f"{TS}14Z written after the agent read the runtime's file\n"
    ).encode()
    sidecar = f"{TS}10Z first line\n".encode()  # another container: not a duplicate
    b = k8s_bundle(
        tmp_path / "k.exv",
        {"logs/k8s/app.log": api, "logs/k8s/sidecar.log": sidecar},
        [k8s_source("logs/k8s/app.log", "app", False),
         k8s_source("logs/k8s/sidecar.log", "sidecar", False)],
        runtime_log=runtime,
    )  # fmt: skip
    tl = timeline(b)
    ev = tl.events(Query(sources=("log",)), limit=50)
    got = [(e.ts - T0, e.entity, e.message, e.attrs["origin"], e.attrs["stream"]) for e in ev]
    assert got == [
        (10 * NS, "container:app", "first line", "runtime", "stdout"),
        (10 * NS, "container:sidecar", "first line", "k8s-api", "stdio"),
        (11 * NS, "container:app", "split in two pieces", "runtime", "stderr"),
        (12 * NS, "container:app", "same text", "runtime", "stdout"),
        (13 * NS, "container:app", "same text", "k8s-api", "stdio"),
        (14 * NS, "container:app", "written after the agent read the runtime's file",
         "k8s-api", "stdio"),
    ]  # fmt: skip
    assert tl.meta["counts"]["log_lines_duplicate"] == 3


def test_a_previous_instance_is_not_deduplicated_against_other_times(tmp_path: Path) -> None:
    """Lines are equal only with the same receive time: a restarted container printing
    the same text again is two lines."""
    runtime = f"{TS}20Z stdout F starting\n".encode()
    b = k8s_bundle(
        tmp_path / "k.exv",
        {"logs/k8s/app.previous.log": f"{TS}05Z starting\n".encode(),
         "logs/k8s/app.log": f"{TS}20Z starting\n".encode()},
        [k8s_source("logs/k8s/app.previous.log", "app", True),
         k8s_source("logs/k8s/app.log", "app", False)],
        runtime_log=runtime,
    )  # fmt: skip
    tl = timeline(b)
    ev = tl.events(Query(sources=("log",)))
    got = [(e.ts - T0, e.attrs["origin"], e.attrs.get("previous")) for e in ev]
    assert got == [(5 * NS, "k8s-api", True), (20 * NS, "runtime", None)]
    assert tl.meta["counts"]["log_lines_duplicate"] == 1
