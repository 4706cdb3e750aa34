"""Benchmark: launch of `exuvia triage runc://ID` to the first process tree on screen.

Starts the lab's shell-less target under runc (tui/demo), then, in the same run:

  triage:    `exuvia triage runc://ID` in a real terminal (tmux, 160x50); the
             clock runs from launching the command to the first captured pane
             that shows the whole process tree (the target and its three children)
  baselines: `python -c 'import textual.app'` (the interpreter and the UI
             library alone, no work), `ps -e -o pid,args` (the classic tool
             listing processes once) and `exuvia --version` (what the command
             line costs before any command runs: it imports every command)

Prints each time (best of N), the ratio triage / textual import, and the
target: the tree on screen within 1.5 s. Needs root, runc, gcc, tmux.

    sudo .venv/bin/python bench/triage_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tui.demo.launch import start_runc
from tui.demo.rootfs import build_demo_rootfs

VENV_BIN = Path(sys.executable).parent
TARGET_S = 1.5


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def triage_to_tree(uri: str, cid: str, out: Path) -> float:
    sock = f"exuvia-bench-{uuid.uuid4().hex[:8]}"
    cmd = (
        f"env -u COLUMNS -u LINES TZ=UTC TEXTUAL_ANIMATIONS=none "
        f"{VENV_BIN / 'exuvia'} triage {uri} -o {out}; sleep 30"
    )
    tmux = ["tmux", "-L", sock]
    t0 = time.perf_counter()
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "50", cmd], check=True)
    try:
        while True:
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p"], capture_output=True, text=True, check=False
            ).stdout
            if "/app/target" in screen and screen.count("└─") >= 3 and cid in screen:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > 30:
                raise SystemExit("the tree never appeared:\n" + screen)
            time.sleep(0.01)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
        tmpdir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (tmpdir / sock).unlink(missing_ok=True)  # a dead server leaves its socket file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    load0 = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory(prefix="exuvia-bench-") as tmp:
        wd = Path(tmp)
        rootfs = build_demo_rootfs(wd)
        handle = start_runc(rootfs, wd / "bundles")
        try:
            imports, pss, clis, tri = [], [], [], []
            for _ in range(args.runs):
                imports.append(timed([sys.executable, "-c", "import textual.app"]))
                pss.append(timed(["ps", "-e", "-o", "pid,args"]))
                clis.append(timed([str(VENV_BIN / "exuvia"), "--version"]))
                tri.append(triage_to_tree(handle.uri, handle.container_id, wd))
        finally:
            handle.stop()
    best_t, best_i, best_p = min(tri), min(imports), min(pss)
    print(f"runs: {args.runs} (best of)")
    print(f"baseline python -c 'import textual.app': {best_i:.3f} s")
    print(f"baseline ps -e -o pid,args:              {best_p:.3f} s")
    print(f"baseline exuvia --version:               {min(clis):.3f} s")
    median = sorted(tri)[len(tri) // 2]
    print(f"exuvia triage: launch -> tree on screen:  {best_t:.3f} s  (median {median:.3f} s)")
    print(f"ratio triage / textual import:           {best_t / best_i:.2f}")
    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.2f}")
    print(f"target <= {TARGET_S} s: {'met' if best_t <= TARGET_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
