"""Replay's YARA view (Y): matches of `exuvia scan`, hostile rule metadata shown literally."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from forensics.scan.bundle import scan_bundle
from forensics.scan.rules import compile_rules
from forensics.scan.sidecar import save_result
from tests.tui.conftest import ready, wait_for
from tui.replay.app import make_app

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)
RULES = r"""
rule backdoor_conf : config {
  meta:
    desc = "[bold red]PWNED[/bold red] \x1b[2J"
    severity = "critical"
  strings:
    $b = "backdoor = 4444"
  condition:
    $b
}
"""


async def test_yara_view_lists_matches_literally_and_goes_to_the_event(
    incident: Path, tmp_path: Path
) -> None:
    rules_file = tmp_path / "r.yar"
    rules_file.write_text(RULES)
    save_result(incident, scan_bundle(incident, compile_rules(rules_file)))
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("Y")
        await wait_for(pilot, lambda: bool(app.screen.query(OptionList)))
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1
        text = options.get_option_at_index(0).prompt
        plain = text.plain if hasattr(text, "plain") else str(text)
        assert "r.yar:backdoor_conf" in plain and "/etc/app.conf" in plain
        # the metadata as written, markup and escape sequence visible, never interpreted
        assert "[bold red]PWNED[/bold red] \\x1b[2J" in plain
        assert "backdoor = 4444" in plain
        await pilot.press("enter")
        await pilot.pause()
        ev = app.current()
        assert ev is not None and "yara.match" in ev.kinds
        assert ev.attrs["rule"] == "backdoor_conf"


async def test_yara_view_without_a_scan_says_how_to_get_one(incident: Path) -> None:
    app = make_app(incident)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("Y")
        await pilot.pause()
        assert not app.screen.query(OptionList)
        await pilot.press("escape")
