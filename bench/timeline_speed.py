"""Benchmark: building the timeline store of a bundle with >= 2 million events.

Synthesizes (once, cached under --workdir) a bundle written by the real
BundleWriter: a filesystem.jsonl of --entries entries with 3 or 4 distinct
times each (half of them share their birth and change time), a CRI runtime log
of --log-lines lines (one in ten without a time of its own), 100 processes and
a custody log. Then, in the same run:

  build    exuvia's store from the bundle, --runs times, each in a fresh child
           process: wall time, events/s (target >= 250,000), and the peak RSS of
           the building process and of its indexing process (target <= 300 MiB)
  queries  a time window (500 events at a random time) and full-text searches,
           median and max of 25 runs after a warm-up (target < 50 ms)
  mactime  sleuthkit's `mactime -b BODYFILE -y -d` on exuvia's bodyfile of the
           same entries (output to /dev/null), and the ratio mactime / exuvia

The machine is shared: the load average is printed before each build, and the
best and the median of the runs are both reported. Each build starts clean (the
previous store removed, dirty pages synced).

    .venv/bin/python bench/timeline_speed.py [--entries 600000] [--log-lines 300000]

With ``--real`` it runs on a real input instead (bench/timeline_real.py: the
tree of bench/realtree.py captured with ``--files all``; mactime, every export
format, plaso with ``--plaso``); the targets are judged there:

    sudo .venv/bin/python bench/timeline_speed.py --real [--runs 3] [--plaso] [--old-bundle]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forensics.bundle import BundleWriter  # noqa: E402
from forensics.timeline import Query, Timeline, write_export  # noqa: E402
from forensics.timeutil import iso_ns  # noqa: E402

NS = 1_000_000_000
BASE = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
DAY = 86400 * NS


def _fs_lines(n: int, rnd: random.Random) -> bytes:
    out = []
    for i in range(n):
        m = BASE + rnd.randrange(300 * DAY)
        a = m + rnd.randrange(1, 30 * DAY)
        c = m + rnd.randrange(1, NS)
        b = (m - rnd.randrange(1, DAY)) if i % 2 else c  # half share b with c
        d = i // 200
        rec = {
            "atime_ns": a, "btime_ns": b, "changed": i % 50 == 0, "ctime_ns": c,
            "dev": "0:39", "gid": 0, "hashed_bytes": 1000 + i % 5000, "inode": 100_000 + i,
            "kind": "fs_entry", "mode": "0644", "mtime_ns": m, "nlink": 1,
            "path": f"/usr/lib/app{d % 40}/pkg{d}/module_{i}.py",
            "sha256": f"{i:064x}", "size": 1000 + i % 5000, "type": "file", "uid": 0,
        }  # fmt: skip
        out.append(json.dumps(rec, sort_keys=True, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode()


def _cri_log(n: int, rnd: random.Random) -> bytes:
    out = []
    t = BASE + 200 * DAY
    verbs = ["GET", "POST", "PUT", "DELETE"]
    for i in range(n):
        t += rnd.randrange(1, 50_000_000)
        own = iso_ns(t)
        msg = (
            f"{own} INFO worker[{i % 7}]: {verbs[i % 4]} /api/v1/items/{i % 1000} "
            f"status={200 if i % 97 else 500} dur={i % 89}ms req=r{i:07d}"
        )
        if i % 10 == 9:  # some lines without their own time: placed by receive time
            msg = f"handled batch {i} without a timestamp"
        out.append(f"{iso_ns(t + 1_000)} {'stdout' if i % 5 else 'stderr'} F {msg}")
    return ("\n".join(out) + "\n").encode()


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def synthesize(path: Path, entries: int, log_lines: int) -> int:
    """Write the bench bundle; returns the number of events it must give."""
    rnd = random.Random(7)
    procs = [
        {"kind": "process", "pid": 1000 + i, "nspid": 1 + i, "ppid": 1000, "name": f"w{i}",
         "cmdline": [f"/app/w{i}", "--serve"], "uid": {"real": 0, "effective": 0},
         "gid": {"real": 0, "effective": 0}, "start_ns": BASE + i * NS}
        for i in range(100)
    ]  # fmt: skip
    target = {
        "uri": "containerd://bench", "runtime": "containerd", "pid": 1000,
        "container_id": "bench", "name": "bench", "created_ns": BASE - NS, "started_ns": BASE,
        "status": "running", "log_paths": ["/var/log/pods/bench/0.log"], "log_format": "cri",
        "runtime_facts": {},
    }  # fmt: skip
    source = {
        "kind": "log_source", "origin": "runtime", "format": "cri",
        "host_path": "/var/log/pods/bench/0.log", "member": "logs/runtime/01-0.log",
    }  # fmt: skip
    end = BASE + 400 * DAY
    custody = [
        {"seq": i, "ts_ns": end + i, "action": f"step.{i}", "examiner": "bench", "host": "b"}
        for i in range(1, 6)
    ]
    tmp = path.with_suffix(".partial")
    with tmp.open("wb") as raw:
        w = BundleWriter(raw, threads=2)
        w.add_bytes("artifacts/target.json", json.dumps(target).encode() + b"\n")
        w.add_bytes("artifacts/processes.jsonl", _jsonl(procs))
        w.add_bytes("artifacts/filesystem.jsonl", _fs_lines(entries, rnd))
        w.add_bytes("logs/runtime/01-0.log", _cri_log(log_lines, rnd))
        w.add_bytes("artifacts/logs.jsonl", _jsonl([source]))
        w.add_bytes("custody.jsonl", _jsonl(custody))
        w.finish({"acquisition": {"start_ns": end - NS, "end_ns": end}, "complete": True})
    tmp.rename(path)
    fs_events = entries // 2 * 4 + (entries - entries // 2) * 3
    return fs_events + log_lines + len(procs) + 2 + len(custody)


CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from forensics.timeline import open_timeline
t0 = time.perf_counter()
tl = open_timeline({bundle!r}, rebuild=True, cache_dir={cache!r})
dt = time.perf_counter() - t0
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(json.dumps({{"seconds": dt, "events": tl.meta["events"], "path": str(tl.path),
                  "phases": tl.meta.get("build_seconds"), "rss_main_kib": int(hwm),
                  "rss_indexer_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}))
"""


