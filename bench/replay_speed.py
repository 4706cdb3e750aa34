"""Benchmark: the replay UI over a store of ~5 million events, headless.

Synthesizes (once, cached under --workdir) a bundle with bench/timeline_speed.py's
generator sized to ~5 million events, builds its store once (not timed against a
target: the store is "already built" when replay starts), then, each in a fresh
child process that runs the real app headless (Textual's ``run_test``):

  first screen   launch (process start) -> the first row of events rendered by
                 the compositor                                       target < 1.0 s
                 baseline: the same child running a bare Textual app with one
                 label (Python + Textual start-up, the floor under any app)
  jump           End, and "go to a time" in the middle                target < 100 ms
                 (from the key to the new rows on screen, once the background
                 work -- verification, counting, histogram -- is done; also
                 reported while it still runs)
                 baseline: the raw SQL of one page at that place (the floor)
  text filter    a word in ~100,000 log lines, first page on screen  target < 500 ms
  peak RSS       of the app process after all of the above (workers included)
                                                                      target <= 400 MiB

    .venv/bin/python bench/replay_speed.py [--entries 1200000] [--log-lines 800000] [--runs 3]

``--cold`` times instead the first screen of a bundle never opened before (issue
14, P3): each run links the bundle into a fresh directory (same inode, nothing
cached beside it, a fresh $XDG_CACHE_HOME), then a fresh child process runs the
real app headless as above and reports, from its process start:

  first row      the first row of events rendered (while the store is built)
  first screen   a full screen of events rendered                     target < 2.0 s
  built          the build done and the window on the finished store
                 baseline: the bare Textual app (as above), in the same run,
                 alternating which goes first

with the events on screen at the first screen, the child's CPU seconds (its
build workers included), its peak RSS, and the machine load before and after.
``--real`` uses the real bundle (bench/realtree.py's tree captured by this
checkout, bench/timeline_real.py) instead of the synthesized one:

    sudo .venv/bin/python bench/replay_speed.py --cold --real --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import machine  # noqa: E402
from timeline_speed import synthesize  # noqa: E402

from forensics.timeline import open_timeline  # noqa: E402

CHILD = r"""
import asyncio, json, os, sys, time
T_START = float(sys.argv[1])
sys.path.insert(0, {root!r})
from textual.app import App
from textual.widgets import Label

async def bare():
    class Bare(App):
        def compose(self):
            yield Label("hello")
    app = Bare()
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
    return time.time() - T_START

