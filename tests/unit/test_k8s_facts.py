"""Kubernetes facts as artifacts: events, statuses, transitions, owners, logs, node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collectors.k8s.facts import (
    container_of,
    event_record,
    event_records,
    log_facts,
    node_summary,
    status_records,
    transition_records,
    ts_ns,
    write_facts,
)
from forensics.bundle.reader import BundleReader
from forensics.bundle.writer import BundleWriter
from forensics.errors import AccessDenied

T0 = 1795449747000000000  # 2026-11-23T16:02:27Z


def test_timestamps() -> None:
    assert ts_ns("2026-11-23T16:02:27Z") == T0
    assert ts_ns("2026-11-23T16:02:27.729610567Z") == T0 + 729610567
    assert ts_ns("2026-11-23T16:02:27.123456Z") == T0 + 123456000
    assert ts_ns(None) is None and ts_ns("") is None and ts_ns("yesterday") is None


def test_event_record_prefers_the_events_own_last_time() -> None:
    ev = {
        "metadata": {"name": "lab.1", "namespace": "ns", "uid": "e1",
                     "creationTimestamp": "2026-11-23T16:02:20Z"},
        "involvedObject": {"kind": "Pod", "name": "lab", "uid": "p1",
                           "fieldPath": "spec.containers{app}"},
        "reason": "Started", "message": "Started container app", "type": "Normal",
        "firstTimestamp": "2026-11-23T16:02:25Z", "lastTimestamp": "2026-11-23T16:02:27Z",
        "count": 2, "source": {"component": "kubelet", "host": "vm"},
    }  # fmt: skip
    rec = event_record(ev, "p1")
    assert rec["kind"] == "k8s.event" and rec["container"] == "app"
    assert rec["ts_ns"] == T0 and rec["time_from"] == "last" and rec["time_inferred"] is False
    assert rec["first_ns"] == T0 - 2 * 10**9 and rec["count"] == 2
    assert rec["ts"] == "2026-11-23T16:02:27.000000000Z"
    assert rec["same_pod"] is True and event_record(ev, "other")["same_pod"] is False
    # events.k8s.io style: only eventTime (micro seconds)
    ev2 = dict(ev, firstTimestamp=None, lastTimestamp=None, eventTime="2026-11-23T16:02:27.500000Z")
    assert event_record(ev2)["ts_ns"] == T0 + 500_000_000
    assert event_record(ev2)["time_from"] == "event_time"
    # nothing of its own: the creation time, flagged
    ev3 = dict(ev, firstTimestamp=None, lastTimestamp=None)
    r3 = event_record(ev3)
    assert r3["time_inferred"] is True and r3["ts_ns"] == T0 - 7 * 10**9
    assert [r["name"] for r in event_records([ev, ev3], None)] == ["lab.1", "lab.1"]
    assert event_records([ev, ev3], None)[0]["ts_ns"] < event_records([ev, ev3], None)[1]["ts_ns"]


def test_container_of() -> None:
    assert container_of("spec.containers{app}") == "app"
    assert container_of("spec.ephemeralContainers{exuvia-1}") == "exuvia-1"
    assert container_of(None) is None and container_of("spec") is None


POD: dict[str, Any] = {
    "metadata": {"name": "lab", "namespace": "ns", "uid": "p1",
                 "creationTimestamp": "2026-11-23T16:02:20Z",
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web-1", "controller": True}]},
    "spec": {"nodeName": "vm", "containers": [{"name": "app"}]},
    "status": {
        "startTime": "2026-11-23T16:02:21Z",
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2026-11-23T16:02:28Z"}],
        "containerStatuses": [{
            "name": "app", "image": "img", "imageID": "sha256:aa", "containerID": "containerd://c2",
            "ready": True, "started": True, "restartCount": 1,
            "state": {"running": {"startedAt": "2026-11-23T16:02:27Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                         "startedAt": "2026-11-23T16:02:22Z",
                                         "finishedAt": "2026-11-23T16:02:26Z",
                                         "containerID": "containerd://c1"}},
        }],
        "ephemeralContainerStatuses": [{
            "name": "exuvia-abc123", "image": "collector", "imageID": "sha256:bb",
            "restartCount": 0, "state": {"running": {"startedAt": "2026-11-23T16:05:00Z"}},
        }],
    },
}  # fmt: skip


def test_status_records() -> None:
    recs = status_records(POD)
    app, agent = recs
    assert app["kind"] == "k8s.container_status" and app["type"] == "app"
    assert app["restart_count"] == 1 and app["image_id"] == "sha256:aa"
    assert app["state"]["state"] == "running" and app["state"]["started_ns"] == T0
    last = app["last_state"]
    assert last["state"] == "terminated" and last["reason"] == "OOMKilled"
    assert last["finished_ns"] == T0 - 10**9 and last["exitCode"] == 137
    assert agent["type"] == "ephemeral" and agent["last_state"] is None


def test_transitions() -> None:
    recs = transition_records(POD)
    kinds = [(r["transition"], r.get("container") or r.get("condition")) for r in recs]
    assert kinds == [
        ("pod.created", None),
        ("pod.started", None),
        ("container.started", "app"),  # the previous instance
        ("container.exited", "app"),
        ("container.started", "app"),  # this one
        ("pod.condition", "Ready"),
        ("container.started", "exuvia-abc123"),
    ]
    exited = recs[3]
    assert exited["reason"] == "OOMKilled" and exited["exit_code"] == 137
    assert exited["container_id"] == "containerd://c1" and exited["from"] == "lastState"
    assert all(isinstance(r["ts_ns"], int) for r in recs)
    assert [r["ts_ns"] for r in recs] == sorted(r["ts_ns"] for r in recs)


def test_log_facts() -> None:
    log = b"2026-11-23T16:02:27.5Z first\n2026-11-23T16:02:28Z second\n"
    assert log_facts(log, log) == (T0 + 500_000_000, T0 + 10**9)
    assert log_facts(b"", b"") == (None, None)


def test_node_summary() -> None:
    node = {"metadata": {"name": "vm"}, "status": {"nodeInfo": {
        "kernelVersion": "6.1", "osImage": "Debian", "containerRuntimeVersion": "containerd://1.6",
        "kubeletVersion": "v1.32.2", "architecture": "amd64"}}}  # fmt: skip
    s = node_summary(node)
    assert (s["name"], s["kernel"], s["os_image"], s["runtime"]) == (
        "vm", "6.1", "Debian", "containerd://1.6")  # fmt: skip


class FakeApi:
    """In-memory answers (unit test of the assembly; the real API is in tests/e2e)."""

    def __init__(self) -> None:
        self.log_calls: list[tuple[str, bool]] = []

    def list_events(self, namespace: str, field_selector: str) -> list[dict[str, Any]]:
        assert "involvedObject.name=lab" in field_selector
        return [{"metadata": {"name": "e"}, "involvedObject": {"name": "lab"},
                 "reason": "Killing", "lastTimestamp": "2026-11-23T16:02:26Z"}]  # fmt: skip

    def get_node(self, name: str) -> dict[str, Any]:
        raise AccessDenied('forbidden (403): not allowed to get nodes: cannot get resource "nodes"')

    def get_owner(self, namespace: str, api_version: str, kind: str, name: str) -> Any:
        if kind == "ReplicaSet":
            return {"kind": "ReplicaSet", "metadata": {"name": name, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                {"apiVersion": "example.com/v1", "kind": "Rollout", "name": "r"}]}}  # fmt: skip
        if kind == "Deployment":
            return {"kind": "Deployment", "metadata": {"name": name}}
        return None

    def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, limit_bytes: int
    ) -> Iterator[bytes]:
        self.log_calls.append((container, previous))
        if container == "exuvia-abc123":
            raise AccessDenied("no logs for you")
        yield b"2026-11-23T16:02:27Z hello\n"
        yield b"2026-11-23T16:02:28Z " + (b"x" * 100) + b"\n"


def test_write_facts(tmp_path: Path) -> None:
    path = tmp_path / "facts.exv"
    api = FakeApi()
    with path.open("wb") as fh:
        w = BundleWriter(fh, compress="none")
        rep = write_facts(w, api, {"before": True}, POD, max_log_bytes=64)
        w.finish({})
    got = BundleReader(path).read_members(lambda _n: True)
    assert json.loads(got["artifacts/k8s/pod-before.json"]) == {"before": True}
    assert json.loads(got["artifacts/k8s/pod.json"])["metadata"]["uid"] == "p1"
    owners = [json.loads(x) for x in got["artifacts/k8s/owners.jsonl"].splitlines()]
    assert [(o["depth"], o["reference"]["kind"], bool(o["object"])) for o in owners] == [
        (1, "ReplicaSet", True), (2, "Deployment", True), (2, "Rollout", False)]  # fmt: skip
    assert rep.owners == ["ReplicaSet/web-1", "Deployment/web", "Rollout/r"]
    assert api.log_calls == [("app", False), ("app", True), ("exuvia-abc123", False)]
    assert got["logs/k8s/app.previous.log"].startswith(b"2026-11-23T16:02:27Z hello")
    logs = [json.loads(x) for x in got["artifacts/k8s/logs.jsonl"].splitlines()]
    assert [(x["container"], x["previous"]) for x in logs] == [("app", False), ("app", True)]
    assert logs[0]["format"] == "k8s-timestamps" and logs[0]["truncated"] is True
    assert "artifacts/k8s/node.json" not in got and rep.node is None
    reasons = {s.subject: s.reason for s in rep.skips}
    assert "not allowed to get nodes" in reasons["node vm"]
    assert "exuvia does not read example.com/v1 Rollout" in reasons["owner Rollout/r"]
    assert "no logs for you" in reasons["log of exuvia-abc123"]
    assert "longer than --max-file-size" in reasons["log of app"]
    assert rep.counts == {"k8s.owners": 3, "k8s.events": 1, "k8s.containers": 2,
                          "k8s.transitions": 7, "k8s.logs": 2}  # fmt: skip
