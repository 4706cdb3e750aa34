"""The live dashboard, driven by Pilot, against a real shell-less runc container."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, RichLog

from collectors.inventory import list_containers
from collectors.targets import resolve
from tests.integration import test_capture as capture_tests
from tests.tui.triage_support import *  # noqa: F403 - fixtures
from tests.tui.triage_support import SIZE, deterministic_env, query_when_mounted, wait_for
from tui.triage.app import make_app
from tui.triage.session import SessionOptions
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.log_view import LogView
from tui.triage.widgets.process_tree import ProcessTree
from tui.triage.widgets.socket_table import SocketTable
from tui.triage.widgets.timeline_view import TimelineView

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest.fixture
def app_for(runc_target, tmp_path: Path):  # type: ignore[no-untyped-def]
    deterministic_env()
    target = resolve(runc_target.uri)
    opts = SessionOptions(output_dir=tmp_path, examiner="tester", refresh_s=0.5)
    return lambda: make_app(target, options=opts)


async def test_process_tree_shows_target_and_implant(app_for) -> None:  # type: ignore[no-untyped-def]
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.screen.query_one(ProcessTree)
        await wait_for(pilot, lambda: tree.row_count >= 3, what="process rows")
        rows = tree.rows_shown
        assert rows[0].nspid == 1
        names = [" ".join(r.cmdline) for r in rows]
        assert any("/app/target" in n for n in names), names
        assert any(r.exe_deleted or r.exe_memfd for r in rows), names
        assert app.first_tree_s is not None


def _read_noatime(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


async def test_files_tab_views_hashes_and_filters_changed(app_for, runc_target) -> None:  # type: ignore[no-untyped-def]
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        fb = await query_when_mounted(pilot, FileBrowser)
        table = fb.query_one("#fb-list", DataTable)
        await wait_for(pilot, lambda: "/etc" in fb.entries, what="root listing")
        fb.path = b"/etc/app"
        await wait_for(pilot, lambda: "/etc/app/app.conf" in fb.entries, what="/etc/app")
        conf = fb.entries["/etc/app/app.conf"]
        assert conf.changed is True  # rewritten after start: in the overlay upper layer
        table.focus()
        table.move_cursor(row=table.get_row_index("/etc/app/app.conf"))
        await pilot.press("enter")
        view = fb.query_one("#fb-view", RichLog)
        await wait_for(pilot, lambda: any("feature_x = on" in s.text for s in view.lines))
        await pilot.press("h")
        session = app.session
        await wait_for(
            pilot,
            lambda: any(a["action"] == "triage.files.hashed" for a in session.actions()),
            what="hash",
        )
        hashed = next(a for a in session.actions() if a["action"] == "triage.files.hashed")
        expect = hashlib.sha256(_read_noatime(f"{runc_target.root}/etc/app/app.conf")).hexdigest()
        assert hashed["details"]["sha256"] == expect
        # the worker records the hash, then hands the line to the screen: wait for it
        await wait_for(pilot, lambda: any(expect in s.text for s in view.lines), what="hash line")
        await pilot.press("x")  # hex view
        assert fb.has_class("-hex")
        await wait_for(pilot, lambda: any(s.text.startswith("00000000  ") for s in view.lines))
        await pilot.press("f")  # changed since start only
        assert fb.has_class("-changed-only")
        await wait_for(pilot, lambda: "/tmp/after-start.txt" in fb.entries, what="changed")
        assert "/app/target" not in fb.entries


async def test_logs_sockets_and_timeline_tabs(app_for) -> None:  # type: ignore[no-untyped-def]
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        sockets = await query_when_mounted(pilot, SocketTable)
        await wait_for(pilot, lambda: sockets.row_count > 0, what="sockets")
        cells = [[c.plain for c in sockets.get_row_at(i)] for i in range(sockets.row_count)]
        listen = [r for r in cells if r[1] == "LISTEN" and r[2].endswith(":8080")]
        assert listen and "target" in listen[0][5], cells

        await pilot.press("4")
        logs = await query_when_mounted(pilot, LogView)
        await wait_for(pilot, lambda: any("ready" in ln.text for ln in logs.lines), what="log")
        focused = lambda: getattr(app.focused, "id", None) == "log-body"  # noqa: E731
        await wait_for(pilot, focused, what="focus in the log")
        await pilot.press("space")
        assert logs.has_class("-paused") and not logs.following
        await pilot.press("space")
        await pilot.press("slash")
        await pilot.press(*"ready", "enter")
        assert logs.term == "ready" and logs.has_class("-searching")

        await pilot.press("5")
        tl = await query_when_mounted(pilot, TimelineView)
        await wait_for(pilot, lambda: tl.row_count > 0, what="timeline")
        kinds = {tl.get_row_at(i)[1].plain for i in range(tl.row_count)}
        assert {"process.started", "triage.tab.opened", "container.created"} <= kinds, kinds


async def test_a_triage_session_leaves_the_target_untouched(app_for, runc_target) -> None:  # type: ignore[no-untyped-def]
    """Every atime, mtime and hash of the target's files is the same after browsing,
    viewing, hashing, the changed-only list, sockets, logs, the timeline and the
    picker's shell check as before."""
    root = runc_target.root
    before = capture_tests.snapshot(root)
    inv = list_containers()
    assert any(c.pid == runc_target.pid and c.shell is False for c in inv.containers)
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        fb = await query_when_mounted(pilot, FileBrowser)
        table = fb.query_one("#fb-list", DataTable)
        for d, f in (("/etc/app", "/etc/app/app.conf"), ("/app", "/app/target")):
            fb.path = d.encode()
            await wait_for(pilot, lambda f=f: f in fb.entries, what=d)
            table.focus()
            table.move_cursor(row=table.get_row_index(f))
            await pilot.press("enter", "h", "x")
            await wait_for(
                pilot,
                lambda f=f: any(
                    a["action"] == "triage.files.hashed" and a["details"]["path"] == f
                    for a in app.session.actions()
                ),
                what=f"hash of {f}",
            )
        await pilot.press("f")
        await wait_for(pilot, lambda: "/tmp/after-start.txt" in fb.entries, what="changed")
        await pilot.press("3")
        sockets = await query_when_mounted(pilot, SocketTable)
        await wait_for(pilot, lambda: sockets.row_count > 0, what="sockets")
        await pilot.press("4")
        logs = await query_when_mounted(pilot, LogView)
        await wait_for(pilot, lambda: bool(logs.lines), what="log")
        await pilot.press("5")
        tl = await query_when_mounted(pilot, TimelineView)
        await wait_for(pilot, lambda: tl.row_count > 0, what="timeline")
    after = capture_tests.snapshot(root)
    checked = 0
    for path, (atime, mtime, sha) in before.items():
        if path not in after or after[path][1] != mtime:
            continue  # written by the target itself meanwhile (its log)
        assert after[path][0] == atime, f"triage changed the atime of {path}"
        assert after[path][2] == sha, f"triage changed {path}"
        checked += 1
    assert checked > 10 and "/app/target" in before and "/etc/app/app.conf" in before


async def test_target_exiting_turns_the_header_red_and_keeps_the_app(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deterministic_env()
    handle = lab.runc()
    stopped = False
    try:
        target = resolve(handle.uri)
        opts = SessionOptions(output_dir=tmp_path, examiner="t", refresh_s=0.3)
        app = make_app(target, options=opts)
        async with app.run_test(size=SIZE) as pilot:
            tree = app.screen.query_one(ProcessTree)
            await wait_for(pilot, lambda: tree.row_count >= 3, what="tree")
            handle.stop()
            stopped = True
            screen = app.screen
            await wait_for(pilot, lambda: screen.has_class("-gone"), what="gone")
            assert screen.gone and tree.row_count >= 1  # the last sample stays on screen
            await pilot.press("2")  # the root is still held open: files stay readable
            fb = await query_when_mounted(pilot, FileBrowser)
            await wait_for(pilot, lambda: "/app" in fb.entries, what="listing after exit")
    finally:
        if not stopped:
            handle.stop()
