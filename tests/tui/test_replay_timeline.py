"""The replay app's timeline: paging, jumping, filters, search, detail, notes, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual import events

from forensics.notes import NotesFile
from forensics.timeline import Query, open_timeline
from tests.support.incident_bundle import ESCAPE, MARKUP, T0
from tests.tui.conftest import answer, line_text, ready, settled, static_text, wait_for
from tui.replay.app import make_app
from tui.replay.widgets.event_list import EventList
from tui.replay.widgets.histogram import HistogramStrip

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)


def all_events(bundle: Path) -> list[tuple[int, int]]:
    with open_timeline(bundle) as tl:
        return [(e.ts, e.id) for e in tl.events(Query())]


async def test_opens_verified_and_pages_through_every_event(incident: Path) -> None:
    expected = all_events(incident)
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        title = static_text(app.query_one("#title"))
        assert "verified ✓" in title and "runc://web-1" in title
        # the position in the status line is counted in the background after the first page
        await wait_for(pilot, lambda: "event 1 of 47" in static_text(app.query_one("#status")))
        seen = [(e.ts, e.id) for e in app.window.rows]
        # one event at a time to the end: the window slides, nothing skipped or repeated
        for _ in range(len(expected)):
            await pilot.press("down")
        seen += [(e.ts, e.id) for e in app.window.rows]
        ordered = sorted(set(seen))
        assert ordered == expected
        assert app.current() is not None and (app.current().ts, app.current().id) == expected[-1]
        await pilot.press("home")
        assert (app.current().ts, app.current().id) == expected[0]
        await pilot.press("end")
        assert (app.current().ts, app.current().id) == expected[-1]
        await pilot.press("pageup")
        assert app.window.rows[0] != expected[-1]
        await pilot.press("home", "pagedown")
        page = app.window.height
        assert (app.window.rows[0].ts, app.window.rows[0].id) in expected[1 : page + 1]
        await wait_for(pilot, lambda: app.position is not None)


async def test_small_window_keyset_paging_matches_the_store(incident: Path) -> None:
    expected = all_events(incident)
    app = make_app(incident)
    async with app.run_test(size=(120, 14)) as pilot:  # a few rows: many pages
        await ready(pilot)
        seen = []
        for _ in range(20):
            seen += [(e.ts, e.id) for e in app.window.rows]
            await pilot.press("pagedown")
        assert sorted(set(seen)) == expected
        for _ in range(20):
            await pilot.press("pageup")
        assert (app.window.rows[0].ts, app.window.rows[0].id) == expected[0]


async def test_mouse_wheel_and_click(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        lst = app.query_one(EventList)
        await pilot.click(EventList, offset=(10, 5))  # row 4 (the header is row 0)
        assert app.window.cursor == 4
        first = app.window.rows[0]
        for _ in range(5):  # the wheel, as the terminal reports it
            lst.post_message(events.MouseScrollDown(lst, 10, 5, 0, 1, 0, False, False, False))
            await pilot.pause()
        assert app.window.rows[0] != first or app.window.cursor > 4
        assert lst.has_focus


async def test_goto_time_and_histogram_click(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("g")
        inp = app.screen.query_one("#prompt-input")
        inp.value = "2026-11-22T22:23:20Z"  # T0 + 600 s: the implant starts
        await pilot.press("enter")
        cur = app.current()
        assert cur is not None and cur.ts == T0 + 600 * 1_000_000_000
        assert cur.entity == "pid:4107"
        bad = app.current()
        await answer(pilot, "g", "not a time")
        assert app.current() == bad  # a bad time moves nothing (and says why)
        strip = app.query_one(HistogramStrip)
        await wait_for(pilot, lambda: strip.hist is not None)
        await pilot.click(HistogramStrip, offset=(0, 0))
        assert app.current().ts == all_events(incident)[0][0]
        assert strip.view is not None


async def test_source_toggles_chips_and_the_filter_dialog(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")  # log
        await wait_for(pilot, lambda: app.total == 30)
        assert {e.source for e in app.window.rows} == {"log"}
        await settled(pilot, "chips")  # an async worker removes the chips and mounts them again
        assert app.query("#chip-source-log")
        await pilot.press("2")  # and proc
        await wait_for(pilot, lambda: app.total == 33)
        await settled(pilot, "chips")  # a click on a chip being replaced would be lost
        await pilot.click("#chip-source-log")  # removing a chip removes that filter
        await wait_for(pilot, lambda: app.total == 3)
        assert {e.source for e in app.window.rows} == {"proc"}
        await pilot.press("c")
        await wait_for(pilot, lambda: app.total == 47)
        # the dialog: entity prefix + text, combined
        await pilot.press("f")
        app.screen.query_one("#filter-entity").value = "/tmp/*"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.total is not None and app.total < 47)
        assert all(e.entity.startswith("/tmp/") for e in app.window.rows)
        await pilot.press("f")
        app.screen.query_one("#filter-start").value = "yesterday-ish"
        await pilot.press("ctrl+s")
        assert "from:" in static_text(app.screen.query_one("#filter-error"))
        await pilot.press("escape")
        assert app.filters.entity == "/tmp/*" and app.filters.start is None


async def test_search_counts_hits_and_n_and_N_walk_them(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "slash", "server")
        await wait_for(pilot, lambda: app.search_hits is not None)
        with open_timeline(incident) as tl:
            hits = tl.events(Query(text="server"))
        assert app.search_hits == len(hits) > 5
        assert app.current() == hits[0]
        await pilot.press("n", "n")
        assert app.current() == hits[2]
        await pilot.press("N")
        assert app.current() == hits[1]
        assert app.query_one(EventList).hits >= {hits[1].id}
        assert app.total == 47  # a search is not a filter
        await settled(pilot, "chips")  # the chip is mounted again with the hit count
        await pilot.click("#chip-search")
        assert app.search_text is None


async def test_detail_pane_shows_the_record_and_log_context(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "slash", "implant")
        detail = static_text(app.query_one("#detail-body"))
        assert "reloading config (implant staged)" in detail
        assert "surrounding lines" in detail and "request 9 ok" in detail
        assert "logs/runtime/01-stdio.log line 11" in detail
        await pilot.press("z")  # local time beside UTC
        detail = static_text(app.query_one("#detail-body"))
        assert "2026-11-22T22:13:31.000000000Z" in detail
        assert "2026-11-22T23:13:31.000000000+0100" in detail
        assert "(local)" in line_text(app.query_one(EventList), 0)


async def test_notes_live_beside_the_bundle_and_go_into_exports(incident: Path) -> None:
    before = incident.read_bytes()
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "g", "2026-11-22T22:23:20Z")
        implant = app.current()
        await pilot.press("b", "t")
        app.screen.query_one("#prompt-input").value = "initial-access"
        await pilot.press("enter", "a")
        app.screen.query_one("#prompt-input").value = "dropped binary, see /tmp/.x"
        await pilot.press("enter")
        assert "★" in line_text(app.query_one(EventList), app.window.cursor + 1)
        assert "initial-access" in static_text(app.query_one("#detail-body"))
        # export the current view with notes
        await pilot.press("3")  # only log lines + nothing else: then back to all
        await pilot.press("3")
        await pilot.press("e")
        out = Path.cwd() / "view.jsonl"
        app.screen.query_one("#export-path").value = str(out)
        await pilot.click("#export-notes")
        await pilot.click("#export-go")
        await wait_for(pilot, out.exists)
        await pilot.press("escape")
    assert incident.read_bytes() == before  # the bundle is never written
    case = NotesFile.for_bundle(incident)
    assert case.path == incident.with_name("incident.exv.notes.json")
    (note,) = case.notes.values()
    assert note.bookmarked and note.tags == ["initial-access"]
    assert note.text == "dropped binary, see /tmp/.x" and note.ts == implant.ts
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    tagged = [r for r in rows if r.get("tag")]
    assert len(rows) == 47 and len(tagged) == 1
    assert tagged[0]["event_id"] == implant.id
    assert tagged[0]["tag"] == ["initial-access", "bookmark"]
    assert tagged[0]["comment"] == ["dropped binary, see /tmp/.x"]
    # a new session finds the notes again
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("B")
        await pilot.press("enter")
        await pilot.pause()
        assert app.current() == implant


async def test_playback_steps_in_time_order_and_shows_who_was_alive(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "g", "2026-11-22T22:23:19Z")
        start = app.current()
        await pilot.press("right_square_bracket")
        assert app.speed == 10
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.speed == 2
        await pilot.press("p")  # 2 events a second: slow enough to stop where we want
        assert app.playing
        await wait_for(pilot, lambda: app.current().ts > T0 + 600 * 1_000_000_000)
        await pilot.press("p")
        assert not app.playing
        assert (app.current().ts, app.current().id) > (start.ts, start.id)
        await pilot.press("p")
        alive = static_text(app.query_one("#alive"))
        assert "● 1 server" in alive and "● 7 .x" in alive
        assert "○ 8 worker" in alive  # started later than the cursor
        await pilot.press("p")


async def test_untrusted_strings_are_shown_literally(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=(200, 45)) as pilot:
        await ready(pilot)
        await pilot.press("slash")
        app.screen.query_one("#prompt-input").value = "PWNED"
        await pilot.press("enter", "d")  # the detail pane hidden: full-width messages
        await pilot.pause()
        lst = app.query_one(EventList)
        screen_lines = [line_text(lst, y) for y in range(lst.size.height)]
        shown = "\n".join(screen_lines)
        assert MARKUP in shown  # the markup is text, not style
        assert "\x1b" not in shown and "\x07" not in shown
        assert "\\x1b]0;owned\\x07" in shown  # escapes become visible
        detail = static_text(app.query_one("#detail-body"))
        assert MARKUP in detail and "\x1b" not in detail
        await pilot.press("P")
        body = static_text(app.screen.query_one("#proc-body"))
        assert "\x1b" not in body
        assert ESCAPE not in body
