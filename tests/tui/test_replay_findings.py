"""The replay app opens on its findings; Enter jumps to the evidence's timeline row,
`o` to its process or file, `!` comes back."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList, Tree

from tests.support.incident_bundle import ESCAPE, MARKUP
from tests.tui.conftest import ready, static_text, wait_for
from tui.findings.screen import FindingsScreen
from tui.replay.app import make_app

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)


async def _findings(pilot) -> FindingsScreen:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen))
    await wait_for(pilot, lambda: app.screen.report is not None)
    await pilot.pause()
    return app.screen


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
        await wait_for(pilot, lambda: app.screen.query(Tree))
        body = static_text(app.screen.query_one("#proc-body"))
        assert "/tmp/.x" in body and ESCAPE not in body
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
