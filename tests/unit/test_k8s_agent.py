"""The in-pod agent: it imports without textual or the kubernetes client, waits and
exits when idle, explains access problems, finds the upper layer on a node."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from collectors import agent


def test_the_agent_imports_only_collectors_and_forensics() -> None:
    probe = (
        "import sys, collectors.agent\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'textual', 'rich', 'tui', 'kubernetes', 'urllib3', 'websocket', 'yaml'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


#: what an agent command imports, run as the pod runs it (``python3 -m collectors.agent``)
MODULES_OF = (
    "import runpy, sys\n"
    "sys.argv = ['collectors.agent', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('collectors.agent', run_name='__main__', alter_sys=True)\n"
    "except SystemExit:\n"
    "    pass\n"
    "sys.__stdout__.write(' '.join(sorted(sys.modules)))\n"
)
#: what the capture code needs and ``wait`` never runs (each agent process's start-up
#: is CPU its node pays per pod: a fleet on one node pays it for every pod)
CAPTURE_MODULES = {"collectors.capture", "collectors.agent_serve", "collectors.fs.acquire",
                   "forensics.bundle.writer", "zstandard", "psutil", "ctypes",
                   "dataclasses"}  # fmt: skip
#: what a capture without --memory never runs: memory acquisition, the other runtimes'
#: clients, the bundle reader and verifier, live triage
NOT_FOR_A_CAPTURE = {"collectors.memory.acquire", "collectors.targets.docker", "http.client",
                     "collectors.targets.runc", "forensics.bundle.reader",
                     "forensics.bundle.verify", "collectors.agent_serve",
                     "collectors.live.processes"}  # fmt: skip


def _agent_modules(*argv: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", MODULES_OF, *argv], capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    return set(out.stdout.split())


def test_wait_imports_none_of_the_capture_code(tmp_path: Path) -> None:
    mods = _agent_modules("wait", "--idle", "0", "--state-dir", str(tmp_path / "state"))
    assert (tmp_path / "state").is_dir()  # it ran
    assert sorted(mods & CAPTURE_MODULES) == []


def test_capture_imports_only_what_a_capture_runs(tmp_path: Path) -> None:
    mods = _agent_modules("capture", "--mode", "node", "--container-id",
                          "containerd://" + "ab" * 32, "--state-dir", str(tmp_path))  # fmt: skip
    assert {"collectors.capture", "forensics.bundle.writer"} <= mods  # the capture ran
    assert sorted(mods & NOT_FOR_A_CAPTURE) == []


def test_wait_exits_when_nobody_comes(tmp_path: Path) -> None:
    t0 = time.monotonic()
    assert agent.wait(idle=0.3, linger=10, state_dir=str(tmp_path), poll=0.05) == 0
    assert 0.3 <= time.monotonic() - t0 < 5


def test_wait_lingers_after_the_last_capture(tmp_path: Path) -> None:
    marker = tmp_path / f"capture.{os.getpid()}"  # a live capture: ours
    marker.touch()
    done = threading.Event()

    def run() -> None:
        agent.wait(idle=0.1, linger=0.3, state_dir=str(tmp_path), poll=0.05)
        done.set()

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.5)
    assert not done.is_set()  # busy: idle does not apply
    marker.unlink()
    (tmp_path / "done").touch()
    t0 = time.monotonic()
    th.join(5)
    assert done.is_set() and time.monotonic() - t0 >= 0.2


def test_a_killed_capture_does_not_keep_the_agent_alive(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (tmp_path / f"capture.{dead}").touch()
    assert agent.wait(idle=100, linger=0.1, state_dir=str(tmp_path), poll=0.05) == 0
    assert not (tmp_path / f"capture.{dead}").exists()


def test_access_problem() -> None:
    assert agent.access_problem("/proc", os.getpid()) is None
    assert "cannot open /proc/999999999/root" in str(agent.access_problem("/proc", 999999999))


def test_access_problem_explains_uid_and_capabilities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's EACCES on /proc/PID/root becomes the uids, gids and capabilities."""
    proc = tmp_path / "proc"
    for pid, uid, caps in (("7", "1000", "00000000a80425fb"), ("self", "0", "0000000000000000")):
        (proc / pid / "root").mkdir(parents=True)
        (proc / pid / "status").write_text(
            f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
            f"CapPrm:\t{caps}\nCapEff:\t{caps}\n"
        )
    real_open = os.open

    def refuse(path: str, *a: object, **kw: object) -> int:
        if str(path).endswith("/7/root"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(agent.os, "open", refuse)
    text = agent.access_problem(str(proc), 7)
    assert text is not None
    assert "target runs as uid 1000 gid 1000 with permitted capabilities 00000000a80425fb" in text
    assert "agent as uid 0 gid 0 with effective capabilities 0000000000000000" in text
    assert "--profile auto" in text and "--run-as UID:GID" in text


def test_node_upperdir(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    upper = "/var/lib/ctrd/snapshots/30/fs"
    for pid, ppid in (("4123", "4100"), ("4100", "1"), ("1", "0")):
        (proc / pid).mkdir(parents=True)
        (proc / pid / "stat").write_text(f"{pid} (x) S {ppid} 1 1\n")
    (proc / "4123" / "mountinfo").write_text(
        "900 800 0:55 / / rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,"
        f"upperdir={upper},workdir=/w\n"
    )
    assert agent.node_upperdir(str(proc), 4123) is None  # not visible anywhere
    (proc / "4100" / "root" / upper.lstrip("/")).mkdir(parents=True)  # the shim's view
    assert agent.node_upperdir(str(proc), 4123) == f"{proc}/4100/root{upper}"


def test_capture_refuses_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert agent.main(["capture", "--container-id", "0" * 64]) == 2


def test_capture_reports_a_missing_target(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "collectors.agent", "capture", "--mode", "node",
         "--container-id", "containerd://" + "ab" * 32, "--state-dir", str(tmp_path)],
        capture_output=True, check=False,
    )  # fmt: skip
    assert res.returncode == 2 and res.stdout == b""
    assert b'"kind": "target"' in res.stderr and b"belongs to container abababababab" in res.stderr
    assert (tmp_path / "done").exists() and not list(tmp_path.glob("capture.*"))
