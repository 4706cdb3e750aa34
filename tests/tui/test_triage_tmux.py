"""The real `exuvia triage runc://ID` in a real terminal (tmux): the process tree
is read off the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.tui.triage_support import *  # noqa: F403 - fixtures

pytestmark = pytest.mark.integration

EXUVIA = str(Path(sys.executable).with_name("exuvia"))


def tmux_socket(name: str) -> Path:
    return Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / name


def _tmux(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", sock, *args], capture_output=True, text=True, check=False, timeout=20
    )


def test_triage_in_tmux_shows_the_process_tree(runc_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    sock = f"exuvia-test-{uuid.uuid4().hex[:8]}"
    cmd = (
        f"env -u COLUMNS -u LINES TZ=UTC TEXTUAL_ANIMATIONS=none TERM=xterm-256color "
        f"{EXUVIA} triage {runc_target.uri} -o {tmp_path}; echo EXITED=$?; sleep 120"
    )
    started = _tmux(sock, "new-session", "-d", "-x", "160", "-y", "50", cmd)
    assert started.returncode == 0, started.stderr
    try:
        screen = ""
        # it opens on the target's findings (computed in a worker); Esc shows the dashboard
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = _tmux(sock, "capture-pane", "-p").stdout
            if "findings — runc://" in screen and "CRITICAL" in screen:
                break
            time.sleep(0.2)
        assert "runs from a memfd" in screen, screen
        _tmux(sock, "send-keys", "Escape")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = _tmux(sock, "capture-pane", "-p").stdout
            # a capture can catch a frame half drawn: wait for the whole tree
            if (
                "/app/target" in screen
                and screen.count("└─") >= 3
                and "(deleted)" in screen
                and runc_target.container_id in screen
            ):
                break
            time.sleep(0.2)
        lines = screen.splitlines()
        target_lines = [ln for ln in lines if "/app/target" in ln]
        assert target_lines, screen
        # the init process is the root of the tree: pid 1 inside, no branch mark
        root = next(ln for ln in target_lines if "└─" not in ln)
        assert root.split()[0] == "1" and root.split()[1] == str(runc_target.pid), screen
        children = [ln for ln in lines if "└─" in ln]
        assert children, screen
        # the deleted implant and the fileless child are marked on screen
        assert "(deleted)" in screen or "(fileless)" in screen, screen
        assert "runc" in screen and runc_target.container_id in screen  # the header
        _tmux(sock, "send-keys", "q")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = _tmux(sock, "capture-pane", "-p").stdout
            if "EXITED=" in screen:
                break
            time.sleep(0.2)
        assert "EXITED=0" in screen, screen
    finally:
        _tmux(sock, "kill-server")
        tmux_socket(sock).unlink(missing_ok=True)  # a dead server leaves its socket file
