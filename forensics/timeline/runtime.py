"""Container lifecycle (``artifacts/target.json``) and capture actions (``custody.jsonl``).

Lifecycle times come from what the runtime said at capture: created and
started times, and for Docker/Podman the ``State.FinishedAt`` of a container
that exited (or of its previous run). runc reports no start time: the init
process's start time stands in for it, flagged as inferred.
"""

from __future__ import annotations

import json
from typing import Any

from forensics.timeline.events import Flag, Kind, Source
from forensics.timeline.fs import _int, parse_json_line
from forensics.timeline.logtime import rfc3339_ns
from forensics.timeline.sink import Sink

TARGET_MEMBER = "artifacts/target.json"
CUSTODY_MEMBER = "custody.jsonl"
_RUNTIME = int(Source.RUNTIME)
_CUSTODY = int(Source.CUSTODY)


def container_entity(target: dict[str, Any] | None) -> str:
    """``container:NAME`` (or id, or URI) for a target."""
    if not isinstance(target, dict):
        return "container:?"
    for key in ("name", "container_id", "uri"):
        val = target.get(key)
        if isinstance(val, str) and val:
            return f"container:{val}"
    return "container:?"


def _state(target: dict[str, Any]) -> dict[str, Any]:
    facts = target.get("runtime_facts")
    if not isinstance(facts, dict):
        return {}
    inspect = facts.get("inspect")
    state = inspect.get("State") if isinstance(inspect, dict) else None
    return state if isinstance(state, dict) else {}


def extract_lifecycle(target: Any, sink: Sink, init_start_ns: int | None) -> None:
    """container.created / started / exited events from the target's runtime facts."""
    if not isinstance(target, dict):
        if target is not None:
            sink.problem("record_malformed", TARGET_MEMBER, 1, "target.json is not an object")
        return
    mid = sink.member(TARGET_MEMBER)
    entity = container_entity(target)
    runtime = target.get("runtime") if isinstance(target.get("runtime"), str) else "?"
    image = target.get("image") if isinstance(target.get("image"), str) else None
    base = {
        "runtime": runtime,
        "container_id": target.get("container_id"),
        "name": target.get("name"),
        "image": image,
        "image_digest": target.get("image_digest"),
        "uri": target.get("uri"),
        "status_at_capture": target.get("status"),
    }
    base = {k: v for k, v in base.items() if isinstance(v, str)}

    def emit(kind: Kind, ts: int, flags: int, msg: str, **extra: Any) -> None:
        attrs = dict(base, **{k: v for k, v in extra.items() if v is not None})
        sink.event((_RUNTIME, int(kind), ts, None, flags, entity, msg, mid, 1, json.dumps(attrs)))

    created = _int(target.get("created_ns"))
    what = f"{runtime} container {entity.removeprefix('container:')}" + (
        f" (image {image})" if image else ""
    )
    if created is not None:
        emit(Kind.CONTAINER_CREATED, created, 0, f"{what} created")
    elif target.get("created_ns") is not None:
        sink.problem("time_invalid", TARGET_MEMBER, 1, "created_ns is not an integer")
    started = _int(target.get("started_ns"))
    state = _state(target)
    restarts = state.get("RestartCount") if isinstance(state.get("RestartCount"), int) else None
    if started is not None:
        emit(Kind.CONTAINER_STARTED, started, 0, f"{what} started", restart_count=restarts)
    elif init_start_ns is not None:
        emit(
            Kind.CONTAINER_STARTED,
            init_start_ns,
            int(Flag.TIME_INFERRED),
            f"{what} started (time of its init process's start)",
            time_from="init process start",
        )
    finished_raw = state.get("FinishedAt")
    finished = rfc3339_ns(finished_raw) if isinstance(finished_raw, str) else None
    if finished is not None:
        code = state.get("ExitCode")
        code = code if isinstance(code, int) else None
        previous = started is not None and finished < started
        running = str(target.get("status") or "").lower() == "running"
        if previous or not running:
            note = " (its previous run)" if previous else ""
            emit(
                Kind.CONTAINER_EXITED,
                finished,
                0,
                f"{what} exited{note}" + (f" with code {code}" if code is not None else ""),
                exit_code=code,
            )


def timed_records(data: bytes, member: str, sink: Sink) -> list[tuple[int, int, dict[str, Any]]]:
    """(line number, ts_ns, record) of every JSON line with an integer ``ts_ns``;
    malformed lines and lines without a time are counted as problems."""
    out: list[tuple[int, int, dict[str, Any]]] = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        rec, why = parse_json_line(raw)
        if not isinstance(rec, dict):
            sink.problem("record_malformed", member, lineno, why or "not an object")
            continue
        ts = _int(rec.get("ts_ns"))
        if ts is None:
            sink.problem("no_time", member, lineno, "entry without ts_ns")
            continue
        out.append((lineno, ts, rec))
    return out


def extract_custody(data: bytes | None, sink: Sink) -> None:
    """One capture.action event per custody entry."""
    if data is None:
        return
    mid = sink.member(CUSTODY_MEMBER)
    for lineno, ts, rec in timed_records(data, CUSTODY_MEMBER, sink):
        action = str(rec.get("action") or "?")
        examiner = str(rec.get("examiner") or "?")
        host = str(rec.get("host") or "?")
        details = rec.get("details")
        summary = ""
        if isinstance(details, dict) and details:
            summary = ": " + ", ".join(
                f"{k}={_short(v)}" for k, v in sorted(details.items()) if v is not None
            )
        msg = f"{action} by {examiner} on {host}{summary}"
        attrs = {"seq": rec.get("seq"), "action": action, "examiner": examiner, "host": host}
        if isinstance(details, dict):
            attrs["details"] = details
        sink.event(
            (
                _CUSTODY,
                int(Kind.CAPTURE_ACTION),
                ts,
                None,
                0,
                f"examiner:{examiner}@{host}",
                msg[:4096],
                mid,
                lineno,
                json.dumps(attrs, ensure_ascii=False, default=str),
            )
        )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "…"
