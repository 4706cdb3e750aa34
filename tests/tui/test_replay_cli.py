"""`exuvia replay` as a user runs it: in a real terminal (tmux), and without one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_replay_without_a_terminal_is_one_line(incident: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tui.cli", "replay", str(incident)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "needs a terminal" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "tui.cli", "replay", "/nonexistent.exv"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and "no such bundle" in r.stderr
    assert "Traceback" not in r.stderr


class Tmux:
    """A private tmux server (its own socket) running one command."""

    def __init__(self, cmd: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.sock = f"exuvia-test-{uuid.uuid4().hex[:8]}"
        env_args = [f"{k}={v}" for k, v in env.items()]
        subprocess.run(
            ["tmux", "-L", self.sock, "new-session", "-d", "-x", str(size[0]), "-y", str(size[1]),
             "env", "-u", "COLUMNS", "-u", "LINES", *env_args, *cmd],
            check=True, timeout=30,
        )  # fmt: skip
        # a detached server may keep its default size; make it the size asked for
        subprocess.run(
            ["tmux", "-L", self.sock, "resize-window", "-x", str(size[0]), "-y", str(size[1])],
            check=False, timeout=30,
        )  # fmt: skip

    def screen(self) -> str:
        r = subprocess.run(
            ["tmux", "-L", self.sock, "capture-pane", "-p"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return r.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.sock, "send-keys", *keys], check=True, timeout=30)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def alive(self) -> bool:
        r = subprocess.run(
            ["tmux", "-L", self.sock, "has-session"], capture_output=True, check=False
        )
        return r.returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, check=False)


@pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (dev.sh installs it)"
)
def test_replay_in_a_real_terminal(incident: Path, tmp_path: Path) -> None:
    exuvia = Path(sys.executable).with_name("exuvia")
    env = {"TZ": "UTC", "XDG_CACHE_HOME": str(tmp_path / "cache"), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}  # fmt: skip
    tmux = Tmux([str(exuvia), "replay", str(incident)], env, (160, 45))
    try:
        # it opens on the findings, most severe first; Esc goes to the timeline
        screen = tmux.wait_for("findings — incident.exv: 4 (3 high, 1 medium)")
        assert "HIGH" in screen and "runs a deleted executable: /tmp/.x" in screen
        tmux.keys("Escape")
        screen = tmux.wait_for("event 1 of 47")
        assert "verified ✓" in tmux.wait_for("verified")
        # the target in the title comes from the snapshot, read after the verification
        # in a child process: it may reach the screen after the position
        screen = tmux.wait_for("runc://web-1")
        assert "incident.exv" in screen
        assert "2026-11-21T22:13:20.000000000Z" in screen  # the first event, in UTC
        tmux.keys("d", "/")  # the detail pane hidden: messages at full width
        tmux.wait_for("search (all words")
        tmux.keys("implant", "Enter")
        tmux.wait_for("search: implant")
        screen = tmux.wait_for("server: reloading config (implant")
        tmux.keys("G")  # the end
        screen = tmux.wait_for("event 47 of 47")
        assert "capture.sealed" in screen
        tmux.keys("q")
        end = time.monotonic() + 60
        while tmux.alive() and time.monotonic() < end:
            time.sleep(0.2)
        assert not tmux.alive(), "q did not quit"
    finally:
        tmux.kill()
