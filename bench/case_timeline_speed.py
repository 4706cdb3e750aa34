"""Benchmark: the merged timeline of a case against its bundles' own timelines.

Synthesizes (once, under --workdir) a case of --pods bundles written by the real
BundleWriter and filed by the real CaseWriter, each with --entries filesystem
entries (3-4 distinct times each) and a log of --log-lines lines. Then, in the
same run, on the same stores (each bundle's store is built by the single-bundle
machinery first; building is the same code as `exuvia timeline BUNDLE`, see
bench/timeline_speed.py):

  iterate  (--iterate) every event of the case in merged order (forensics/timeline/case.py)
           vs every event of each bundle's own timeline, one after the other:
           events/s of both and the ratio merged / alone (the merge's overhead)
  export   each format (--formats; jsonl, csv, l2tcsv, bodyfile) of the whole case vs
           of each bundle alone, --runs times in turn (alone, case, alone, case...),
           the least wall and the least CPU time of each: the ratio of wall and of
           CPU time (target <= 1.1x, judged on CPU time: the wall time is the
           machine's load)
  window   500 events from a random time across every pod: median and max of 25
           (issue 11's target for a bundle: < 50 ms)

The machine is shared with other jobs: the load average is printed before and
after, and the figures are noisy.

    .venv/bin/python bench/case_timeline_speed.py [--pods 5] [--entries 60000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forensics.bundle import BundleWriter  # noqa: E402
from forensics.case import CaseWriter, bundle_file_name  # noqa: E402
from forensics.timeline import Query, open_timeline, write_export  # noqa: E402
from forensics.timeline.case import CaseTimeline, open_case_timeline, write_case_export  # noqa: E402
from forensics.timeline.export import FORMATS  # noqa: E402
from forensics.timeutil import iso_ns  # noqa: E402

NS = 1_000_000_000
#: a case's export per event against its bundles' own exports of the same events
TARGET = 1.1
BASE = 1_767_225_600 * NS
DAY = 86400 * NS


def _bundle(path: Path, pod: str, entries: int, log_lines: int, seed: int) -> tuple[str, int]:
    rnd = random.Random(seed)
    fs = []
    for i in range(entries):
        m = BASE + rnd.randrange(300 * DAY)
        rec = {"kind": "fs_entry", "path": f"/usr/lib/app/pkg{i // 200}/m_{i}.py", "type": "file",
               "size": 1000 + i % 5000, "mode": "0644", "uid": 0, "gid": 0, "inode": 100 + i,
               "mtime_ns": m, "atime_ns": m + rnd.randrange(1, DAY), "ctime_ns": m + 1,
               "btime_ns": m - rnd.randrange(1, DAY) if i % 2 else m + 1}  # fmt: skip
        fs.append(json.dumps(rec, separators=(",", ":")))
    t = BASE + 200 * DAY
    log = []
    for i in range(log_lines):
        t += rnd.randrange(1, 50_000_000)
        log.append(f"{iso_ns(t)} INFO {pod}[1]: GET /api/items/{i % 1000} status=200")
    target = {"uri": f"k8s://bench/{pod}/app", "runtime": "k8s", "started_ns": BASE}
    with path.open("wb") as raw:
        w = BundleWriter(raw)
        w.add_bytes("artifacts/target.json", json.dumps(target).encode() + b"\n")
        w.add_bytes("artifacts/filesystem.jsonl", ("\n".join(fs) + "\n").encode())
        w.add_bytes("logs/runtime/01-app.log", ("\n".join(log) + "\n").encode())
        src = {"kind": "log_source", "origin": "runtime", "format": "raw",
               "member": "logs/runtime/01-app.log"}  # fmt: skip
        w.add_bytes("artifacts/logs.jsonl", json.dumps(src).encode() + b"\n")
        sha, _ = w.finish({"complete": True, "target": target})
        return sha, w.file_bytes


def synthesize(d: Path, pods: int, entries: int, log_lines: int) -> Path:
    if (d / "case.json").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    names = [f"web-{i}" for i in range(pods)]
    w = CaseWriter.create(d, case_id="BENCH", examiner="bench", request={"target": "bench"})
    owners = [{"kind": "Deployment", "name": "web"}]
    pods = [{"namespace": "bench", "name": n, "uid": n, "node": "n1", "owners": owners}
            for n in names]  # fmt: skip
    w.resolved(pods, at_ns=BASE)
    for i, n in enumerate(names):
        file = bundle_file_name("bench", n, "app")
        w.add_bundle("bench", n, "app", file=file)
        w.started("bench", n, "app")
        sha, size = _bundle(d / file, n, entries, log_lines, i)
        w.finished("bench", n, "app", status="complete", file=file, manifest_sha256=sha, size=size)
    w.seal()
    return d


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _children_cpu() -> float:
    """CPU seconds of the waited-for children (a bundle's export of >= 200,000 events
    writes its second half in a child process, and so does a case's)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _once(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU time is this process's and its children's."""
    c0 = time.process_time() + _children_cpu()
    wall = timed(fn)
    return wall, time.process_time() + _children_cpu() - c0


def best_of(
    runs: int, first: Callable[[], object], second: Callable[[], object]
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """((wall, CPU), (wall, CPU), median CPU ratio) of ``first`` and ``second``, run in
    turn ``runs`` times (alternating, so that both see the same spells of the
    machine's load): for each, the least wall and the least CPU time of its runs (the
    least disturbed by the machine's other work; CPU time is far less noisy than wall
    time on a loaded machine, and the export is CPU-bound: its stores are cached),
    and the median over the runs of second's CPU / first's in the same run."""
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for i in range(max(1, runs)):
        a.append(_once(first))
        b.append(_once(second))
        print(f"         run {i + 1}: CPU {a[-1][1]:6.2f} s vs {b[-1][1]:6.2f} s = "
              f"{b[-1][1] / a[-1][1]:.2f}x, wall {b[-1][0] / a[-1][0]:.2f}x, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    ratio = statistics.median(y[1] / x[1] for x, y in zip(a, b, strict=True))
    return (
        (min(w for w, _c in a), min(c for _w, c in a)),
        (min(w for w, _c in b), min(c for _w, c in b)),
        ratio,
    )


def iterate(ct: CaseTimeline, n: int) -> None:
    """Every event as an Event, merged vs each bundle's alone."""
    alone_s = timed(lambda: [sum(1 for _ in tl.iter_events()) for _w, tl in ct.parts])
    merged_s = timed(lambda: sum(1 for _ in ct.iter_events()))
    print(f"iterate  alone  {n / alone_s:12,.0f} events/s ({alone_s:.2f} s)")
    print(f"iterate  merged {n / merged_s:12,.0f} events/s ({merged_s:.2f} s)"
          f"   merged / alone = {merged_s / alone_s:.2f}x time")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=5)
    ap.add_argument("--entries", type=int, default=60_000)
    ap.add_argument("--log-lines", type=int, default=30_000)
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    ap.add_argument(
        "--iterate",
        action="store_true",
        help="also time iterating every event as an Event (merged vs alone)",
    )
    ap.add_argument(
        "--runs", type=int, default=1, help="each export's best of N runs (alone and case in turn)"
    )
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "exuvia-bench")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()} (shared machine: figures are noisy)")
    d = synthesize(args.workdir / f"case-{args.pods}x{args.entries}x{args.log_lines}",
                   args.pods, args.entries, args.log_lines)  # fmt: skip
    os.environ["XDG_CACHE_HOME"] = str(args.workdir / "cache")
    t0 = time.perf_counter()
    ct = open_case_timeline(d)  # builds each bundle's store once (cached afterwards)
    print(f"opened (built or cached) {len(ct.parts)} stores in {time.perf_counter() - t0:.1f} s")
    n = ct.count()
    print(f"case: {args.pods} pods, {n:,} events")

    if args.iterate:
        iterate(ct, n)

    out = args.workdir / "out"
    out.mkdir(exist_ok=True)

    for fmt in args.formats:
        ext = {"l2tcsv": "l2t"}.get(fmt, fmt)

        def each(fmt: str = fmt, ext: str = ext) -> None:
            for w, tl in ct.parts:
                write_export(tl, Query(), fmt, out / f"{w.pod}.{ext}")

        def case(fmt: str = fmt, ext: str = ext) -> None:
            write_case_export(ct, Query(), fmt, out / f"case.{ext}")

        (ex_alone, cpu_alone), (ex_case, cpu_case), median = best_of(args.runs, each, case)
        ratio, cpu_ratio = ex_case / ex_alone, cpu_case / cpu_alone
        verdict = "met" if cpu_ratio <= TARGET else "MISSED"
        unit = "file entries" if fmt == "bodyfile" else "events"
        print(f"export {fmt:<8} alone {ex_alone:6.2f} s (CPU {cpu_alone:6.2f} s), case "
              f"{ex_case:6.2f} s (CPU {cpu_case:6.2f} s, {n / ex_case:8,.0f} {unit[:5]}/s); "
              f"case / alone = {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
              f"(target <= {TARGET}x: {verdict}; median of the runs' CPU ratios "
              f"{median:.2f}x)")  # fmt: skip

    span = ct.span() or (0, 1)
    rnd = random.Random(7)
    ms = []
    for _ in range(25):
        ts = rnd.randrange(span[0], span[1])
        ms.append(timed(lambda ts=ts: ct.events(limit=500, after=(ts, -1, -1))) * 1000)  # type: ignore[misc]
    print(
        f"window   500 events at a random time: median {statistics.median(ms):.1f} ms, "
        f"max {max(ms):.1f} ms (target < 50 ms)"
    )
    one = open_timeline(ct.path / ct.parts[0][0].file)
    ms1 = []
    for _ in range(25):
        ts = rnd.randrange(span[0], span[1])
        ms1.append(timed(lambda ts=ts: one.events(limit=500, after=(ts, -1))) * 1000)  # type: ignore[misc]
    print(f"baseline one bundle's window: median {statistics.median(ms1):.1f} ms")
    one.close()
    ct.close()
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
