"""Benchmark: `exuvia capture -o s3://…` (versitygw on 127.0.0.1) against the same
capture to a local file, in the same run.

Builds a target root (default 5,000 files, 0.5 GiB; see bench/capture_speed.py),
starts a process chrooted into it, starts a real versitygw (posix backend, a
bucket with object lock) on this machine, then alternates, run by run:

  local:  exuvia capture pid://PID --files all -o OUT.exv
  store:  exuvia capture pid://PID --files all -o s3://bench/runN.exv --retain 1h

and prints both wall times, their ratio (target <= 1.2) and exuvia's peak RSS
for the store capture (target <= 250 MiB). The server runs on the same two
cores and writes to the same disk, so the store side also pays for the
server's CPU and its copy of the bytes: figures are noisy on a shared machine
(the load average before and after is printed; say so when quoting them).

    sudo .venv/bin/python bench/store_capture.py [--files 5000] [--gib 0.5] [--runs 3]
        [--compress none|zstd]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture_speed import build_root, init_pid, start_target, timed

from tests.support.s3server import S3Server, versitygw_binary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5_000)
    ap.add_argument("--gib", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--compress", choices=("zstd", "none"), default="none",
        help="none (default) sends every byte of the root: its files share a few blocks "
        "that zstd folds to ~1%%, which would leave the upload nothing to do",
    )  # fmt: skip
    args = ap.parse_args()
    binary = versitygw_binary()
    if binary is None:
        raise SystemExit("Go is needed to build versitygw")
    work = Path(tempfile.mkdtemp(prefix="exuvia-store-bench-"))
    root = work / "root"
    print(f"building {args.files} files, {args.gib} GiB under {root} ...", flush=True)
    root.mkdir()
    build_root(root, args.files, int(args.gib * (1 << 30)))
    server = S3Server(binary, work / "s3")
    server.start()
    server.make_bucket("bench", lock=True)
    os.environ.update(server.env())
    wrapper = start_target(root)
    pid = 0
    try:
        pid = init_pid(wrapper)
        base = [sys.executable, "-m", "tui.cli", "capture", f"pid://{pid}", "--files", "all",
                "--max-file-size", "1G", "--compress", args.compress, "-q"]  # fmt: skip
        timed([*base, "-o", str(work / "warm.exv")])  # warm the page cache
        load0 = os.getloadavg()
        locals_, stores, ratios, rss_local, rss_store = [], [], [], 0, 0
        for i in range(args.runs):
            out = work / f"out{i}.exv"
            runs = [
                ("local", [*base, "-o", str(out)]),
                ("store", [*base, "-o", f"s3://bench/run{i}.exv", "--retain", "1h",
                           "--endpoint-url", server.endpoint]),
            ]  # fmt: skip
            got = {}
            for name, cmd in runs if i % 2 == 0 else runs[::-1]:
                got[name] = timed(cmd, cwd=Path.cwd())
            local_size = out.stat().st_size
            for p in work.glob(f"out{i}.exv*"):
                p.unlink()
            (tl, cl, rl), (ts, cs, rs) = got["local"], got["store"]
            locals_.append(tl)
            stores.append(ts)
            ratios.append(ts / tl)
            rss_local, rss_store = max(rss_local, rl), max(rss_store, rs)
            print(
                f"run {i}: local {tl:.2f}s (cpu {cl:.2f}s, {rl} MiB)  store {ts:.2f}s "
                f"(cpu {cs:.2f}s, {rs} MiB)  ratio {ts / tl:.2f}",
                flush=True,
            )
        load1 = os.getloadavg()
        c = server.client()
        size = sum(c.head_object(Bucket="bench", Key=f"run{i}.exv")["ContentLength"]
                   for i in range(args.runs))  # fmt: skip
        print(f"files={args.files} size={args.gib} GiB cores={os.cpu_count()} runs={args.runs}")
        print(f"bundle size: {size / args.runs / 1e6:.1f} MB per capture in the store, "
              f"{local_size / 1e6:.1f} MB on local disk")  # fmt: skip
        print(f"load average (1 min) before {load0[0]:.2f}, after {load1[0]:.2f}")
        print(f"local capture: median {statistics.median(locals_):.2f}s")
        print(f"store capture: median {statistics.median(stores):.2f}s")
        print(
            f"ratio store/local: median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target <= 1.20)"
        )
        print(f"peak RSS, all exuvia's processes: store {rss_store} MiB (target <= 250), "
              f"local {rss_local} MiB")  # fmt: skip
    finally:
        with contextlib.suppress(NameError, ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wrapper.kill()
        wrapper.wait()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
