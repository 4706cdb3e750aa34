"""`exuvia demo` end to end: a real shell-less container, captured, then the replay view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tui.test_replay_cli import Tmux

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
EXUVIA = str(Path(sys.executable).with_name("exuvia"))


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the demo captures a container: needs root")


def test_demo_without_a_terminal_skips_the_replay_view(tmp_path: Path) -> None:
    r = subprocess.run(
        [EXUVIA, "demo", "-o", str(tmp_path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "verify:          OK" in r.stdout
    # the findings come first, most severe first, then the timeline
    out = r.stdout
    assert out.index("findings (1 critical, ") < out.index("the incident's timeline")
    first = out[out.index("findings (") :].splitlines()[1]
    assert first.startswith("  CRITICAL process kworker-memfd") and "memfd" in first
    for rule_text in ("runs a deleted executable: /tmp/.x", "reads the service-account token",
                      "listens on port 4444", "outbound tcp connection to 203.0.113.7:443",
                      "file written since start under /etc: /etc/app/app.conf"):  # fmt: skip
        assert rule_text in out
    assert "replay: not on a terminal, so not opened; run: exuvia replay" in r.stdout
    (bundle,) = tmp_path.glob("demo-*.exv")
    assert subprocess.run([EXUVIA, "verify", str(bundle)], check=False).returncode == 0
    r = subprocess.run(
        [EXUVIA, "demo", "-o", str(tmp_path / "again"), "--no-replay"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and "replay:" not in r.stdout


def test_demo_ends_in_the_replay_view_on_a_terminal(tmp_path: Path) -> None:
    env = {"TZ": "UTC", "XDG_CACHE_HOME": str(tmp_path / "cache"), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}  # fmt: skip
    tmux = Tmux([EXUVIA, "demo", "-o", str(tmp_path)], env, (160, 45))
    try:
        screen = tmux.wait_for("exuvia replay", timeout=180)
        screen = tmux.wait_for("verified ✓")
        assert "runc://exuvia-lab-" in screen
        screen = tmux.wait_for("container.created")
        assert "process.started" in screen  # it opens where the incident begins
        tmux.keys("q")
        tmux.wait_for("", timeout=5)
    finally:
        tmux.kill()
    (bundle,) = tmp_path.glob("demo-*.exv")
    assert bundle.stat().st_size > 0
