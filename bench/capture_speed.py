"""Benchmark: `exuvia capture --files all` against `tar | sha256sum` on the same root.

Builds a target root of >= 50,000 files and >= 1 GiB, starts a process chrooted
into it in its own mount and PID namespaces, then times, in the same run:

  baseline: tar -cf - -C /proc/PID/root . | sha256sum
  exuvia:   exuvia capture pid://PID --files all -o OUT

Both read the same warm page cache. The two alternate which goes first; each run
prints both wall times, their ratio and the CPU time (user + system, children
included) each used. At the end: medians (ratio target <= 1.0), the load average,
and exuvia's peak RSS summed over its processes (it forks a reader process;
target <= 200 MiB). Needs root, gcc, unshare.

    sudo .venv/bin/python bench/capture_speed.py [--files 50000] [--gib 1.0] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SLEEPER_C = r"""
#include <unistd.h>
int main(void) { for (;;) pause(); }
"""


def build_root(root: Path, nfiles: int, total_bytes: int) -> None:
    rnd = random.Random(42)
    big_files = 8
    small_budget = total_bytes // 2
    big_each = (total_bytes - small_budget) // big_files
    small_each = max(1, small_budget // nfiles)
    block = bytes(rnd.getrandbits(8) for _ in range(1 << 16)) * 4  # 256 KiB, half compressible
    per_dir = 500
    for i in range(nfiles):
        d = root / "data" / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = max(1, int(small_each * rnd.uniform(0.2, 1.8)))
        off = rnd.randrange(0, len(block) - size) if size < len(block) else 0
        (d / f"f{i:06d}.bin").write_bytes(block[off : off + size])
    for j in range(big_files):
        with (root / "data" / f"big{j}.bin").open("wb") as f:
            left = big_each
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n


def start_target(root: Path) -> subprocess.Popen[bytes]:
    src = root / "sleeper.c"
    src.write_text(SLEEPER_C)
    (root / "app").mkdir(exist_ok=True)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(root / "app/sleeper"), str(src)], check=True)
    src.unlink()
    for d in ("proc", "tmp", "etc"):
        (root / d).mkdir(exist_ok=True)
    return subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--kill-child", f"--root={root}", "/app/sleeper"]
    )


def init_pid(wrapper: subprocess.Popen[bytes]) -> int:
    for _ in range(100):
        try:
            kids = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise SystemExit("target did not start")


def _tree_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in KiB (shared pages count twice)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [
                    int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()
                ]
        except (OSError, ValueError):
            continue
    return total


def timed(
    cmd: list[str] | str, shell: bool = False, cwd: Path | None = None
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, waited-for children included) and
    the peak of the process tree's summed RSS in MiB (sampled every 10 ms)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, shell=shell, stdout=subprocess.DEVNULL, cwd=cwd)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"{cmd} failed with {status}")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, max(peak[0], usage.ru_maxrss) // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="also time the exuvia of another source checkout (e.g. a worktree of main) "
        "in every run, for an A/B under the same load",
    )
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="exuvia-bench-"))
    root = work / "root"
    if not root.exists():
        print(f"building {args.files} files, {args.gib} GiB under {root} ...", flush=True)
        root.mkdir(parents=True)
        build_root(root, args.files, int(args.gib * (1 << 30)))
    wrapper = start_target(root)
    pid = 0
    try:
        pid = init_pid(wrapper)
        exuvia = [
            sys.executable,
            "-m",
            "tui.cli",
            "capture",
            f"pid://{pid}",
            "--files",
            "all",
            "--max-file-size",
            "1G",
            "-q",
        ]
        baseline = f"tar -cf - -C /proc/{pid}/root . | sha256sum"
        timed(baseline, shell=True)  # warm the page cache
        load0 = os.getloadavg()
        bases, exs, ratios, others, rss = [], [], [], [], 0
        for i in range(args.runs):
            out = work / f"out{i}.exv"
            runs: list[tuple[str, list[str] | str, Path | None]] = [
                ("base", baseline, None),
                ("exuvia", [*exuvia, "-o", str(out)], Path.cwd()),
            ]
            if args.compare_with:
                other = [*exuvia, "-o", str(work / f"other{i}.exv")]
                runs.append(("other", other, args.compare_with.resolve()))
            got: dict[str, tuple[float, float, int]] = {}
            for name, cmd, cwd in runs if i % 2 == 0 else runs[::-1]:
                got[name] = timed(cmd, shell=name == "base", cwd=cwd)
            for p in work.glob(f"other{i}.exv*"):
                p.unlink()
            for p in work.glob(f"out{i}.exv*"):
                p.unlink()
            (tb, cb, _), (te, ce, r) = got["base"], got["exuvia"]
            bases.append(tb)
            exs.append(te)
            ratios.append(te / tb)
            rss = max(rss, r)
            print(
                f"run {i}: baseline {tb:.2f}s (cpu {cb:.2f}s)  exuvia {te:.2f}s "
                f"(cpu {ce:.2f}s)  ratio {te / tb:.2f}  peak RSS {r} MiB",
                flush=True,
            )
            if "other" in got:
                to, co, ro = got["other"]
                others.append(to / tb)
                print(
                    f"       {args.compare_with}: {to:.2f}s (cpu {co:.2f}s)  "
                    f"ratio {to / tb:.2f}  peak RSS {ro} MiB",
                    flush=True,
                )
        load1 = os.getloadavg()
        print(f"files={args.files} size={args.gib} GiB cores={os.cpu_count()} runs={args.runs}")
        print(f"load average (1 min) before {load0[0]:.2f}, after {load1[0]:.2f}")
        print(f"baseline (tar | sha256sum): median {statistics.median(bases):.2f}s")
        print(f"exuvia capture --files all: median {statistics.median(exs):.2f}s")
        print(
            f"ratio exuvia/baseline: median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target <= 1.00)"
        )
        print(f"exuvia peak RSS, all its processes: {rss} MiB (target <= 200)")
        if others:
            print(f"{args.compare_with}: ratio median {statistics.median(others):.2f}")
    finally:
        # the target is PID 1 of its namespace and ignores SIGTERM: kill it, and
        # unshare (waiting for it) follows
        with contextlib.suppress(NameError, ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wrapper.kill()
        wrapper.wait()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
