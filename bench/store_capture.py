"""Benchmark: `exuvia capture -o s3://…` (versitygw on 127.0.0.1) against the same
capture to a local file, in the same run (bench/benchlib.py: alternating order,
wall, CPU, peak RSS of the whole process tree, machine load before and after).

Input: the real tree of bench/realtree.py under runc (default; this machine's
libraries, docs and Python, >= 100,000 files and 2 GiB, cached under
/var/cache/exuvia-bench/), or the synthetic root of bench/capture_speed.py
(``--input synthetic``). A real versitygw (posix backend, a bucket with object
lock, keep-alive) is started on this machine, then, run by run:

  local:  exuvia capture URI --files all --max-file-size 1G -o OUT.exv
  store:  exuvia capture URI --files all --max-file-size 1G -o s3://bench/runN.exv --retain 1h

and prints both, the ratio store/local (target <= 1.2) and exuvia's peak RSS
for the store capture (target <= 250 MiB). The server runs on the same two
cores and writes to the same disk, so the store side also pays for the
server's CPU, its copy of each part, its assembly of the object on completion
and its server-side copy of the sealed ``.partial`` to the final key
(docs/evidence-store.md): figures are noisy on a shared machine (say the
printed load when quoting them).

    sudo .venv/bin/python bench/store_capture.py --runs 3
        [--input real|synthetic] [--files 5000 --gib 0.5] [--compress zstd|none]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchlib
import realtree
from capture_speed import real_target, synthetic_target

from tests.support.s3server import S3Server, versitygw_binary

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", choices=("real", "synthetic"), default="real")
    ap.add_argument("--files", type=int, default=5_000, help="synthetic: file count")
    ap.add_argument("--gib", type=float, default=0.5, help="synthetic: total size")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compress", choices=("zstd", "none"), default="zstd")
    ap.add_argument("--baseline-repo", type=Path, metavar="CHECKOUT",
                    help="also time the store capture from this other checkout, alternating "
                         "(before/after a change in the same run)")  # fmt: skip
    args = ap.parse_args()
    # a SIGTERM (timeout(1)) still stops the server and removes the container
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        ap.error("needs root (runc, unshare, reading the target's files)")
    binary = versitygw_binary()
    if binary is None:
        raise SystemExit("Go is needed to build versitygw")
    work = Path(tempfile.mkdtemp(prefix="exuvia-store-bench-", dir=realtree.CACHE))
    server = S3Server(binary, work / "s3")
    server.start()
    try:
        server.make_bucket("bench", lock=True)
        target = (
            real_target()
            if args.input == "real"
            else synthetic_target(work / "synthetic", args.files, args.gib)
        )
        with target as (pid, uri, what):
            print(f"== {what}; store: versitygw posix on {server.endpoint}", flush=True)
            run(pid, uri, work, server, args.runs, args.compress, args.baseline_repo)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def capture_argv(uri: str, output: str, *extra: str) -> list[str]:
    argv = realtree.exuvia_capture_argv(uri, Path("OUT"), *extra)
    argv[argv.index("-o") + 1] = output  # a Path would fold s3://'s two slashes
    return argv


def server_cpu(server: S3Server) -> float:
    """The server's CPU seconds so far (user + system, from /proc)."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phases(server: S3Server, key: str, started_ns: int, ended_ns: int) -> str:
    """Where a store capture's wall time went, from its custody object's records:
    start-up + preflight, stream (capture + parts), completion of the ``.partial``
    (``store.staged``, absent before it was recorded), seal copy, removal, custody put."""
    body = server.client().get_object(Bucket="bench", Key=key + ".custody.jsonl")["Body"].read()
    ts = {}
    for line in body.splitlines():
        entry = json.loads(line)
        ts.setdefault(entry["action"], entry["ts_ns"])
    marks = [("start-up+preflight", "store.upload.started"), ("stream", "store.staged"),
             ("seal copy", "store.copied"), ("remove .partial", "bundle.sealed")]  # fmt: skip
    out, last, pending = [], started_ns, ""
    for label, action in marks:
        if action not in ts:  # an older checkout's log: the phase is in the next one
            pending += label + "+"
            continue
        out.append(f"{pending}{label} {(ts[action] - last) / 1e9:.2f}s")
        last, pending = ts[action], ""
    out.append(f"custody put+exit {(ended_ns - last) / 1e9:.2f}s")
    return ", ".join(out)


def run(  # noqa: PLR0917
    pid: int, uri: str, work: Path, server: S3Server, runs: int, compress: str,
    baseline: Path | None,
) -> None:  # fmt: skip
    out = work / "out.exv"
    env = {"PYTHONPATH": str(REPO), **server.env()}
    extra = ("--compress", compress)
    numbers = itertools.count()
    local_bytes = [0]

    def clean() -> None:
        if out.exists():
            local_bytes[0] = out.stat().st_size
        for p in work.glob("out.exv*"):
            p.unlink()

    # 3: sealed with skips recorded (a real tree has some), as in capture_speed.py
    local = benchlib.Command("local", capture_argv(uri, str(out), *extra), cwd=REPO, env=env,
                             before=clean, after=clean, ok_codes=(0, 3))  # fmt: skip
    stores = [benchlib.Command("store", [], cwd=work, env=env, ok_codes=(0, 3))]
    if baseline is not None:
        stores.append(
            benchlib.Command(
                "store-baseline",
                [],
                cwd=work,
                ok_codes=(0, 3),
                env={**env, "PYTHONPATH": str(baseline.resolve())},
            )
        )
    server_cpus: dict[str, list[float]] = {c.name: [] for c in stores}
    for cmd in stores:
        state: dict[str, Any] = {}

        def next_key(cmd: benchlib.Command = cmd, state: dict[str, Any] = state) -> None:
            # evidence is never overwritten: a new key each run
            state["key"] = f"run{next(numbers)}.exv"
            cmd.argv = [*capture_argv(uri, f"s3://bench/{state['key']}", *extra),
                        "--retain", "1h", "--endpoint-url", server.endpoint]  # fmt: skip
            state["cpu"], state["t0"] = server_cpu(server), time.time_ns()

        def report(cmd: benchlib.Command = cmd, state: dict[str, Any] = state) -> None:
            ended, cpu = time.time_ns(), server_cpu(server) - state["cpu"]
            server_cpus[cmd.name].append(cpu)
            print(
                f"  {cmd.name} {state['key']}: server CPU {cpu:.2f}s; "
                f"{phases(server, state['key'], state['t0'], ended)}",
                flush=True,
            )

        cmd.before, cmd.after = next_key, report
    # one untimed tar warms the page cache for both (as capture_speed.py does)
    warm = f"tar --one-file-system -cf - -C /proc/{pid}/root . >/dev/null"
    benchlib.measure(benchlib.Command("warm-up", warm, shell=True))
    res = benchlib.compare([local, *stores], runs=runs, warmup=False)
    head = server.client().head_object(Bucket="bench", Key="run0.exv")
    print(f"bundle (--compress {compress}): {head['ContentLength'] / 1e6:.1f} MB in the "
          f"store, {local_bytes[0] / 1e6:.1f} MB on local disk")  # fmt: skip
    for cmd in stores:
        print(res.ratio_line(cmd.name, "local", 1.2))
        print(f"peak RSS over all exuvia's processes: {cmd.name} {res.peak_rss(cmd.name):.0f} "
              f"MiB (target <= 250), local {res.peak_rss('local'):.0f} MiB; server CPU median "
              f"{statistics.median(server_cpus[cmd.name]):.2f}s")  # fmt: skip
    print(f"after: {benchlib.load_text()}")


if __name__ == "__main__":
    main()
