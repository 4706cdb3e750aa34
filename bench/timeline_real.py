"""The timeline benchmark on a real input (``bench/timeline_speed.py --real``).

The input is bench/realtree.py's tree (this machine's own /usr files, >= 100,000
files, >= 2 GiB) in a runc container, captured with ``--files all`` by this
checkout (so in this checkout's bundle format; cached under
/var/cache/exuvia-bench/realtree/ as ``bundle-<format version>.exv``). Timed in
the same run, alternating order (bench/benchlib.py), each a fresh process:

  mactime     sleuthkit's ``mactime -b BODY -y -d`` on exuvia's bodyfile of the
              bundle (the baseline: every ratio is to it)
  cold jsonl  ``exuvia timeline BUNDLE --rebuild --format jsonl -o OUT``: the store
              built from the bundle, then the export (bundle in the page cache)
  <fmt> warm  ``exuvia timeline BUNDLE --format <fmt> -o OUT`` from the built store,
              for jsonl, csv, l2tcsv and bodyfile; l2tcsv twice: "first" (the store
              without the side table its first export makes, forensics/timeline/l2tsql.py)
              and "repeat" (with it), each set up before its run, untimed
  plaso       (``--plaso``; one run) ``log2timeline --parsers bodyfile`` on the same
              bodyfile, then ``psort -o json_line``, in plaso's own virtualenv

and prints events/s for each (the store's event count over the median wall
time), CPU seconds, peak RSS of the whole process tree, and the targets of
issue 14: cold build + JSONL >= 400,000 events/s, >= 4x mactime, >= 50x plaso;
each warm export >= 400,000 events/s; peak RSS <= 300 MiB. ``--old-bundle``
adds a cold row on the cached bundle realtree.py captured (an older format's
bundle is read in full: no frame index).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import realtree  # noqa: E402
from bench.benchlib import Command, Result, compare, machine  # noqa: E402
from forensics.bundle.format import FORMAT_VERSION  # noqa: E402
from forensics.timeline import Query, l2tsql, open_timeline, write_export  # noqa: E402
from tests.support.plaso import PlasoMissing, log2timeline_argv, plaso_bin, psort_argv  # noqa: E402

FORMATS = ("jsonl", "csv", "l2tcsv", "bodyfile")
TARGET_RATE = 400_000
TARGET_RSS = 300


def bundle_for_this_checkout(cache: Path) -> Path:
    """The real tree captured by this checkout's exuvia (cached per format version)."""
    tree = realtree.build(cache, quiet=True)
    out = cache / "realtree" / f"bundle-{FORMAT_VERSION}.exv"
    if out.exists():
        return out
    with realtree.start_container(tree.root, cache) as c:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            realtree.exuvia_capture_argv(c.uri, out),
            check=True,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    return out


def _timeline(bundle: Path, fmt: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tui.cli", "timeline", str(bundle), "-q", *extra,
        "--format", fmt, "-o", str(out),
    ]  # fmt: skip


