"""Triage of a live target opens on its findings (the same rules, over what is read
now); Enter goes to the process row or the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList, TabbedContent

from collectors.targets import resolve
from tests.tui.triage_support import *  # noqa: F403 - fixtures
from tests.tui.triage_support import SIZE, deterministic_env, query_when_mounted, wait_for
from tui.findings.screen import FindingsScreen
from tui.triage.app import make_app
from tui.triage.session import SessionOptions
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.process_tree import ProcessTree

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
LIVE_RULES = {
    "exe.memfd", "exe.deleted", "exe.writable-dir", "env.preload", "cmdline.kernel-thread-name",
    "net.late-listener", "files.changed-system", "logs.attack-tooling",
}  # fmt: skip


async def _view(pilot) -> FindingsScreen:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen), what="findings view")
    await wait_for(pilot, lambda: app.screen.report is not None, 120, "findings")
    await pilot.pause()
    return app.screen


async def test_opens_on_live_findings_and_jumps(runc_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deterministic_env()
    target = resolve(runc_target.uri)
    opts = SessionOptions(output_dir=tmp_path, examiner="tester", findings_first=True)
    app = make_app(target, options=opts)
    async with app.run_test(size=SIZE) as pilot:
        view = await _view(pilot)
        report = view.report
        assert {f.rule for f in report.findings} == LIVE_RULES
        assert report.blind_spots[0].startswith("live view:")
        memfd = report.findings[0]
        assert memfd.rule == "exe.memfd"
        await pilot.press("enter")  # the memfd process's row
        tabs = app.screen.query_one("#tabs", TabbedContent)
        tree = app.screen.query_one(ProcessTree)
        await wait_for(pilot, lambda: tree.row_count >= 4, what="process rows")
        key = tree.coordinate_to_cell_key(tree.cursor_coordinate).row_key.value
        assert tabs.active == "processes" and key == str(memfd.attrs["pid"])
        # `!` again, down to the changed config file: Enter lists /etc/app, cursor on it
        await pilot.press("exclamation_mark")
        view = await _view(pilot)
        lst = view.query_one("#findings-list", OptionList)
        i = next(n for n, f in enumerate(view.report.findings) if f.rule == "files.changed-system")
        lst.highlighted = i
        await pilot.pause()
        await pilot.press("enter")
        browser = await query_when_mounted(pilot, FileBrowser)
        table = browser.query_one("#fb-list", DataTable)

        def on_conf() -> bool:
            if not table.row_count:
                return False
            k = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            return bool(k == "/etc/app/app.conf")

        await wait_for(pilot, on_conf, what="cursor on /etc/app/app.conf")
        assert tabs.active == "files" and browser.path == b"/etc/app"
    actions = [a["action"] for a in app.session.actions()]
    assert "triage.findings.computed" in actions
