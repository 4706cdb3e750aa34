"""The replay app opens on its findings; Enter jumps to the evidence's timeline row,
`o` to its process or file, `!` comes back."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import OptionList, Tree

from tests.support.incident_bundle import ESCAPE, MARKUP
from tests.tui.conftest import ready, static_text, wait_for
from tui.findings.screen import FindingsScreen
from tui.replay import background
from tui.replay.app import make_app

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)


async def _findings(pilot) -> FindingsScreen:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen))
    await wait_for(pilot, lambda: app.screen.report is not None)
    await pilot.pause()
    return app.screen


def _proc_body(app) -> str:  # type: ignore[no-untyped-def]
    """The process view's detail text ("" until the view is open)."""
    found = app.screen.query("#proc-body")
    return static_text(found.first()) if found else ""


async def test_opens_on_findings_and_enter_jumps_to_the_row(incident: Path) -> None:
    app = make_app(incident, findings_first=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _findings(pilot)
        lst = screen.query_one("#findings-list", OptionList)
        labels = [lst.get_option_at_index(i).prompt.plain for i in range(lst.option_count)]
        assert len(labels) == 4 and labels[0].startswith(" HIGH")
        assert "runs a deleted executable: /tmp/.x" in labels[0]
        assert labels[-1].startswith(" MEDIUM") and "/etc/app.conf" in labels[-1]
        detail = static_text(screen.query_one("#finding-detail"))
        assert "has been removed since" in detail and "exe.deleted:" in detail
        evidence = screen.query_one("#evidence-list", OptionList)
        ev_text = evidence.get_option_at_index(0).prompt.plain
        assert "artifacts/processes.jsonl:2" in ev_text
        assert MARKUP in ev_text  # the hostile command line, literally
        assert "\x1b" not in ev_text and "\\x1b" in ev_text  # escapes made visible
        await pilot.press("enter")
        await ready(pilot)
        await wait_for(
            pilot, lambda: app.current() is not None and app.current().entity == "pid:4107"
        )
        assert app.current().ref.member == "artifacts/processes.jsonl"
        assert app.current().ref.line == 2
        # `!` reopens the view; the last finding's evidence is a file: `o` opens it
        await pilot.press("exclamation_mark")
        screen = await _findings(pilot)
        await pilot.press("end")
        await pilot.press("o")
        await wait_for(pilot, lambda: "sha256" in static_text(app.screen.query_one("#file-body")))
        assert "/etc/app.conf" in static_text(app.screen.query_one("#file-body"))


async def test_enter_on_an_evidence_row_and_the_process_view(incident: Path) -> None:
    app = make_app(incident, findings_first=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _findings(pilot)
        lst = screen.query_one("#findings-list", OptionList)
        await pilot.press("down", "down")  # net.late-listener: the socket, then the process
        assert "listens on port 4444" in lst.get_option_at_index(lst.highlighted).prompt.plain
        await pilot.press("tab")
        evidence = screen.query_one("#evidence-list", OptionList)
        assert evidence.has_focus
        await pilot.press("down")  # the process record (the socket has no timeline row)
        await pilot.press("o")
        await wait_for(pilot, lambda: "/tmp/.x" in _proc_body(app))  # the process, selected
        assert ESCAPE not in _proc_body(app)
        await pilot.press("escape")
        await pilot.press("exclamation_mark")
        await _findings(pilot)
        await pilot.press("escape")
        assert not isinstance(app.screen, FindingsScreen)


async def test_without_findings_first_the_timeline_opens(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert not isinstance(app.screen, FindingsScreen)
        await wait_for(pilot, lambda: app.findings is not None)
        assert len(app.findings.findings) == 4


async def test_o_before_the_snapshot_is_read_opens_the_process_once_it_is(
    incident: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key pressed while the background reader is still reading the bundle is not
    dropped: the view opens when the snapshot arrives. The reader (our own wrapper, run
    for real in every other replay test) is held back until the key has been pressed."""
    gate = threading.Event()
    real = background.read_in_child

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(background, "read_in_child", held)
    app = make_app(incident, findings_first=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _findings(pilot)
            await pilot.press("o")  # the first finding's first evidence: its process
            await pilot.pause()
            assert app.snapshot is None and not app.screen.query(Tree)
            gate.set()
            await wait_for(pilot, lambda: "/tmp/.x" in _proc_body(app))
    finally:
        gate.set()


async def test_a_report_that_arrives_while_the_view_is_composed_is_shown(incident: Path) -> None:
    """The findings worker's result can arrive while the findings screen is still being
    composed (attached, not all its widgets mounted): it is shown once it is mounted,
    instead of failing the worker on a missing widget, which stopped the app."""
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.findings is not None)
        screen = FindingsScreen("incident")
        app.push_screen(screen)
        screen.show_report(app.findings)  # before the screen has composed
        await wait_for(pilot, lambda: screen.report is not None)
        lst = screen.query_one("#findings-list", OptionList)
        assert lst.option_count == 4
        await pilot.press("down", "down")
        assert "listens on port 4444" in lst.get_option_at_index(lst.highlighted).prompt.plain
