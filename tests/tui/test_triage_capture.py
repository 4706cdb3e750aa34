"""Capture from the dashboard: the bundle, its custody log, and cancellation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from collectors.targets import resolve
from forensics.bundle.verify import verify_bundle
from tests.support.bundles import member_names
from tests.tui.triage_support import *  # noqa: F403 - fixtures
from tests.tui.triage_support import SIZE, deterministic_env, query_when_mounted, wait_for
from tui.triage.app import make_app
from tui.triage.screens.capture import CaptureScreen
from tui.triage.session import SessionOptions
from tui.triage.widgets.file_browser import FileBrowser

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _custody(path: Path) -> list[dict]:  # type: ignore[type-arg]
    side = path.with_name(path.name + ".custody.jsonl")
    return [json.loads(ln) for ln in side.read_text().splitlines()]


async def test_capture_from_dashboard_seals_bundle_with_session_custody(
    runc_target, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    deterministic_env()
    target = resolve(runc_target.uri)
    app = make_app(target, options=SessionOptions(output_dir=tmp_path, examiner="tester"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # files tab: an action the custody log must show
        fb = await query_when_mounted(pilot, FileBrowser)
        await wait_for(pilot, lambda: "/etc" in fb.entries, what="listing")
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CaptureScreen)
        await wait_for(
            pilot, lambda: screen.state in ("done", "failed"), timeout=120, what="capture"
        )
        res = screen.result
        assert res is not None and res.complete, screen.query_one("#capture-result").render()
        shown = screen.query_one("#capture-result").render()
        assert res.manifest_sha256 in str(shown) and str(res.path) in str(shown)
        assert f"manifest sha256: {res.manifest_sha256}" in str(shown).splitlines()
        numbers = str(screen.query_one("#capture-numbers").render())
        assert "entries 0 " not in numbers and "files " in numbers, numbers
        await pilot.press("escape")
        assert not isinstance(app.screen, CaptureScreen)
        await pilot.press("c")  # a second capture, then hand it to replay
        second = app.screen
        assert isinstance(second, CaptureScreen)
        await wait_for(
            pilot, lambda: second.state in ("done", "failed"), timeout=120, what="capture 2"
        )
        await pilot.press("o")
    assert second.result is not None and second.result.path != res.path
    assert app.return_value == ("replay", second.result.path)
    log2 = [e["action"] for e in _custody(second.result.path)]
    # the second capture's log holds the first one's outcome as a session action
    assert "triage.capture.finished" in log2[: log2.index("capture.started")]
    assert res.path.parent == tmp_path and res.path.suffix == ".exv"
    report = verify_bundle(res.path)
    assert report.ok and report.complete
    # the capture ran in a worker thread of the app: still through the read-only view
    assert str(report.manifest["filesystem_view"]).startswith("read-only, noatime")
    actions = [e["action"] for e in _custody(res.path)]
    started = actions.index("capture.started")
    before = actions[:started]
    assert "triage.started" in before and "triage.tab.opened" in before
    assert "triage.capture.requested" in before
    assert actions[-1] == "bundle.sealed"
    seqs = [e["seq"] for e in _custody(res.path)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_cancelled_capture_is_the_sealed_incomplete_bundle(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deterministic_env()
    handle = lab.runc()
    try:
        # staged before triage: a big file keeps the hashing busy long enough. Its
        # blocks are allocated (fallocate), not holes: a capture hashes a sparse
        # file by its data regions only, which would take no time at all
        big = f"{handle.root}/tmp/big.bin"
        fd = os.open(big, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.posix_fallocate(fd, 0, 3 << 30)
        finally:
            os.close(fd)
        target = resolve(handle.uri)
        app = make_app(target, options=SessionOptions(output_dir=tmp_path, examiner="tester"))
        async with app.run_test(size=SIZE) as pilot:
            # x right behind c: on a loaded machine the 3 GiB could be hashed before a
            # separate key press arrived (CI saw the screen already "-done" then)
            await pilot.press("c", "x")
            screen = app.screen
            assert isinstance(screen, CaptureScreen)
            # x acts only while the capture runs, and records the request at once; the
            # "-cancelling" class lasts only until the sealing ends, so it is not asserted
            actions = [a["action"] for a in app.session.actions()]
            assert "triage.capture.cancel_requested" in actions, actions
            await wait_for(
                pilot, lambda: screen.state in ("done", "failed"), timeout=120, what="sealing"
            )
            res = screen.result
        assert res is not None and not res.complete
        assert "cancelled by the examiner" in res.incomplete_reason
        assert res.path.name.endswith(".exv.incomplete")
        assert not res.path.with_name(res.path.name.removesuffix(".incomplete")).exists()
        report = verify_bundle(res.path)
        assert report.ok and not report.complete
        assert "manifest.json" in " ".join(member_names(res.path))
        log = _custody(res.path)
        why = [e["details"]["reason"] for e in log if e["action"] == "capture.incomplete"]
        assert why == ["cancelled by the examiner"]
        assert log[0]["action"] == "triage.started"
    finally:
        handle.stop()
