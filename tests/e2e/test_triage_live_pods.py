"""End to end: a pod's live processes, files and sockets through `agent serve`, on the
real cluster, from the agent's ephemeral container (reused on a second session)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, RichLog

from collectors.k8s.capture import K8sOptions
from collectors.k8s.client import KubeClient
from collectors.k8s.livepod import open_live
from collectors.k8s.pods import list_pods
from forensics.errors import ExuviaError
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_capture import start_lab
from tui.demo.rootfs import CHANGED_CONFIG, TARGET_PATH, build_demo_rootfs
from tui.triage.app import make_app
from tui.triage.screens.pod import PodScreen
from tui.triage.session import SessionOptions
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.process_tree import ProcessTree
from tui.triage.widgets.socket_table import SocketTable

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_live_processes_files_and_sockets_of_a_pod(
    cluster: Any,
    kubeconfig_path: str,
    k8s_images: str,
    level: str,
) -> None:
    ns = cluster.namespace("podlive", enforce=level)
    pod = start_lab(cluster, ns, restricted=level == "restricted")
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
    rootfs = build_demo_rootfs(lab.WORKDIR)  # the tree the lab image was made of
    k8s = K8sOptions(image=lab.COLLECTOR_IMAGE, pull_policy="Never", idle=120, linger=5)
    kc = KubeClient(kubeconfig_path)
    try:
        live = open_live(kc, ns, "lab", None, k8s)
        try:
            assert live.container == "app" and live.injection.footprint["reused"] is False
            assert lab.agent_pids(cid, "serve"), "agent serve is not running"
            r = live.remote
            assert r.shell[0] is False, r.shell  # the lab image has no shell
            rows = r.sample()
            assert rows[0].nspid == 1
            assert any(TARGET_PATH in " ".join(p.cmdline) for p in rows), rows
            assert any(p.exe_deleted or p.exe_memfd for p in rows)  # the lab's implant
            names = {e.name for e in r.root.list_dir(b"/app")}
            assert b"target" in names, names
            want = (rootfs / TARGET_PATH.lstrip("/")).read_bytes()
            assert r.root.sha256(TARGET_PATH.encode()) == (
                hashlib.sha256(want).hexdigest(),
                len(want),
            )
            head, size = r.root.read_head(TARGET_PATH.encode(), 4096)
            assert head == want[:4096] and size == len(want)
            conf, _n = r.root.read_head(CHANGED_CONFIG.encode())
            assert b"log_file" in conf  # the lab rewrote it after start
            # an ephemeral agent cannot see the node's overlay upper layer: said, not guessed
            assert r.hello["changed_known"] is False and r.root.upper_note
            socks = r.sockets()
            listen = [s for s in socks if s.state == "LISTEN" and s.local.endswith(":8080")]
            assert listen and any("target" in o for o in listen[0].owners), socks
            with pytest.raises(ExuviaError, match="No such file"):
                r.root.read_head(b"/no/such/file")
            assert live.requests()["sha256"] == 1
        finally:
            live.close()
        lab.wait_for(lambda: not lab.agent_pids(cid, "serve"), 60, "agent serve to exit", 0.1)

        again = open_live(kc, ns, "lab", "app", k8s)  # a second session: the same agent
        try:
            fp = again.injection.footprint
            assert fp["reused"] is True and again.injection.container == live.injection.container
            assert again.summary()["agent_container"] == live.injection.container
            assert again.remote.sample()
        finally:
            again.close()
        eph = (kc.get_pod(ns, "lab").get("spec") or {}).get("ephemeralContainers") or []
        assert len(eph) == 1  # nothing more was added

        def agent_ended() -> bool:
            sts = kc.get_pod(ns, "lab")["status"].get("ephemeralContainerStatuses") or []
            return any("terminated" in (s.get("state") or {}) for s in sts)

        lab.wait_for(agent_ended, 60, "the agent container to exit after --linger", 0.5)
    finally:
        kc.close()


async def _until(pilot: Any, cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} on {pilot.app.screen}")
        await pilot.pause(0.1)


@pytest.mark.asyncio
async def test_pod_dashboard_processes_files_sockets_then_capture(
    cluster: Any,
    kubeconfig_path: str,
    k8s_images: str,
    tmp_path: Path,
) -> None:
    os.environ["TZ"] = "UTC"
    ns = cluster.namespace("podlive-ui", enforce="baseline")
    pod = start_lab(cluster, ns)
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
    want = (build_demo_rootfs(lab.WORKDIR) / TARGET_PATH.lstrip("/")).read_bytes()
    opts = SessionOptions(output_dir=tmp_path, examiner="tester", kubeconfig=kubeconfig_path,
                          k8s_image=lab.COLLECTOR_IMAGE, refresh_s=1.0)  # fmt: skip
    app = make_app(None, options=opts)
    kc = KubeClient(kubeconfig_path)
    try:
        row = next(p for p in list_pods(kc, ns) if p.name == "lab")
        async with app.run_test(size=(140, 44)) as pilot:
            app.push_screen(PodScreen(row, "app", kc, app.session))
            await _until(pilot, lambda: isinstance(app.screen, PodScreen), 60, "pod screen")
            screen = app.screen
            assert isinstance(screen, PodScreen)
            await _until(pilot, lambda: bool(screen.query(ProcessTree)), 60, "mounted")
            tree = screen.query_one(ProcessTree)
            await _until(pilot, lambda: tree.row_count >= 2, 120, "the pod's process tree")
            assert any(TARGET_PATH in " ".join(r.cmdline) for r in tree.rows_shown)
            assert "no shell" in str(screen.query_one("#pod-header").render())

            await pilot.press("2")
            await _until(pilot, lambda: bool(screen.query(FileBrowser)), 60, "file browser")
            fb = screen.query_one(FileBrowser)
            table = fb.query_one("#fb-list", DataTable)
            await _until(pilot, lambda: "/app" in fb.entries, 60, "the root listing")
            table.focus()
            table.move_cursor(row=table.get_row_index("/app"))
            await pilot.press("enter")
            await _until(pilot, lambda: TARGET_PATH in fb.entries, 60, "/app listed")
            table.move_cursor(row=table.get_row_index(TARGET_PATH))
            await pilot.press("enter", "x", "h")

            def hashed() -> list[dict[str, Any]]:
                return [a for a in app.session.actions() if a["action"] == "triage.files.hashed"]

            await _until(pilot, hashed, 60, "the hash")
            assert hashed()[0]["details"]["sha256"] == hashlib.sha256(want).hexdigest()
            view = fb.query_one("#fb-view", RichLog)
            assert any("7f454c46" in s.text.replace(" ", "") for s in view.lines)  # hex of ELF

            await pilot.press("3")
            socks = screen.query_one(SocketTable)
            await _until(pilot, lambda: socks.row_count > 0, 60, "sockets")
            cells = [c.plain for i in range(socks.row_count) for c in socks.get_row_at(i)]
            assert any(c.endswith(":8080") for c in cells), cells

            await pilot.press("c")
            await _until(pilot, lambda: screen.result is not None, 240, "capture")
            res = screen.result
            assert lab.agent_pids(cid, "serve")
            await pilot.press("escape")  # leaving the pod ends `agent serve`
            await _until(pilot, lambda: not lab.agent_pids(cid, "serve"), 60, "agent serve to exit")
        assert res is not None and res.complete, res
        closed = [a for a in app.session.actions() if a["action"] == "triage.agent.closed"]
        assert closed and closed[0]["details"]["requests"]["hello"] == 1, closed
        side = res.path.with_name(res.path.name + ".custody.jsonl")
        entries = [json.loads(ln) for ln in side.read_text().splitlines()]
        actions = [e["action"] for e in entries]
        before = actions[: actions.index("capture.started")]
        assert {"triage.agent.serving", "triage.agent.served", "triage.files.hashed"} <= set(
            before
        ), before
        served = next(e for e in entries if e["action"] == "triage.agent.served")["details"]
        assert served["requests"]["processes"] >= 1 and served["requests"]["sha256"] == 1
        eph = (kc.get_pod(ns, "lab").get("spec") or {}).get("ephemeralContainers") or []
        assert len(eph) == 1, eph  # the capture reused the dashboard's agent
    finally:
        kc.close()


def _tmux(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", sock, *args], capture_output=True, text=True, check=False, timeout=20
    )


def test_the_real_command_opens_a_pod_and_shows_its_process_tree(
    cluster: Any,
    kubeconfig_path: str,
    k8s_images: str,
    tmp_path: Path,
) -> None:
    """`exuvia triage k8s://NS/POD/CONTAINER` in a real terminal; a missing pod is one line."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    exuvia = str(Path(sys.executable).with_name("exuvia"))
    ns = cluster.namespace("podlive-cmd", enforce="baseline")
    start_lab(cluster, ns)
    bad = subprocess.run(
        [exuvia, "triage", f"k8s://{ns}/nope", "--kubeconfig", kubeconfig_path],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == "", bad
    assert bad.stderr.strip().count("\n") == 0 and "not found" in bad.stderr, bad.stderr
    sock = f"exuvia-podlive-{uuid.uuid4().hex[:8]}"
    cmd = (
        f"env -u COLUMNS -u LINES TZ=UTC TEXTUAL_ANIMATIONS=none TERM=xterm-256color "
        f"{exuvia} triage k8s://{ns}/lab/app --kubeconfig {kubeconfig_path} "
        f"--image {lab.COLLECTOR_IMAGE} -o {tmp_path}; echo EXITED=$?; sleep 120"
    )
    assert _tmux(sock, "new-session", "-d", "-x", "160", "-y", "50", cmd).returncode == 0
    try:
        screen = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = _tmux(sock, "capture-pane", "-p").stdout
            if TARGET_PATH in screen and "(deleted)" in screen and "no shell" in screen:
                break
            time.sleep(0.3)
        assert f"k8s {ns}/lab/app" in screen, screen  # the header
        assert "no shell" in screen, screen
        root = next(ln for ln in screen.splitlines() if TARGET_PATH in ln and "└─" not in ln)
        assert root.split()[0] == "1", screen  # pid 1 inside the pod: the tree's root
        assert "(deleted)" in screen or "(fileless)" in screen, screen
        _tmux(sock, "send-keys", "q")
        deadline = time.monotonic() + 60
        while "EXITED=" not in screen and time.monotonic() < deadline:
            time.sleep(0.3)
            screen = _tmux(sock, "capture-pane", "-p").stdout
        assert "EXITED=0" in screen, screen
    finally:
        _tmux(sock, "kill-server")
        sockfile = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / sock
        sockfile.unlink(missing_ok=True)
