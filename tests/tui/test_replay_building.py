"""Replay of a never-opened bundle: the first screen while the store is built.

A real bundle and a real build, held between two chunks by a gate in the build's
own hand-over (our code) so the app is looked at in a known state: the test
waits for the app to have seen exactly the chunks committed so far, never for
a fixed time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from forensics.timeline import Query, open_timeline
from forensics.timeline.growing import open_growing
from forensics.timeline.store import StoreSink
from tests.support.many_events import build
from tests.tui.conftest import static_text, wait_for
from tests.unit.test_timeline_growing import small_chunks
from tui.replay.app import make_app

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)
TOTAL = 6000 * 3 + 2000 + 3  # file entries (m+b, a, c), log lines, process + container


class Gate:
    """Holds the build after its third chunk is sent, until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held = threading.Event()
        self.release = threading.Event()
        self.sent = 0
        self.store: Path | None = None
        hand_over = StoreSink._hand_over

        def gated(sink: StoreSink, last: bool = False) -> None:
            hand_over(sink, last)
            if sink._chunks == 4 and not self.held.is_set():
                self.sent, self.store = sink.records, sink.store
                self.held.set()
                self.release.wait(120)

        monkeypatch.setattr(StoreSink, "_hand_over", gated)


@pytest.fixture
def many(tmp_path: Path) -> Path:
    d = tmp_path / "case"
    d.mkdir()
    return build(d / "many.exv")


def keys(rows: list) -> list[tuple[int, int]]:  # type: ignore[type-arg]
    return [(e.ts, e.id) for e in rows]


async def caught_up(pilot: Any, app: Any, gate: Gate, *, full_screen: bool) -> None:
    """Wait until the build is held at the gate and the app shows every record sent so
    far (a whole screen of rows, or at least one)."""

    def shown() -> bool:
        if not (gate.held.is_set() and app.building is not None and app.window is not None):
            return False
        rows = len(app.window.rows)
        enough = rows == app.window.height if full_screen else rows > 0
        return app.building["records"] == gate.sent and enough

    await wait_for(pilot, shown, timeout=60)


async def test_first_screen_while_building_then_the_finished_timeline(
    many: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_chunks(monkeypatch)
    gate = Gate(monkeypatch)
    app = make_app(many)
    async with app.run_test(size=SIZE) as pilot:
        try:
            # the app has polled the store until it shows every chunk committed so far
            await caught_up(pilot, app, gate, full_screen=True)
            assert app.tl is None and app.total is None  # no total, no position yet
            so_far = app.building["events"]
            assert 0 < so_far < TOTAL
            status = static_text(app.query_one("#status"))
            assert f"building: {so_far:,} events so far" in status
            assert "order may still change" in status
            assert " of " not in status.split("—")[0]  # never an "N of M" total
            # the rows are the earliest of what is committed, in timeline order
            assert gate.store is not None
            probe = open_growing(gate.store)
            assert probe is not None
            expected = keys(probe.events(Query(), limit=app.window.height))
            probe.close()
            assert keys(app.window.rows) == expected
            assert expected == sorted(expected)
            # moving works on what is there
            await pilot.press("down", "down")
            assert app.window.cursor == 2
            # search works on what is there (the log lines are not in yet), and says so
            app.search("needle3")
            await pilot.pause()
            status = static_text(app.query_one("#status"))
            assert "filters and search apply to what is built so far" in status
            app.search(None)
            # what needs the finished store says so in one line, and opens nothing yet
            await pilot.press("e")
            assert app.screen is app.screen_stack[0]
            await pilot.press("F")  # the files view: opens once the build is done
            await pilot.pause()
            assert app.screen is app.screen_stack[0]
        finally:
            gate.release.set()
        # the build goes on and ends: the same window, on the finished store
        await wait_for(pilot, lambda: app.tl is not None and app.total is not None, timeout=60)
        assert app.building is None and app.growing is None
        await wait_for(pilot, lambda: type(app.screen).__name__ == "FileScreen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
        assert not app.tl.path.parent.name.startswith(".timeline-")
        await wait_for(pilot, lambda: f"of {TOTAL:,}" in static_text(app.query_one("#status")))
        assert "building" not in static_text(app.query_one("#status"))
        await pilot.press("home")
        with open_timeline(many) as tl:
            first_page = keys(tl.events(Query(), limit=app.window.height))
        assert keys(app.window.rows) == first_page
        await wait_for(
            pilot, lambda: "event 1 of" in static_text(app.query_one("#status")), timeout=30
        )


async def test_new_chunks_refill_a_window_left_on_the_earliest_events(
    many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_chunks(monkeypatch)
    gate = Gate(monkeypatch)
    app = make_app(many)
    async with app.run_test(size=SIZE) as pilot:
        try:
            await caught_up(pilot, app, gate, full_screen=False)
            held_rows = keys(app.window.rows)
        finally:
            gate.release.set()
        await wait_for(pilot, lambda: app.tl is not None and app.total is not None, timeout=60)
        # untouched, the window followed the earliest events as they arrived
        with open_timeline(many) as tl:
            first_page = keys(tl.events(Query(), limit=app.window.height))
        assert keys(app.window.rows) == first_page
        assert app.window.cursor == 0
        assert held_rows != first_page  # earlier events did arrive after the held state
