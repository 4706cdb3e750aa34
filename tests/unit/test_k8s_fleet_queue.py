"""The fleet's scheduler (collectors/k8s/fleetqueue.run_queue) with stand-in work items:
its bounds, its wake-up on a finished item (not on a poll), and its stop. Its use by
FleetCapture is tests/unit/test_k8s_fleet_schedule.py and tests/e2e/test_k8s_fleet.py."""

from __future__ import annotations

import threading
import time

from collectors.k8s import fleetqueue
from collectors.k8s.fleetqueue import run_queue


def _run(items: list[str], work: object, **kw: object) -> None:
    run_queue(items, work, node_of=lambda i: i.split("/")[0], label_of=str,  # type: ignore[arg-type]
              stop=kw.pop("stop", threading.Event()), **kw)  # type: ignore[arg-type]  # fmt: skip


def test_the_parallel_and_per_node_bounds_hold_and_every_item_runs() -> None:
    lock = threading.Lock()
    now: dict[str, int] = {"n1": 0, "n2": 0}
    peak: dict[str, int] = {"n1": 0, "n2": 0, "all": 0}
    done: list[str] = []

    def work(item: str) -> None:
        node = item.split("/", maxsplit=1)[0]
        with lock:
            now[node] += 1
            peak[node] = max(peak[node], now[node])
            peak["all"] = max(peak["all"], sum(now.values()))
        time.sleep(0.02)
        with lock:
            now[node] -= 1
            done.append(item)

    items = [f"n{i % 2 + 1}/p{i}" for i in range(12)] + ["n1/x1", "n1/x2"]
    _run(list(items), work, parallel=3, ahead=2)
    assert sorted(done) == sorted(items)
    assert peak["n1"] == 2 and peak["n2"] <= 2 and peak["all"] == 3


def test_a_finished_item_wakes_the_scheduler_at_once_not_at_the_next_tick() -> None:
    """One at a time: each next item starts, and the run returns, on the finished
    item's notification. Polling every TICK would take about TICK per item."""
    starts: list[float] = []
    ends: list[float] = []

    def work(_item: str) -> None:
        starts.append(time.monotonic())
        ends.append(time.monotonic())

    n = 10
    t0 = time.monotonic()
    _run([f"n1/p{i}" for i in range(n)], work, parallel=1, ahead=1)
    returned = time.monotonic()
    assert len(starts) == n
    gaps = [b - a for a, b in zip(ends, starts[1:], strict=False)]
    # generous for a loaded machine, far below what a poll every TICK would cost
    assert max(gaps) < fleetqueue.TICK * 0.8, gaps
    assert returned - ends[-1] < fleetqueue.TICK * 0.8
    assert returned - t0 < n * fleetqueue.TICK / 2


def test_a_stop_drops_the_items_not_started_and_waits_for_those_running() -> None:
    stop = threading.Event()
    ran: list[str] = []
    stopped: list[int] = []
    release = threading.Event()

    def work(item: str) -> None:
        ran.append(item)
        if item == "n1/p0":
            stop.set()
            assert release.wait(10)

    def on_stop() -> None:
        stopped.append(1)
        release.set()

    queue = [f"n1/p{i}" for i in range(5)]
    _run(queue, work, parallel=1, ahead=1, stop=stop, on_stop=on_stop)
    assert ran == ["n1/p0"] and queue == [] and stopped
