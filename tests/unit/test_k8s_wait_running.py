"""wait_running: the agent's start judged on each watched change, and the fallbacks.

The watch and the GET are our own callables (collectors/k8s/inject.py takes them);
the real watch against a real API server is exercised by every e2e capture
(tests/e2e/test_k8s_capture.py, and test_k8s_rbac.py with exactly docs/rbac.yaml's
rights).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from collectors.k8s.inject import wait_running
from forensics.errors import AccessDenied, ExuviaError

AGENT = "exuvia-agent-1"


def pod(rv: int, state: dict[str, Any] | None) -> dict[str, Any]:
    statuses = [{"name": AGENT, "state": state, "image": "img"}] if state is not None else []
    return {
        "metadata": {"resourceVersion": str(rv)},
        "status": {"phase": "Running", "ephemeralContainerStatuses": statuses},
    }


CREATING = {"waiting": {"reason": "ContainerCreating"}}
RUNNING = {"running": {"startedAt": "2026-12-07T20:00:00Z"}}


class Api:
    """Pods by GET in turn (the last one repeats) and, per watch, the changes it yields."""

    def __init__(self, gets: list[dict[str, Any]], watches: list[Any]) -> None:
        self.gets, self.watches = gets, watches
        self.got = 0
        self.watched: list[tuple[str, float]] = []

    def get(self) -> dict[str, Any]:
        self.got += 1
        return self.gets[min(self.got, len(self.gets)) - 1]

    def watch(self, since: str, secs: float) -> Iterator[dict[str, Any]]:
        self.watched.append((since, secs))
        changes = self.watches.pop(0) if self.watches else []
        if isinstance(changes, Exception):
            raise changes
        yield from changes


def test_a_watched_change_to_running_returns_at_once() -> None:
    api = Api([pod(1, None)], [[pod(2, CREATING), pod(3, RUNNING)]])
    t0 = time.monotonic()
    got, st = wait_running(api.get, AGENT, 30, "the agent", watch=api.watch)
    assert "running" in st["state"] and got["metadata"]["resourceVersion"] == "3"
    assert api.got == 1 and api.watched[0][0] == "1"  # watched from the version read
    assert time.monotonic() - t0 < 0.4  # no poll interval slept


def test_an_ended_watch_reads_the_pod_again_and_watches_from_there() -> None:
    api = Api([pod(1, CREATING), pod(5, CREATING)], [[], [pod(6, RUNNING)]])
    _got, st = wait_running(api.get, AGENT, 30, "the agent", watch=api.watch)
    assert "running" in st["state"]
    assert api.got == 2 and [w[0] for w in api.watched] == ["1", "5"]


def test_a_refused_watch_falls_back_to_polling() -> None:
    refused = AccessDenied("forbidden: cannot watch pods", "watch", "pods")
    api = Api([pod(1, CREATING), pod(2, CREATING), pod(3, RUNNING)], [refused])
    _got, st = wait_running(api.get, AGENT, 30, "the agent", poll=0.01, watch=api.watch)
    assert "running" in st["state"]
    assert len(api.watched) == 1 and api.got == 3  # never watched again; polled


def test_a_fatal_reason_in_a_watched_change_is_raised_not_swallowed() -> None:
    pull = {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
    api = Api([pod(1, CREATING)], [[pod(2, pull)]])
    with pytest.raises(ExuviaError, match="cannot start: ErrImagePull"):
        wait_running(api.get, AGENT, 30, "the agent", watch=api.watch)
    assert api.got == 1


def test_the_timeout_bounds_the_watch_slices() -> None:
    api = Api([pod(1, CREATING)], [])  # every watch ends empty
    with pytest.raises(ExuviaError, match=r"did not start within 0\.3s \(last: ContainerCreating"):
        wait_running(api.get, AGENT, 0.3, "the agent", watch=api.watch)
    assert all(secs <= 0.3 for _since, secs in api.watched)


def test_without_a_watch_it_polls() -> None:
    api = Api([pod(1, CREATING), pod(2, RUNNING)], [])
    _got, st = wait_running(api.get, AGENT, 30, "the agent", poll=0.01)
    assert "running" in st["state"] and api.got == 2 and api.watched == []
