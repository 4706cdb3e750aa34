"""Fleet capture's scheduling and its case, over a stand-in for our own KubeClient
wrapper whose pods all vanish before their capture (so every capture fails at its
first API read). The whole path, with real pods and agents, is tests/e2e/test_k8s_fleet.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from collectors.capture import CaptureOptions
from collectors.k8s.capture import K8sOptions
from collectors.k8s.client import ClusterInfo, NotFound
from collectors.k8s.fleet import FleetCapture
from collectors.k8s.selection import parse_fleet
from forensics.case import load_case, verify_case
from forensics.errors import OutputError


class GonePods:
    """Lists pods on nodes n1/n2; every later read of a pod finds it gone."""

    def __init__(self, n: int, state: dict[str, Any]) -> None:
        self.n = n
        self.state = state
        self.info = ClusterInfo("https://api.test", "test", "ctx", "prod")
        self.namespace = "prod"

    def list_pods(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return [
            {"metadata": {"name": f"p{i}", "namespace": namespace, "uid": f"u{i}",
                          "resourceVersion": "1", "labels": {"app": "web"}},
             "spec": {"nodeName": f"n{i % 2 + 1}", "containers": [{"name": "app"}]},
             "status": {"phase": "Running"}}
            for i in range(self.n)
        ]  # fmt: skip

    def list_pods_all_namespaces(self, label_selector: str) -> list[dict[str, Any]]:
        return self.list_pods("prod", label_selector)

    def get_owner(self, *a: Any) -> None:
        return None

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        node = f"n{int(name[1:]) % 2 + 1}"
        with self.state["lock"]:
            self.state["now"][node] += 1
            self.state["total"] += 1
            self.state["peak"][node] = max(self.state["peak"][node], self.state["now"][node])
            self.state["peak_total"] = max(self.state["peak_total"], self.state["total"])
        time.sleep(0.05)
        with self.state["lock"]:
            self.state["now"][node] -= 1
            self.state["total"] -= 1
        raise NotFound(f'pods "{name}" not found (get pods in namespace {namespace})')

    def close(self) -> None:
        pass


def _fleet(tmp_path: Path, n: int, **kw: Any) -> tuple[FleetCapture, dict[str, Any]]:
    state: dict[str, Any] = {"lock": threading.Lock(), "now": {"n1": 0, "n2": 0},
                             "peak": {"n1": 0, "n2": 0}, "total": 0, "peak_total": 0}  # fmt: skip
    opts = CaptureOptions(output=tmp_path / "case", examiner="tester", case="IR-1")
    f = FleetCapture(parse_fleet("k8s://prod", selector="app=web"), opts, K8sOptions(),
                     client_factory=lambda: GonePods(n, state), **kw)  # type: ignore[arg-type,return-value]  # fmt: skip
    return f, state


def test_the_bounds_hold_and_every_failure_is_recorded(tmp_path: Path) -> None:
    f, state = _fleet(tmp_path, 12, parallel=3, per_node=1, max_pods=12)
    res = f.run()
    # workers: per node one streaming and one starting its agent, at most --parallel in all
    assert max(state["peak"].values()) <= 2 and state["peak_total"] <= 3
    assert res.state == "failed" and res.exit_status == 4
    assert res.summary["failed"] == 12 and res.summary["pods"] == 12
    assert all("not found" in str(b["reason"]) for b in res.bundles)
    case = load_case(tmp_path / "case")
    assert case.case_id == "IR-1" and len(case.pods) == 12 and not case.captured
    report = verify_case(tmp_path / "case")
    assert report.ok, report.problems

    f, state = _fleet(tmp_path / "b", 12, parallel=3, per_node=4, max_pods=12)
    f.run()
    assert state["peak_total"] <= 3 and max(state["peak"].values()) <= 3


def test_a_non_empty_directory_is_refused_before_anything(tmp_path: Path) -> None:
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "old.exv").write_bytes(b"x")
    f, state = _fleet(tmp_path, 2)
    with pytest.raises(OutputError, match="not empty"):
        f.run()
    assert state["total"] == 0


def test_an_interrupt_before_the_start_leaves_every_bundle_not_started(tmp_path: Path) -> None:
    f, _state = _fleet(tmp_path, 3)
    f.interrupt("SIGTERM")
    res = f.run()
    assert res.state == "interrupted" and res.exit_status == 130
    assert {b["reason"] for b in res.bundles} == {"not started: SIGTERM"}


def test_at_most_per_node_streams_of_one_node_and_an_interrupt_frees_the_waiting(
    tmp_path: Path,
) -> None:
    """The stream slots (FleetCapture.stream_slot/stream_done) the agents' captures wait
    for: never more than --per-node of one node at once, other nodes unaffected; a
    worker still waiting when the fleet is interrupted stops waiting, without a slot."""
    f, _state = _fleet(tmp_path, 1, per_node=2)
    lock = threading.Lock()
    now: dict[str, int] = {"n1": 0, "n2": 0}
    peak: dict[str, int] = {"n1": 0, "n2": 0}

    def stream(node: str) -> None:
        f.stream_slot(node)
        with lock:
            now[node] += 1
            peak[node] = max(peak[node], now[node])
        time.sleep(0.05)
        with lock:
            now[node] -= 1
        f.stream_done(node)

    threads = [threading.Thread(target=stream, args=(n,)) for n in ["n1"] * 7 + ["n2"] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak == {"n1": 2, "n2": 2} and now == {"n1": 0, "n2": 0}

    assert f.stream_slot("n1") and f.stream_slot("n1")  # both slots taken
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(f.stream_slot("n1")))
    t.start()
    time.sleep(0.2)
    assert t.is_alive()  # waiting for a slot
    f.interrupt("SIGINT")
    t.join(5)
    assert not t.is_alive() and got == [False]  # not taken: its exec is then refused
