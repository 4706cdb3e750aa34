"""Replay of a killed capture's .partial: the CUT OFF banner, not "verification failed"."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.support.cut_bundles import cut_bundle
from tests.tui.conftest import ready, static_text
from tui.replay.app import make_app

pytestmark = pytest.mark.asyncio


async def test_a_partial_opens_with_the_cut_off_banner(tmp_path: Path) -> None:
    partial = cut_bundle(tmp_path)
    app = make_app(partial)
    async with app.run_test(size=(160, 45)) as pilot:
        await ready(pilot)
        assert app.report is not None and app.report.cut_off
        banner = static_text(app.query_one("#banner", Static))
        assert banner.startswith("CUT OFF: this capture was interrupted; read up to checkpoint ")
        assert f"{app.report.records_vouched} records" in banner
        assert "VERIFICATION FAILED" not in banner
        assert "CUT OFF" in static_text(app.query_one("#title", Static))
        assert app.screen is app.screen_stack[0]  # no "verification failed" screen pushed
