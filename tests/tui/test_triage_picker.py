"""The picker without a target, and hostile names shown literally."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from collectors.targets import resolve
from tests.tui.triage_support import *  # noqa: F403 - fixtures
from tests.tui.triage_support import SIZE, deterministic_env, query_when_mounted, wait_for
from tui.triage.app import make_app
from tui.triage.screens.dashboard import DashboardScreen
from tui.triage.screens.picker import PickerScreen
from tui.triage.session import SessionOptions
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.process_tree import ProcessTree

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_picker_lists_shellless_containers_filters_and_opens(
    runc_target, podman_target, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    deterministic_env()
    app = make_app(None, options=SessionOptions(output_dir=tmp_path, examiner="tester"))
    async with app.run_test(size=SIZE) as pilot:
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        table = picker.query_one("#picker-table", DataTable)
        await wait_for(pilot, lambda: runc_target.uri in picker.rows, what="rows")
        assert f"podman://{podman_target.name}" in picker.rows
        idx = table.get_row_index(runc_target.uri)
        row = [c.plain for c in table.get_row_at(idx)]
        assert row[0] == "runc" and row[5] == str(runc_target.pid)
        assert row[6] == "no shell"
        assert picker.rows[runc_target.uri].shell is False
        await pilot.press("slash", *"podman", "enter")
        assert picker.has_class("-filtered")
        assert runc_target.uri not in picker.rows and picker.rows
        await pilot.press("escape")  # clears the filter
        await wait_for(pilot, lambda: runc_target.uri in picker.rows, what="unfiltered")
        table.move_cursor(row=table.get_row_index(runc_target.uri))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        tree = await query_when_mounted(pilot, ProcessTree)  # pushed first, composed after
        await wait_for(pilot, lambda: tree.row_count > 0, what="tree")
        assert tree.rows_shown[0].pid == runc_target.pid
        await pilot.press("escape")
        assert isinstance(app.screen, PickerScreen)


async def test_hostile_file_names_are_shown_literally(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deterministic_env()
    handle = lab.runc()
    try:
        hostile = "\x1b[31mred[bold]x[blink]\u202eexe.txt"
        Path(f"{handle.root}/tmp/{hostile}").write_text("x\x1b[2Jy [link=file:///]z[/link]\n")
        target = resolve(handle.uri)
        app = make_app(target, options=SessionOptions(output_dir=tmp_path, examiner="t"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            fb = await query_when_mounted(pilot, FileBrowser)
            fb.path = b"/tmp"
            key = f"/tmp/{hostile}"
            await wait_for(pilot, lambda: key in fb.entries, what="hostile entry")
            table = fb.query_one("#fb-list", DataTable)
            cell = table.get_row_at(table.get_row_index(key))[0]
            assert cell.plain == "\\x1b[31mred[bold]x[blink]\\u202eexe.txt"
            assert not cell.spans or all(s.style == "" for s in cell.spans)
            table.focus()
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("enter")
            view = fb.query_one("#fb-view")
            await wait_for(pilot, lambda: any("[link=" in s.text for s in view.lines))
            text = "\n".join(s.text for s in view.lines)
            assert "x\\x1b[2Jy [link=file:///]z[/link]" in text
    finally:
        os.sync()
        handle.stop()


async def test_hostile_command_line_is_shown_literally(tmp_path: Path) -> None:
    """A process in its own PID namespace whose argv holds escapes and markup."""
    if os.geteuid() != 0:
        pytest.skip("needs root (unshare --pid)")
    deterministic_env()
    evil = "\x1b[31m[bold red]evil[/]\x07\u202e"
    code = f"import os; os.execv('/bin/sleep', [{evil!r}, '300'])"
    outer = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", code]
    )
    try:
        inner = 0
        deadline = time.monotonic() + 60  # a Python start and an exec, on a loaded machine
        while time.monotonic() < deadline:
            kids = Path(f"/proc/{outer.pid}/task/{outer.pid}/children").read_text().split()
            if kids and "sleep" in Path(f"/proc/{kids[0]}/exe").resolve().name:
                inner = int(kids[0])
                break
            time.sleep(0.05)
        assert inner, "the namespaced sleeper did not start"
        target = resolve(f"pid://{inner}")
        app = make_app(target, options=SessionOptions(output_dir=tmp_path, examiner="t"))
        async with app.run_test(size=SIZE) as pilot:
            tree = app.screen.query_one(ProcessTree)
            await wait_for(pilot, lambda: tree.row_count == 1, what="the one process")
            cells = tree.get_row_at(0)
            assert cells[0].plain == "1"
            assert cells[7].plain == "\\x1b[31m[bold red]evil[/]\\x07\\u202e 300"
            assert not cells[7].spans  # no style came from the name
    finally:
        outer.kill()
        outer.wait()
