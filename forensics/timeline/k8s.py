"""Kubernetes events and state transitions (``artifacts/k8s/``) as timeline events.

Written by the k8s:// capture (docs/kubernetes.md): each record already has
its time as UTC ns (``ts_ns``); an event whose own times were all missing
carries ``time_inferred`` and is flagged so.
"""

from __future__ import annotations

import json
from typing import Any

from forensics.timeline.events import Flag, Kind, Source
from forensics.timeline.fs import _int
from forensics.timeline.runtime import timed_records
from forensics.timeline.sink import Sink

EVENTS_MEMBER = "artifacts/k8s/events.jsonl"
TRANSITIONS_MEMBER = "artifacts/k8s/transitions.jsonl"
_K8S = int(Source.K8S)
_TRANSITION_KINDS = {
    "container.started": Kind.CONTAINER_STARTED,
    "container.exited": Kind.CONTAINER_EXITED,
}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def extract_k8s_events(data: bytes | None, sink: Sink) -> None:
    """One k8s.event per core/v1 Event about the pod."""
    if data is None:
        return
    mid = sink.member(EVENTS_MEMBER)
    for lineno, ts, rec in timed_records(data, EVENTS_MEMBER, sink):
        raw_obj = rec.get("object")
        obj: dict[str, Any] = raw_obj if isinstance(raw_obj, dict) else {}
        entity = f"{_s(obj.get('kind')).lower() or 'object'}:{_s(obj.get('namespace'))}/"
        entity += _s(obj.get("name"))
        if _s(rec.get("container")):
            entity = f"container:{rec['container']}"
        count = _int(rec.get("count"))
        msg = f"{_s(rec.get('type')) or 'Event'} {_s(rec.get('reason'))}: {_s(rec.get('message'))}"
        if count is not None and count > 1:
            msg += f" (x{count})"
        flags = int(Flag.TIME_INFERRED) if rec.get("time_inferred") else 0
        attrs = {k: rec.get(k) for k in ("reason", "type", "count", "time_from", "same_pod")}
        attrs["object"] = obj
        sink.event(
            (_K8S, int(Kind.K8S_EVENT), ts, None, flags, entity, msg[:4096], mid, lineno,
             json.dumps(attrs, ensure_ascii=False, default=str))
        )  # fmt: skip


def extract_k8s_transitions(data: bytes | None, sink: Sink) -> None:
    """container.started/exited and pod state changes the API reported."""
    if data is None:
        return
    mid = sink.member(TRANSITIONS_MEMBER)
    for lineno, ts, rec in timed_records(data, TRANSITIONS_MEMBER, sink):
        what = _s(rec.get("transition")) or "?"
        kind = _TRANSITION_KINDS.get(what, Kind.K8S_EVENT)
        container = _s(rec.get("container"))
        entity = f"container:{container}" if container else f"pod:{_s(rec.get('pod'))}"
        detail = [
            f"{k}={rec[k]}"
            for k in ("reason", "exit_code", "signal", "condition", "status", "from")
            if rec.get(k) not in (None, "")
        ]
        msg = f"{what} {container}".rstrip() + (f" ({', '.join(detail)})" if detail else "")
        attrs = {k: v for k, v in rec.items() if k not in ("ts_ns", "ts", "kind")}
        sink.event(
            (_K8S, int(kind), ts, None, 0, entity, msg[:4096], mid, lineno,
             json.dumps(attrs, ensure_ascii=False, default=str))
        )  # fmt: skip