async def replay():
    from tui.replay.app import make_app
    from tui.replay.filters import Filters
    from tui.replay.widgets.event_list import EventList
    painted = []  # (time, id of the top event) each time the top row is rendered
    render_line = EventList.render_line
    def spy(self, y):
        strip = render_line(self, y)
        if y == 1 and self.window.rows:  # the compositor asked for the top row of events
            painted.append((time.time(), self.window.rows[0].id))
        return strip
    EventList.render_line = spy
    app = make_app({bundle!r})
    out = {{}}
    async with app.run_test(size=(160, 45)) as pilot:
        while not painted:
            await asyncio.sleep(0.005)
        out["first_screen_s"] = painted[0][0] - T_START
        await pilot.pause()
        lst = app.events_list
        meta = app.tl.meta
        mid = (meta["time_min"] + meta["time_max"]) // 2

        async def timed(fn):
            # from the call to the moment the new top row is rendered
            t0 = time.time()
            fn()
            top = app.window.rows[0].id
            deadline = t0 + 60
            while time.time() < deadline:
                done = [t for t, i in painted if t >= t0 and i == top]
                if done:
                    return (done[0] - t0) * 1000
                await asyncio.sleep(0.001)
            raise SystemExit("the new rows were never rendered")

        # while verification, counting and the histogram still run
        out["busy_end_ms"] = await timed(lst.action_end)
        out["busy_goto_ms"] = await timed(lambda: app.goto_time(mid))
        end = time.time() + 300
        def busy():
            return app.total is None or app.report is None or app.snapshot is None
        while busy() and time.time() < end:
            await asyncio.sleep(0.1)
        await pilot.pause(0.5)
        out["end_ms"] = await timed(lst.action_end)
        await timed(lst.action_home)
        out["goto_ms"] = await timed(lambda: app.goto_time(mid))
        out["filter_ms"] = await timed(lambda: app.set_filters(Filters(text={word!r})))
        out["filter_rows"] = len(app.window.rows)
        while app.total is None and time.time() < end:
            await asyncio.sleep(0.1)
        out["total"] = app.total
        # the floor: one page of raw SQL at the same places
        con = app.tl.con
        t0 = time.perf_counter()
        con.execute("SELECT * FROM events ORDER BY ts DESC, id DESC LIMIT 43").fetchall()
        out["sql_end_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        sql = "SELECT * FROM events WHERE ts >= ? ORDER BY ts, id LIMIT 43"
        con.execute(sql, (mid,)).fetchall()
        out["sql_goto_ms"] = (time.perf_counter() - t0) * 1000
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
    out["rss_mib"] = int(hwm) / 1024
    import resource
    out["child_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out

async def cold():
    import resource
    from tui.replay.app import make_app
    from tui.replay.widgets.event_list import EventList
    painted = []  # (time, rows in the window, built?) each time the top row is rendered
    render_line = EventList.render_line
    def spy(self, y):
        strip = render_line(self, y)
        if y == 1 and self.window.rows:
            painted.append((time.time(), len(self.window.rows), self.app.tl is not None))
        return strip
    EventList.render_line = spy
    from tui.replay.app import ReplayApp
    phases = {{}}  # where the time went: the first time each step was reached
    def mark(name, fn):
        def wrapped(self, *a, **k):
            phases.setdefault(name, round(time.time() - T_START, 3))
            return fn(self, *a, **k)
        return wrapped
    loading = ReplayApp._loading
    def spy_loading(self, msg, failed=False):
        phases.setdefault(msg.split(":")[0] if "records" not in msg else "first records",
                          round(time.time() - T_START, 3))
        return loading(self, msg, failed)
    ReplayApp._loading = spy_loading
    ReplayApp._growing_started = mark("first chunk sent", ReplayApp._growing_started)
    ReplayApp._show_list = mark("first chunk read", ReplayApp._show_list)
    app = make_app({bundle!r})
    out = {{"phases": phases}}
    phases["imported"] = round(time.time() - T_START, 3)
    async with app.run_test(size=(160, 45)) as pilot:
        end = time.time() + 600
        while not painted and time.time() < end:
            await asyncio.sleep(0.002)
        out["first_row_s"] = painted[0][0] - T_START
        while time.time() < end:
            full = [(t, n) for t, n, _b in painted if n >= app.window.height]
            if full:
                out["first_screen_s"] = full[0][0] - T_START
                break
            await asyncio.sleep(0.002)
        out["events_at_first_screen"] = (app.building or {{}}).get("events")
        out["built_while_shown"] = app.tl is not None
        while time.time() < end and not any(b for _t, _n, b in painted):
            await asyncio.sleep(0.01)
        out["built_s"] = next(t for t, _n, b in painted if b) - T_START
        out["total"] = app.tl.meta["events"]
        out["findings_done"] = app.findings is not None
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
    out["rss_mib"] = int(hwm) / 1024
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_s"] = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    out["child_rss_mib"] = kids.ru_maxrss / 1024
    return out

mode = sys.argv[2]
if mode == "bare":
    res = asyncio.run(bare())
elif mode == "cold":
    res = asyncio.run(cold())
    # the findings worker may still be analysing the bundle: not what is timed here
    print(json.dumps(res), flush=True)
    os._exit(0)
else:
    res = asyncio.run(replay())
print(json.dumps(res if isinstance(res, dict) else {{"first_screen_s": res}}))
"""


def child(
    bundle: Path, mode: str, word: str, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    code = CHILD.format(root=str(ROOT), bundle=str(bundle), word=word)
    env = dict(os.environ, TEXTUAL_ANIMATIONS="none", **(extra_env or {}))
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-c", code, repr(t0), mode],
        capture_output=True, text=True, check=True, env=env, timeout=600,
    )  # fmt: skip
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def never_opened(bundle: Path, under: Path) -> Path:
    """``bundle`` under a fresh directory of ``under``: a hard link (the same bytes and
    inode, no copy), else a copy; its custody log beside it; nothing cached."""
    d = Path(tempfile.mkdtemp(prefix="cold-", dir=under))
    out = d / bundle.name
    try:
        os.link(bundle, out)
    except OSError:
        shutil.copy2(bundle, out)
    custody = bundle.with_name(bundle.name + ".custody.jsonl")
    if custody.exists():
        shutil.copy2(custody, d / custody.name)
    (d / "xdg-cache").mkdir()
    return out


def cold_runs(bundle: Path, runs: int, under: Path) -> int:
    """The first screen of a never-opened copy of ``bundle`` (see the module's doc)."""
    under.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(
        f"input: {bundle} ({bundle.stat().st_size / 1e6:.0f} MB); each run on a fresh link "
        f"under {under} (the bundle's bytes are in the page cache after the first run)"
    )
    rows = []
    for i in range(runs):
        load = os.getloadavg()
        copy = never_opened(bundle, under)
        try:
            env = {"XDG_CACHE_HOME": str(copy.parent / "xdg-cache")}
            if i % 2 == 0:
                base = child(copy, "bare", "")["first_screen_s"]
                res = child(copy, "cold", "", env)
            else:
                res = child(copy, "cold", "", env)
                base = child(copy, "bare", "")["first_screen_s"]
        finally:
            shutil.rmtree(copy.parent, ignore_errors=True)
        res["bare_s"] = base
        after = os.getloadavg()
        rows.append(res)
        shown = res["events_at_first_screen"]
        print(
            f"run {i + 1} (load {load[0]:.2f} before, {after[0]:.2f} after): "
            f"first row {res['first_row_s']:.3f}s, first screen {res['first_screen_s']:.3f}s "
            f"({'of the finished store' if shown is None else f'{shown:,} events so far'}; "
            f"bare Textual app {base:.3f}s, ratio {res['first_screen_s'] / base:.2f}); "
            f"built and shown {res['built_s']:.2f}s ({res['total']:,} events); "
            f"cpu {res['cpu_s']:.2f}s; peak RSS {res['rss_mib']:.0f} MiB "
            f"(+ children {res['child_rss_mib']:.0f} MiB)"
        )
        print(
            "  reached at (s from process start): "
            + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(res["phases"].items(), key=lambda kv: kv[1])
            )
        )
    first = statistics.median(r["first_screen_s"] for r in rows)
    bare = statistics.median(r["bare_s"] for r in rows)
    verdict = "met" if first < 2.0 else "MISSED"
    print(
        f"median: first screen of a never-opened bundle {first:.3f}s (target < 2.0: {verdict}; "
        f"{first / bare:.2f}x a bare Textual app, {bare:.3f}s), first row "
        f"{statistics.median(r['first_row_s'] for r in rows):.3f}s, built "
        f"{statistics.median(r['built_s'] for r in rows):.2f}s, peak RSS "
        f"{max(r['rss_mib'] for r in rows):.0f} MiB (target <= 400); "
        f"load {os.getloadavg()[0]:.2f} at the end: noisy when the machine is shared"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_200_000)
    ap.add_argument("--log-lines", type=int, default=800_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--word", default="GET", help="the text filter (a word in the log lines)")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/exuvia-bench-replay"))
    ap.add_argument("--cold", action="store_true", help="first screen of a never-opened bundle")
    ap.add_argument("--real", action="store_true", help="on the real bundle (bench/realtree.py)")
    args = ap.parse_args()
    if args.real:
        from bench import realtree  # noqa: PLC0415
        from bench.timeline_real import bundle_for_this_checkout  # noqa: PLC0415
        from forensics.bundle.format import FORMAT_VERSION  # noqa: PLC0415

        # the cached capture as is (checking the cached tree first takes minutes)
        real = realtree.CACHE / "realtree" / f"bundle-{FORMAT_VERSION}.exv"
        if not real.exists():
            real = bundle_for_this_checkout(realtree.CACHE)
        if args.cold:
            return cold_runs(real, args.runs, realtree.CACHE / "run")
        print("--real without --cold: the 5M-event targets are judged on the synthesized store")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    bundle = args.workdir / f"replay-{args.entries}-{args.log_lines}.exv"
    if not bundle.exists():
        t0 = time.perf_counter()
        synthesize(bundle, args.entries, args.log_lines)
        print(f"synthesized {bundle} in {time.perf_counter() - t0:.1f}s")
    if args.cold:
        return cold_runs(bundle, args.runs, args.workdir / "cold")
    t0 = time.perf_counter()
    with open_timeline(bundle) as tl:
        events = tl.meta["events"]
    print(f"store: {events:,} events (built or found in {time.perf_counter() - t0:.1f}s)")
    rows = []
    for i in range(args.runs):
        load = os.getloadavg()[0]
        base = child(bundle, "bare", args.word)["first_screen_s"]
        res = child(bundle, "replay", args.word)
        res["bare_s"] = base
        rows.append(res)
        print(
            f"run {i + 1} (load {load:.2f}): first screen {res['first_screen_s']:.3f}s "
            f"(bare Textual app {base:.3f}s, ratio {res['first_screen_s'] / base:.2f}); "
            f"end {res['end_ms']:.1f} ms (raw SQL {res['sql_end_ms']:.1f}; "
            f"{res['busy_end_ms']:.0f} ms while the background work ran); "
            f"go to time {res['goto_ms']:.1f} ms (raw SQL {res['sql_goto_ms']:.1f}; "
            f"{res['busy_goto_ms']:.0f} ms while busy); "
            f"text filter {res['filter_ms']:.1f} ms ({res['filter_rows']} rows); "
            f"peak RSS {res['rss_mib']:.0f} MiB (+ its verifying child "
            f"{res['child_rss_mib']:.0f} MiB); counted {res['total']:,}"
        )

    def med(k: str) -> float:
        return statistics.median(r[k] for r in rows)

    print(
        f"median: first screen {med('first_screen_s'):.3f}s (target < 1.0; "
        f"{med('first_screen_s') / med('bare_s'):.2f}x a bare Textual app), "
        f"end {med('end_ms'):.1f} ms and go to time {med('goto_ms'):.1f} ms (target < 100), "
        f"text filter {med('filter_ms'):.1f} ms (target < 500), "
        f"peak RSS {max(r['rss_mib'] for r in rows):.0f} MiB (target <= 400)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
