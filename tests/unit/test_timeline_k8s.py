"""Kubernetes events and transitions from a k8s:// bundle become timeline events."""

from __future__ import annotations

from pathlib import Path

from forensics.timeline import Flag, Query, open_timeline
from tests.unit.test_timeline_support import jsonl, make_bundle

T0 = 1_795_000_000_000_000_000


def test_k8s_events_and_transitions_are_on_the_timeline(tmp_path: Path) -> None:
    events = [
        {"kind": "k8s.event", "ts_ns": T0 + 5, "type": "Normal", "reason": "Pulled",
         "message": "Container image already present", "count": 3,
         "object": {"kind": "Pod", "namespace": "prod", "name": "api-1"}, "container": "app"},
        {"kind": "k8s.event", "ts_ns": T0 + 9, "type": "Warning", "reason": "BackOff",
         "message": "Back-off restarting failed container", "time_inferred": True,
         "object": {"kind": "Pod", "namespace": "prod", "name": "api-1"}},
        {"kind": "k8s.event", "type": "Normal", "reason": "NoTime"},  # counted, not dropped
    ]  # fmt: skip
    transitions = [
        {"kind": "k8s.transition", "ts_ns": T0 + 1, "transition": "container.started",
         "container": "app", "from": "lastState"},
        {"kind": "k8s.transition", "ts_ns": T0 + 2, "transition": "container.exited",
         "container": "app", "reason": "Error", "exit_code": 137, "from": "lastState"},
        {"kind": "k8s.transition", "ts_ns": T0 + 3, "transition": "pod.condition",
         "pod": "api-1", "condition": "Ready", "status": "False"},
    ]  # fmt: skip
    bundle = make_bundle(
        tmp_path / "k.exv",
        raw_members=[
            ("artifacts/k8s/events.jsonl", jsonl(events)),
            ("artifacts/k8s/transitions.jsonl", jsonl(transitions)),
        ],
    )
    tl = open_timeline(bundle, cache_dir=tmp_path / "cache")
    evs = tl.events(Query(sources=("k8s",)), limit=50)
    got = [(e.ts - T0, e.kind, e.entity) for e in evs]
    assert got == [
        (1, "container.started", "container:app"),
        (2, "container.exited", "container:app"),
        (3, "k8s.event", "pod:api-1"),
        (5, "k8s.event", "container:app"),
        (9, "k8s.event", "pod:prod/api-1"),
    ]
    assert "exit_code=137" in evs[1].message and "reason=Error" in evs[1].message
    assert evs[3].message == "Normal Pulled: Container image already present (x3)"
    assert evs[4].flags & Flag.TIME_INFERRED and not evs[3].flags & Flag.TIME_INFERRED
    assert tl.count(Query(kinds=("k8s.event",), text="BackOff")) == 1
    assert tl.meta["counts"]["no_time"] == 1  # the event without a time is counted
