"""End to end: the triage picker walks namespaces -> pods -> containers of the real
cluster, shows a pod's log, and captures it through the agent, with the session's
actions in the bundle's custody log."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from forensics.bundle import verify_bundle
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_capture import start_lab
from tui.triage.app import make_app
from tui.triage.screens.picker import PickerScreen
from tui.triage.screens.pod import PodScreen
from tui.triage.session import SessionOptions

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def _until(pilot: Any, cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} on {pilot.app.screen}")
        await pilot.pause(0.1)


async def test_pick_a_pod_see_its_log_and_capture_it(
    cluster: Any,
    kubeconfig_path: str,
    k8s_images: str,
    tmp_path: Path,
) -> None:
    os.environ["TZ"] = "UTC"
    ns = cluster.namespace("triage", enforce="baseline")
    start_lab(cluster, ns)
    opts = SessionOptions(output_dir=tmp_path, examiner="tester", kubeconfig=kubeconfig_path,
                          k8s_image=lab.COLLECTOR_IMAGE)  # fmt: skip
    app = make_app(None, options=opts)
    async with app.run_test(size=(120, 40)) as pilot:
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        await _until(pilot, lambda: "shown" in str(picker.query_one("#picker-notes").render())
                     or picker.rows, 90, "local containers")  # fmt: skip
        await pilot.press("colon", *"ns", "enter")
        notes = picker.query_one("#picker-notes")
        await _until(pilot, lambda: ns in picker.rows, 90, f"namespaces ({notes.render()})")
        table = picker.query_one("#picker-table", DataTable)
        table.move_cursor(row=table.get_row_index(ns))
        await pilot.press("enter")
        await _until(pilot, lambda: "lab" in picker.rows, 90, "pods")
        row = [c.plain for c in table.get_row_at(table.get_row_index("lab"))]
        assert row[1] == "Running"
        await pilot.press("enter")  # the only pod: its containers
        await _until(pilot, lambda: picker.resource == "pod-containers" and picker.rows, 60, "ctrs")
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, PodScreen), 60, "pod screen")
        screen = app.screen
        # pushed first, composed after: the tabs may not be there yet
        await _until(pilot, lambda: bool(screen.query("#tabs")), 60, "the pod dashboard")
        await pilot.press("4")  # the log is a tab of the pod dashboard
        await _until(pilot, lambda: bool(screen.query("#pod-log")), 60, "the pod log mounted")
        log = screen.query_one("#pod-log")
        await _until(pilot, lambda: any("ready" in s.text for s in log.lines), 90, "pod log")
        await pilot.press("c")
        await _until(pilot, lambda: screen.result is not None, 240, "capture")
        res = screen.result
        await pilot.press("escape")
        assert isinstance(app.screen, PickerScreen)
        await pilot.press("escape")
        assert picker.resource == "pods"
    assert res is not None and res.complete, res
    assert verify_bundle(res.path).ok
    side = res.path.with_name(res.path.name + ".custody.jsonl")
    actions = [json.loads(ln)["action"] for ln in side.read_text().splitlines()]
    first_capture = actions.index("capture.started")
    assert {"triage.started", "triage.target.picked", "triage.capture.requested"} <= set(
        actions[:first_capture]
    )