def _rate(events: int, res: Result, name: str) -> float:
    return events / statistics.median(res.walls(name))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=realtree.CACHE)
    ap.add_argument("--plaso", action="store_true", help="also time plaso (one run)")
    ap.add_argument("--old-bundle", action="store_true", help="a cold row on realtree's bundle")
    args = ap.parse_args(argv)

    bundle = bundle_for_this_checkout(args.cache)
    work = Path(tempfile.mkdtemp(prefix="tlreal-", dir="/var/tmp"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        tl = open_timeline(bundle)  # the warm store (built here if missing)
        events = int(tl.meta["events"])
        body = work / "real.body"
        entries = write_export(tl, Query(sources=("fs",)), "bodyfile", body)
        tl.close()
        print(f"machine: {machine()}")
        print(
            f"input: {bundle} ({bundle.stat().st_size / 1e6:.0f} MB, format {FORMAT_VERSION}): "
            f"{events:,} events, bodyfile of {entries:,} entries"
        )
        mactime = shutil.which("mactime")
        if mactime is None:
            print("mactime is not installed (apt-get install sleuthkit): no baseline")
            return 1
        cmds = [
            Command("mactime", [mactime, "-b", str(body), "-y", "-d"]),
            Command("cold jsonl", _timeline(bundle, "jsonl", work / "c.jsonl", "--rebuild"),
                    cwd=ROOT, env=env),
        ]  # fmt: skip
        if args.old_bundle:
            old = realtree.captured_bundle(args.cache, quiet=True)
            cmds.append(
                Command("cold jsonl, realtree's bundle",
                        _timeline(old, "jsonl", work / "o.jsonl", "--rebuild"), cwd=ROOT, env=env)
            )  # fmt: skip
        for fmt in FORMATS:
            if fmt == "l2tcsv":  # the first export makes its side table: two rows
                for row, want in (("first", False), ("repeat", True)):
                    cmds.append(
                        Command(
                            f"l2tcsv warm, {row}",
                            _timeline(bundle, fmt, work / f"{row}.l2t"),
                            cwd=ROOT,
                            env=env,
                            before=lambda want=want: _l2t_table(bundle, want),
                        )
                    )
                continue
            cmds.append(
                Command(f"{fmt} warm", _timeline(bundle, fmt, work / f"w.{fmt}"), cwd=ROOT, env=env)
            )
        res = compare(cmds, runs=args.runs)
        print()
        for c in cmds[1:]:
            n = entries if c.name.startswith("bodyfile") else events
            rate = _rate(n, res, c.name)
            mac = statistics.median(res.walls("mactime")) / statistics.median(res.walls(c.name))
            verdict = "met" if rate >= TARGET_RATE else "MISSED"
            print(
                f"{c.name}: {rate:,.0f} {'entries' if n == entries else 'events'}/s "
                f"(target >= {TARGET_RATE:,}: {verdict}); mactime / it = {mac:.2f}x; "
                f"cpu {res.cpu(c.name):.2f}s; peak RSS {res.peak_rss(c.name):.0f} MiB "
                f"(target <= {TARGET_RSS})"
            )
        if args.plaso:
            plaso(body, work, res, events)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _l2t_table(bundle: Path, want: bool) -> None:
    """Before a run (untimed): the warm store with its l2tcsv side table (made, as the
    first l2tcsv export would) or without it (dropped, as after ``--rebuild``)."""
    tl = open_timeline(bundle)
    store = tl.path
    tl.close()
    con = sqlite3.connect(store)
    try:
        there = l2tsql.present(con)
        if there and not want:
            con.execute(f"DROP TABLE main.{l2tsql.TABLE}")
            con.commit()
    finally:
        con.close()
    if want and not there and not l2tsql.fill(store):
        raise SystemExit(f"could not make the l2tcsv side table in {store}")


def plaso(body: Path, work: Path, res: Result, events: int) -> None:
    try:
        bin_dir = plaso_bin()
    except PlasoMissing as err:
        print(f"plaso: not timed ({err})")
        return
    storage, out = work / "p.plaso", work / "p.jsonl"
    shell = " && ".join(
        [
            f"rm -f {storage} {out}",
            subprocess.list2cmdline(log2timeline_argv(bin_dir, body, storage)),
            subprocess.list2cmdline(psort_argv(bin_dir, storage, out)),
        ]
    )
    pres = compare([Command("plaso", shell, shell=True)], runs=1, warmup=False)
    wall = statistics.median(pres.walls("plaso"))
    cold = statistics.median(res.walls("cold jsonl"))
    n = sum(1 for _ in out.open()) if out.exists() else 0
    print(
        f"plaso (log2timeline + psort): {wall:.1f}s for {n:,} events (one per time); "
        f"plaso / exuvia cold jsonl = {wall / cold:.1f}x (target >= 50); "
        f"exuvia's {events:,} events = {events / cold:,.0f}/s"
    )


if __name__ == "__main__":
    sys.exit(main())
