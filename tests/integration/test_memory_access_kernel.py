"""The kernel's rule for reading another process's /proc/PID/mem without
CAP_SYS_PTRACE (what an ephemeral agent in a baseline or restricted namespace
relies on, collectors/k8s/memory_access.py), checked on this machine's kernel with
real processes: same uid and gid, and the reader's effective capabilities a
superset of the target's permitted ones. setpriv gives each process the
capability set a container runtime would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collectors.k8s.memory_access import RUNTIME_DEFAULT_CAPS

REPO = Path(__file__).resolve().parents[2]
YAMA = Path("/proc/sys/kernel/yama/ptrace_scope")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set uids and capabilities"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv not installed"),
    pytest.mark.skipif(
        YAMA.exists() and YAMA.read_text().strip() != "0",
        reason="Yama ptrace_scope >= 1 here: only CAP_SYS_PTRACE may read (the agent says so)",
    ),
]
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by any uid (the venv's may not be)


def caps(names: frozenset[str] | set[str]) -> list[str]:
    """setpriv: a bounding set of exactly ``names`` (root keeps all of it after exec)."""
    return ["--bounding-set", "-all," + ",".join("+" + n.lower() for n in sorted(names))]


def as_user(uid: int) -> list[str]:
    return ["--reuid", str(uid), "--regid", str(uid), "--clear-groups"]


@contextmanager
def target(*priv: str) -> Iterator[int]:
    proc = subprocess.Popen(["setpriv", *priv, "sleep", "60"])
    try:
        for _ in range(200):  # until it has exec'd sleep with its new credentials
            if Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep":
                break
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def agent_check(pid: int, *priv: str) -> str:
    """collectors.agent.memory_problem run by a root process with ``priv`` applied."""
    code = (
        "import sys; from collectors.agent import memory_problem; "
        "print(memory_problem('/proc', int(sys.argv[1])) or 'OK')"
    )
    res = subprocess.run(
        ["setpriv", *priv, sys.executable, "-c", code, str(pid)],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def opens_mem(pid: int, *priv: str) -> str:
    """A non-root reader: just the open(2) the agent's check does."""
    code = (
        "import os, sys\n"
        "try: os.close(os.open(f'/proc/{sys.argv[1]}/mem', os.O_RDONLY)); print('OK')\n"
        "except OSError as e: print(e.strerror)"
    )
    res = subprocess.run(["setpriv", *priv, SYSTEM_PYTHON, "-c", code, str(pid)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_baseline_root_agent_with_default_caps_reads_a_root_target_with_default_caps() -> None:
    with target(*caps(RUNTIME_DEFAULT_CAPS)) as pid:
        assert agent_check(pid, *caps(RUNTIME_DEFAULT_CAPS)) == "OK"


def test_a_target_capability_the_agent_lacks_is_refused_and_explained() -> None:
    with target(*caps(RUNTIME_DEFAULT_CAPS | {"SYS_TIME"})) as pid:
        msg = agent_check(pid, *caps(RUNTIME_DEFAULT_CAPS))
    assert msg.startswith(f"--memory: the kernel refuses this agent /proc/{pid}/mem:"), msg
    assert "uid 0 gid 0" in msg and msg.endswith("use --node-level --memory")


def test_sys_ptrace_reads_a_target_with_more_capabilities() -> None:
    with target(*caps(RUNTIME_DEFAULT_CAPS | {"SYS_TIME", "NET_ADMIN"})) as pid:
        assert agent_check(pid, *caps(RUNTIME_DEFAULT_CAPS | {"SYS_PTRACE"})) == "OK"


def test_restricted_non_root_agent_reads_only_its_own_uid() -> None:
    drop_all = ["--bounding-set", "-all", "--inh-caps", "-all"]
    with target(*as_user(65534), *drop_all) as pid:
        assert opens_mem(pid, *as_user(65534), *drop_all) == "OK"
        assert opens_mem(pid, *as_user(65533), *drop_all) == "Permission denied"
