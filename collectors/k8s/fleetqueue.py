"""The fleet's scheduler: start each pod's capture in a thread, within the bounds.

At most ``parallel`` captures run at once, and at most ``ahead`` per node. A capture's
thread says it has finished (under the condition) as its very last act, and the
scheduler wakes on that notification: it never waits for a poll to notice a thread
has ended (a 0.5 s poll cost up to half a second per freed slot and as much again
between the last bundle's seal and the case's). The timeout left on the wait is for
``tick`` (progress) and for ``stop``, which a signal handler sets without the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
#: seconds between progress ticks (and between checks of ``stop``) while waiting
TICK = 0.5


def run_queue(
    queue: list[T],
    work: Callable[[T], None],
    *,
    node_of: Callable[[T], str],
    label_of: Callable[[T], str],
    parallel: int,
    ahead: int,
    stop: threading.Event,
    on_stop: Callable[[], None] = lambda: None,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Run ``work(item)`` for every item of ``queue`` (in order, within the bounds);
    returns when every started item has finished. Once ``stop`` is set, the items not
    started are dropped (``queue`` is left empty) and ``on_stop`` is called at each wake."""
    cond = threading.Condition()
    running = 0
    per_node: dict[str, int] = {}
    threads: list[threading.Thread] = []

    def run(item: T, node: str) -> None:
        nonlocal running
        try:
            work(item)
        finally:
            with cond:
                running -= 1
                per_node[node] -= 1
                cond.notify_all()

    while True:
        with cond:
            if stop.is_set():
                queue.clear()  # never started: sealed as failed, "not started: …"
                on_stop()
            for item in list(queue):
                if running >= parallel:
                    break
                node = node_of(item)
                if per_node.get(node, 0) >= ahead:
                    continue
                queue.remove(item)
                per_node[node] = per_node.get(node, 0) + 1
                running += 1
                t = threading.Thread(
                    target=run, args=(item, node), daemon=True, name=label_of(item)
                )
                threads.append(t)
                t.start()
            if not queue and not running:
                break
            cond.wait(timeout=TICK)  # woken by a finished item; else a tick
        tick()
    for t in threads:
        t.join()
