"""Benchmark: `exuvia capture --files all` against `tar | sha256sum` on the same root.

Builds a target root of >= 50,000 files and >= 1 GiB, starts a process chrooted
into it in its own mount and PID namespaces, then times, in the same run:

  baseline: tar -cf - -C /proc/PID/root . | sha256sum
  exuvia:   exuvia capture pid://PID --files all -o OUT

Both read the same warm page cache. Prints wall times, the ratio (target <= 1.0)
and exuvia's peak RSS (target <= 200 MiB). Needs root, gcc, unshare.

    sudo .venv/bin/python bench/capture_speed.py [--files 50000] [--gib 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
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


def timed(cmd: list[str] | str, shell: bool = False) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, shell=shell, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"{cmd} failed with {status}")
    return elapsed, usage.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
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
        best_base, best_ex, rss = 1e9, 1e9, 0
        for i in range(args.runs):
            tb, _ = timed(baseline, shell=True)
            out = work / f"out{i}.exv"
            te, r = timed([*exuvia, "-o", str(out)])
            for p in work.glob(f"out{i}.exv*"):
                p.unlink()
            best_base, best_ex, rss = min(best_base, tb), min(best_ex, te), max(rss, r)
            print(f"run {i}: baseline {tb:.2f}s  exuvia {te:.2f}s  peak RSS {r} MiB", flush=True)
        print(f"files={args.files} size={args.gib} GiB cores={os.cpu_count()}")
        print(f"baseline (tar | sha256sum): {best_base:.2f}s")
        print(f"exuvia capture --files all: {best_ex:.2f}s")
        print(f"ratio exuvia/baseline: {best_ex / best_base:.2f} (target <= 1.00)")
        print(f"exuvia peak RSS: {rss} MiB (target <= 200)")
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