def build_once(bundle: Path, cache: Path) -> dict[str, Any]:
    code = CHILD.format(root=str(ROOT), bundle=str(bundle), cache=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return res


def timed_ms(fn: Callable[[], object], runs: int = 25) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def queries(tl: Timeline) -> None:
    lo, hi = tl.meta["time_min"], tl.meta["time_max"]
    rnd = random.Random(3)
    starts = iter([rnd.randrange(lo, hi) for _ in range(100)])
    win = timed_ms(lambda: tl.events(Query(start=next(starts)), limit=500))
    print(f"  time window, 500 events        median {win[0]:6.1f} ms  max {win[1]:6.1f} ms")
    page = tl.events(Query(start=(lo + hi) // 2), limit=500)
    after = (page[-1].ts, page[-1].id)
    nxt = timed_ms(lambda: tl.events(limit=500, after=after))
    print(f"  next page (keyset), 500 events median {nxt[0]:6.1f} ms  max {nxt[1]:6.1f} ms")
    for label, text in (
        ("full-text, a file name", "module_123457"),
        ("full-text, a request id", "r0012345"),
        ("full-text, 3 words", "items 123 status"),
        ("full-text, prefix", "module_12345*"),
        ("full-text, a common word", "DELETE"),
    ):
        n = tl.count(Query(text=text))
        ft = timed_ms(lambda t=text: tl.events(Query(text=t), limit=500))  # type: ignore[misc]
        print(f"  {label:<31}median {ft[0]:6.1f} ms  max {ft[1]:6.1f} ms  ({n} hits)")
    hist = timed_ms(lambda: tl.histogram(buckets=100), runs=5)
    print(f"  histogram, whole timeline      median {hist[0]:6.1f} ms")
    day = timed_ms(lambda: tl.histogram(Query(start=lo, end=lo + DAY), buckets=96), runs=5)
    print(f"  histogram, one day             median {day[0]:6.1f} ms")


def main() -> int:
    if "--real" in sys.argv[1:]:
        from bench.timeline_real import main as real_main  # noqa: PLC0415

        return real_main([a for a in sys.argv[1:] if a != "--real"])
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--entries", type=int, default=600_000)
    ap.add_argument("--log-lines", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/exuvia-bench-timeline"))
    args = ap.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    bundle = args.workdir / f"bench-{args.entries}-{args.log_lines}.exv"
    expected = None
    if not bundle.exists():
        t0 = time.perf_counter()
        expected = synthesize(bundle, args.entries, args.log_lines)
        print(f"synthesized {bundle} in {time.perf_counter() - t0:.1f}s")
    print(f"bundle: {bundle} ({bundle.stat().st_size / 1e6:.1f} MB compressed)")
    cache = Path(tempfile.mkdtemp(prefix="tlbench-", dir=args.workdir))
    try:
        results = []
        for i in range(args.runs):
            for old in cache.glob("timeline-*.sqlite"):  # each build starts clean
                old.unlink()
            os.sync()  # and no earlier run's writeback competes with it
            load = os.getloadavg()[0]
            res = build_once(bundle, cache)
            results.append(res)
            rate = res["events"] / res["seconds"]
            print(
                f"build {i + 1}: {res['events']} events in {res['seconds']:.2f}s = "
                f"{rate:,.0f} events/s; peak RSS {res['rss_main_kib'] / 1024:.0f} MiB "
                f"(+ indexer {res['rss_indexer_kib'] / 1024:.0f} MiB); load before {load:.2f}"
            )
        if expected is not None and results[0]["events"] != expected:
            print(f"WARNING: expected {expected} events")
        secs = sorted(r["seconds"] for r in results)
        events = results[0]["events"]
        best, median = events / secs[0], events / statistics.median(secs)
        rss = max(r["rss_main_kib"] + r["rss_indexer_kib"] for r in results) / 1024
        print(
            f"events/s: best {best:,.0f}, median {median:,.0f} (target >= 250,000); "
            f"peak RSS, both processes together: {rss:.0f} MiB (target <= 300)"
        )
        tl = Timeline(results[-1]["path"])
        print("queries:")
        queries(tl)
        body = cache / "bench.body"
        t0 = time.perf_counter()
        n = write_export(tl, Query(sources=("fs",)), "bodyfile", body)
        print(f"bodyfile: {n} entries written in {time.perf_counter() - t0:.2f}s")
        tl.close()
        mactime = shutil.which("mactime")
        if mactime is None:
            print("mactime: not installed (apt-get install sleuthkit); no ratio")
            return 0
        t0 = time.perf_counter()
        with open(os.devnull, "wb") as null:
            subprocess.run([mactime, "-b", str(body), "-y", "-d"], stdout=null, check=True)
        mt = time.perf_counter() - t0
        med = statistics.median(secs)
        print(
            f"mactime -b on the same {n} entries: {mt:.2f}s; exuvia's whole build "
            f"({events} events, median): {med:.2f}s; mactime / exuvia = {mt / med:.2f}x "
            f"({'exuvia faster' if mt > med else 'EXUVIA SLOWER'})"
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
