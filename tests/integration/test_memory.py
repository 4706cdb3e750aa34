"""Process memory as ELF cores, from real shell-less runc containers.

A static test program (tests/support/memtarget.c) keeps a marker string in a
heap buffer reached through the global ``marker_ptr`` and a secret in an
anonymous mmap'd region reached through ``secret_ptr``, touches 256 MiB of
anonymous memory (so the read takes long enough for a stop to show), and writes
a heartbeat (CLOCK_MONOTONIC ns) every 10 ms to its standard output, a file on
the host. A second copy runs from a memfd (fileless). The capture goes through
the real command line. Proof: ``gdb -batch`` on the captured core prints the
marker and the secret from their variables; the secret's bytes are in the core
at its region; the program ran on undisturbed (heartbeat gaps, its /proc state
never ``t``/``T``); nothing in the container's root changed.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from forensics.bundle import verify_bundle
from forensics.bundle.reader import BundleReader
from forensics.snapshot import load_snapshot
from forensics.timeline import Query, open_timeline
from forensics.timeline.bundleio import stream_members
from tests.support.bundles import artifacts
from tests.support.memtarget import IN_CONTAINER, build_memtarget, run_memtarget
from tui.demo.launch import LabContainer
from tui.replay.screens.processes import process_text

REPO = Path(__file__).parents[2]
TOUCH_MB = 256
HEARTBEAT_NS = 10_000_000

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed")


@dataclass
class Program:
    pid: int
    marker: str
    secret: str
    log: Path

    def beats(self) -> list[int]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.isdigit():
                out.append(int(line))
        return out


@dataclass
class Captured:
    bundle: Path
    stdout: str
    stderr: str
    returncode: int
    states: set[str]
    t0_ns: int
    t1_ns: int
    root_before: dict[str, tuple[int, ...]]
    root_after: dict[str, tuple[int, ...]]


def _wait_ready(p: Program) -> None:
    deadline = time.monotonic() + 60  # generous: CI shares the machine
    while time.monotonic() < deadline:
        if "ready" in p.log.read_text(errors="replace") and len(p.beats()) > 20:
            return
        time.sleep(0.02)
    raise RuntimeError(f"memtarget {p.pid} not ready: {p.log.read_text(errors='replace')[:300]}")


def _tree(root: str) -> dict[str, tuple[int, ...]]:
    """Every entry of the container's root: size, mode, mtime and ctime (ns)."""
    out: dict[str, tuple[int, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = dirpath[len(root) :] or "/"
        if rel.startswith(("/proc", "/sys", "/dev")):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            out[f"{rel.rstrip('/')}/{name}"] = (
                st.st_size,
                st.st_mode,
                st.st_mtime_ns,
                st.st_ctime_ns,
            )
    return out


def _watch_state(pid: int, stop: threading.Event, seen: set[str]) -> None:
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                raw = fh.read()
            seen.add(raw[raw.rfind(b")") + 2 :].split()[0].decode())
        except OSError:
            seen.add("gone")
            return
        time.sleep(0.001)


@pytest.fixture(scope="module")
def memtarget_bin(lab_dir: Path) -> Path:
    return build_memtarget(lab_dir / "memtarget-build")


@pytest.fixture(scope="module")
def mem_box(lab: Any, memtarget_bin: Path) -> LabContainer:
    box: LabContainer = lab.runc()
    dest = f"{box.root}{IN_CONTAINER}"
    shutil.copyfile(memtarget_bin, dest)
    os.chmod(dest, 0o755)
    return box


@pytest.fixture(scope="module")
def programs(mem_box: LabContainer, request: pytest.FixtureRequest) -> dict[str, Program]:
    # the heartbeat goes to tmpfs: an append to a journalled file system can wait
    # behind the journal commit of the capture's own fsync (a gap that is not ours)
    d = Path(tempfile.mkdtemp(prefix="exuvia-memtarget-", dir="/dev/shm"))
    request.addfinalizer(lambda: shutil.rmtree(d, ignore_errors=True))
    out = {}
    for key, extra, env in (("plain", (), (f"TOUCH_MB={TOUCH_MB}",)), ("memfd", ("--memfd",), ())):
        marker = f"MARKER-{key}-{uuid.uuid4().hex}"
        secret = f"SECRET-{key}-{uuid.uuid4().hex}"
        log = d / f"{key}.log"
        pid = run_memtarget(mem_box, *extra, marker, secret, "-", log=log, env=env)
        out[key] = Program(pid, marker, secret, log)
    for p in out.values():
        _wait_ready(p)
    return out


@pytest.fixture(scope="module")
def captured(
    mem_box: LabContainer, programs: dict[str, Program], tmp_path_factory: pytest.TempPathFactory
) -> Captured:
    out = tmp_path_factory.mktemp("memcap") / "mem.exv"
    plain = programs["plain"]
    states: set[str] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_state, args=(plain.pid, stop, states), daemon=True)
    before = _tree(mem_box.root)
    # and one pid that is not the target's (this test's own): a warning, never silence
    pids = ",".join(str(p.pid) for p in programs.values()) + f",{os.getpid()}"
    rules = out.parent / "markers.yar"
    rules.write_text(marker_rules(programs))
    watcher.start()
    t0 = time.monotonic_ns()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "capture",
            mem_box.uri,
            "-o",
            str(out),
            "-q",
            "--files",
            "none",
            "--memory",
            "--memory-pids",
            pids,
            "--scan",
            str(rules),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    t1 = time.monotonic_ns()
    stop.set()
    watcher.join()
    time.sleep(0.1)  # beats after the capture, to see the window's end
    return Captured(
        out, proc.stdout, proc.stderr, proc.returncode, states, t0, t1, before, _tree(mem_box.root)
    )


def marker_rules(programs: dict[str, Program]) -> str:
    """One YARA rule per program, matching its heap marker."""
    return "".join(
        f'rule marker_{key} {{ strings: $m = "{p.marker}" condition: $m }}\n'
        for key, p in programs.items()
    )


def _records(c: Captured) -> dict[int, dict[str, Any]]:
    return {r["pid"]: r for r in artifacts(c.bundle)["memory"]}


def _gdb(exe: Path, core: Path, *exprs: str) -> str:
    cmd = ["gdb", "-batch", "-nx"]
    for e in exprs:
        cmd += ["-ex", e]
    res = subprocess.run(
        [*cmd, str(exe), str(core)], check=False, capture_output=True, text=True, timeout=120
    )
    return res.stdout + res.stderr


def _core(c: Captured, pid: int, tmp: Path) -> Path:
    """The core member streamed to a file (it is bigger than the readers' in-memory cap)."""
    path = tmp / f"{pid}.core"
    name = f"memory/{pid}.core"
    with path.open("wb") as out:
        for m in stream_members(c.bundle, lambda n: n == name):
            while block := m.read(1 << 20):
                out.write(block)
    assert path.stat().st_size > 0, name
    return path


def test_capture_succeeds_and_verifies(captured: Captured, programs: dict[str, Program]) -> None:
    assert captured.returncode == 0, captured.stderr
    assert "Traceback" not in captured.stderr
    assert captured.stderr.splitlines() == [
        f"exuvia: warning: memory of pid {os.getpid()} not captured: not a process of the "
        "target's PID namespace"
    ]
    report = verify_bundle(captured.bundle)
    assert report.ok, report
    recs = _records(captured)
    assert set(recs) == {p.pid for p in programs.values()}
    for rec in recs.values():
        assert rec["member"] == f"memory/{rec['pid']}.core"
        assert rec["read_start_ns"] <= rec["read_end_ns"]
    manifest = BundleReader(captured.bundle).manifest_and_warnings()[0]
    mem = manifest["memory"]
    assert mem["mode"] == "anon" and mem["atomic"] is False
    assert [x["pid"] for x in mem["not_captured"]] == [os.getpid()]
    windows = {p["pid"]: (p["read_start_ns"], p["read_end_ns"]) for p in mem["processes"]}
    assert windows == {pid: (r["read_start_ns"], r["read_end_ns"]) for pid, r in recs.items()}
    names = {m["name"]: m for m in manifest["members"]}
    for rec in recs.values():
        assert names[rec["member"]]["sha256"] == rec["sha256"]


def test_gdb_prints_the_heap_marker_and_the_mmap_secret(
    captured: Captured, programs: dict[str, Program], memtarget_bin: Path, tmp_path: Path
) -> None:
    for key, p in programs.items():
        core = _core(captured, p.pid, tmp_path)
        out = _gdb(
            memtarget_bin,
            core,
            "print (char*)marker_ptr",
            "print (char*)(*(long*)&secret_ptr + 12345)",
        )
        assert f'"{p.marker}"' in out, f"{key}: {out}"
        assert f'"{p.secret}"' in out, f"{key}: {out}"
        sparse = _gdb(memtarget_bin, core, f"print (char*)(*(long*)&sparse_ptr + {512 << 20})")
        assert f'"SPARSE-{p.marker}"' in sparse, f"{key}: {sparse}"
        # the pc and sp /proc/PID/task/TID/syscall gives for a blocked thread: gdb unwinds
        # from the sleep the heartbeat loop is in back to main
        bt = _gdb(memtarget_bin, core, "bt")
        assert "nanosleep" in bt and "main" in bt, f"{key}: {bt}"


def test_the_secret_is_in_its_anonymous_region(
    captured: Captured, programs: dict[str, Program], tmp_path: Path
) -> None:
    p = programs["plain"]
    rec = _records(captured)[p.pid]
    body = _core(captured, p.pid, tmp_path).read_bytes()
    at = body.find(p.secret.encode())
    assert at > 0
    elf = ELFFile(io.BytesIO(body))
    seg = next(
        s
        for s in elf.iter_segments()
        if s.header.p_type == "PT_LOAD"
        and s.header.p_offset <= at < s.header.p_offset + s.header.p_filesz
    )
    vaddr = seg.header.p_vaddr + at - seg.header.p_offset
    region = next(r for r in rec["regions"] if r["start"] <= vaddr < r["end"])
    assert region["kind"] == "anon" and region["perms"].startswith("rw")
    assert (vaddr - region["start"]) % 4096 == 12345 % 4096
    assert region["core_offset"] == seg.header.p_offset
    stored = body[region["core_offset"] : region["core_offset"] + region["stored"]]
    assert hashlib.sha256(stored).hexdigest() == region["sha256"]
    # the touched 256 MiB were read, not skipped as untouched
    big = [
        r for r in rec["regions"] if r["kind"] == "anon" and r["end"] - r["start"] >= TOUCH_MB << 20
    ]
    assert big and big[0]["read"] >= TOUCH_MB << 20


def test_memfd_process_is_captured_with_its_memfd_mapping(
    captured: Captured, programs: dict[str, Program]
) -> None:
    rec = _records(captured)[programs["memfd"].pid]
    memfd = [r for r in rec["regions"] if r["kind"] == "memfd"]
    assert memfd and all(
        r["stored"] == r["end"] - r["start"] for r in memfd if "r" in r["perms"][:1]
    )
    assert all((r["path"] or "").startswith("/memfd:memtarget") for r in memfd)


def test_the_program_ran_on_undisturbed(captured: Captured, programs: dict[str, Program]) -> None:
    assert captured.states, "the state watcher saw nothing"
    assert not captured.states & {"t", "T", "gone"}, captured.states
    beats = programs["plain"].beats()
    during = [b for b in beats if captured.t0_ns <= b <= captured.t1_ns]
    assert len(during) > 10, "the capture was too short to judge"
    gaps = [b - a for a, b in itertools.pairwise(during)]
    # the same length of time before the capture: normal jitter on this (shared) machine
    span = captured.t1_ns - captured.t0_ns
    early = [b for b in beats if captured.t0_ns - span <= b < captured.t0_ns]
    base = max((b - a for a, b in itertools.pairwise(early)), default=HEARTBEAT_NS)
    limit = max(200_000_000, 3 * base)
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    at_ms = (during[worst] - captured.t0_ns) / 1e6
    assert max(gaps) < limit, (
        f"at +{at_ms:.0f} ms of {span / 1e6:.0f}: max gap {max(gaps) / 1e6:.1f} ms "
        f"(baseline {base / 1e6:.1f} ms)"
    )


def test_nothing_was_written_into_the_target(captured: Captured) -> None:
    before, after = captured.root_before, captured.root_after
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    # the lab target's own log may grow on its own: only what the target writes itself
    own = {k for k in changed if k.startswith("/var/log/app/")}
    assert changed - own == set(), sorted(changed - own)[:20]


def test_memory_flags_need_memory_and_reject_bad_pids(tmp_path: Path) -> None:
    for extra, needle in (
        (["--memory-max", "1M"], "need --memory"),
        (["--memory", "--memory-pids", "x1"], "not a list of pids"),
    ):
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "tui.cli",
                "capture",
                "pid://1",
                "-o",
                str(tmp_path / "x"),
                *extra,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr
        assert not list(tmp_path.iterdir())


def test_info_and_timeline_show_the_memory(
    captured: Captured, programs: dict[str, Program], tmp_path: Path
) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tui.cli", "info", str(captured.bundle)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
    assert "memory:     2 process cores (mode anon" in res.stdout
    for p in programs.values():
        assert f"memory/{p.pid}.core  pid {p.pid}" in res.stdout
    assert f"NOT CAPTURED: pid {os.getpid()}: not a process" in res.stdout
    snap = load_snapshot(captured.bundle)
    assert {m["pid"] for m in snap.memory} == {p.pid for p in programs.values()}
    proc = next(x for x in snap.processes if x.get("pid") == programs["plain"].pid)
    view = process_text(snap, proc).plain
    assert f"memory/{programs['plain'].pid}.core" in view and " anon " in view
    tl = open_timeline(captured.bundle, cache_dir=tmp_path / "cache")
    evs = tl.events(Query(kinds=("memory.read",)), limit=50)
    assert sorted(e.entity for e in evs) == sorted([f"pid:{p.pid}" for p in programs.values()] * 2)
    recs = _records(captured)
    for e in evs:
        pid = e.attrs["pid"]
        assert e.ts in (recs[pid]["read_start_ns"], recs[pid]["read_end_ns"])


def test_a_huge_untouched_mapping_costs_no_core_bytes(
    captured: Captured, programs: dict[str, Program]
) -> None:
    """The 1 GiB reservation with one touched page: its untouched runs are left out
    of the core (listed, not stored), the touched page is stored."""
    for p in programs.values():
        rec = _records(captured)[p.pid]
        pieces = [r for r in rec["regions"] if r["kind"] == "anon" and r["perms"] == "rw-p"]
        untouched = [r for r in pieces if r.get("not_stored", "").startswith("never touched")]
        assert sum(r["end"] - r["start"] for r in untouched) > (1 << 30) - (2 << 20)
        assert all(r["stored"] == 0 for r in untouched)
        expected = TOUCH_MB << 20 if p is programs["plain"] else 0
        assert rec["size"] < expected + (64 << 20), rec["size"]


def test_interrupted_during_a_core_seals_a_bundle_that_verifies(
    mem_box: LabContainer, tmp_path: Path
) -> None:
    """SIGINT while a big core streams: the core is closed with zeros (the tar stays
    whole), the bundle is sealed .incomplete and verifies, and the cut is said."""
    log = tmp_path / "big.log"
    pid = run_memtarget(mem_box, "MARKER-big", "SECRET-big", "-", log=log, env=("TOUCH_MB=768",))
    prog = Program(pid, "MARKER-big", "SECRET-big", log)
    _wait_ready(prog)
    out = tmp_path / "cut.exv"
    partial = out.with_name(out.name + ".partial")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "capture",
            mem_box.uri,
            "-o",
            str(out),
            "-q",
            "--files",
            "none",
            "--compress",
            "none",
            "--memory",
            "--memory-pids",
            str(pid),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if partial.exists() and partial.stat().st_size > 64 << 20:  # well into the core
            proc.send_signal(2)
            break
        time.sleep(0.005)
    _stdout, stderr = proc.communicate(timeout=300)
    os.kill(pid, 9)  # the big program has served
    if proc.returncode == 0:
        pytest.skip("the capture finished before it could be interrupted")
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert f"memory of pid {pid} not captured: capture interrupted during the read" in stderr
    cut = out.with_name(out.name + ".incomplete")
    report = verify_bundle(cut)
    assert report.ok, report
    manifest = BundleReader(cut).manifest_and_warnings()[0]
    assert manifest["complete"] is False
    (missing,) = manifest["memory"]["not_captured"]
    assert missing["pid"] == pid and missing["member"] == f"memory/{pid}.core"
    listed = {m["name"]: m for m in manifest["members"]}
    assert listed[f"memory/{pid}.core"]["sha256"] == missing["sha256"]


def _marker_address(memtarget_bin: Path, core: Path) -> int:
    out = _gdb(memtarget_bin, core, "print/x (long)marker_ptr")
    return int(out.rsplit("=", 1)[1].split()[0], 16)


def _place(rec: dict[str, Any], offset: int) -> dict[str, Any]:
    """The region of a core offset, from the memory record (what `exuvia scan` reports)."""
    return next(
        r for r in rec["regions"] if r["stored"] and 0 <= offset - r["core_offset"] < r["stored"]
    )


def test_capture_scan_finds_each_marker_in_its_own_core_at_its_heap_address(
    captured: Captured, programs: dict[str, Program], memtarget_bin: Path, tmp_path: Path
) -> None:
    """`capture --memory --scan`: each core is scanned as it streams; a match names the
    core, the byte offset in it, and the address and region in the process."""
    assert captured.returncode == 0, captured.stderr
    recs = _records(captured)
    matches = [r for r in artifacts(captured.bundle)["yara"] if r.get("kind") == "yara_match"]
    by_rule = {m["rule"]: m for m in matches if m["member"].startswith("memory/")}
    assert set(by_rule) == {f"marker_{k}" for k in programs}, matches
    for key, p in programs.items():
        m = by_rule[f"marker_{key}"]
        # in its own process's core only, and hashed as the manifest has it
        assert m["member"] == f"memory/{p.pid}.core" and m["pid"] == p.pid
        assert m["member_sha256"] == recs[p.pid]["sha256"]
        core = _core(captured, p.pid, tmp_path)
        body = core.read_bytes()
        heap = _marker_address(memtarget_bin, core)
        hits = {h["address"]: h for h in m["strings"]}
        assert heap in hits, (key, hex(heap), m["strings"])
        hit = hits[heap]
        assert hit["region_kind"] == "heap" and hit["region_perms"].startswith("rw")
        assert body[hit["offset"] : hit["offset"] + hit["length"]] == p.marker.encode()
        assert hit["data"] == p.marker
        region = _place(recs[p.pid], hit["offset"])
        assert region["start"] == hit["region_start"]
        assert hit["address"] == region["start"] + hit["offset"] - region["core_offset"]
        # the other occurrence is the one the program put in its sparse mapping
        others = [h for a, h in hits.items() if a != heap]
        assert all(h["region_kind"] == "anon" for h in others), others


def test_scan_of_the_bundle_finds_the_same_offsets_in_memory_cores(
    captured: Captured, programs: dict[str, Program], tmp_path: Path
) -> None:
    """`exuvia scan BUNDLE --rules R` on the captured bundle: the same matches at the
    same core offsets as during the capture, placed in the process as the capture
    placed them (pid, address, region), and none in another process's core."""
    rules = tmp_path / "markers.yar"
    rules.write_text(marker_rules(programs))
    copy = tmp_path / "mem.exv"
    shutil.copyfile(captured.bundle, copy)
    res = subprocess.run(
        [sys.executable, "-m", "tui.cli", "scan", str(copy), "--rules", str(rules),
         "--output", "json"],
        check=False, capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    mem = {m["rule"]: m for m in doc["matches"] if m["member"].startswith("memory/")}
    live = {
        r["rule"]: r
        for r in artifacts(captured.bundle)["yara"]
        if r.get("kind") == "yara_match" and r["member"].startswith("memory/")
    }
    assert set(mem) == set(live) == {f"marker_{k}" for k in programs}
    for key, p in programs.items():
        m = mem[f"marker_{key}"]
        assert m["member"] == f"memory/{p.pid}.core"
        assert sorted(s["offset"] for s in m["strings"]) == sorted(
            s["offset"] for s in live[f"marker_{key}"]["strings"]
        )
        place = ("offset", "address", "region_start", "region_kind", "region_perms")
        assert m["pid"] == p.pid and m["address"] == live[f"marker_{key}"]["address"]
        assert sorted(tuple(s[k] for k in place) for s in m["strings"]) == sorted(
            tuple(s[k] for k in place) for s in live[f"marker_{key}"]["strings"]
        )
    # no file of the container holds a marker: every match is in a memory core
    assert all(m["member"].startswith("memory/") for m in doc["matches"]), doc["matches"]


@pytest.mark.asyncio
async def test_replay_yara_view_shows_the_memory_matches(
    captured: Captured, programs: dict[str, Program], tmp_path: Path
) -> None:
    from textual.widgets import OptionList  # noqa: PLC0415 - only this test needs textual

    from tests.tui.conftest import wait_for  # noqa: PLC0415
    from tui.replay.app import make_app  # noqa: PLC0415

    copy = tmp_path / "mem.exv"
    shutil.copyfile(captured.bundle, copy)
    app = make_app(copy)
    async with app.run_test(size=(160, 45)) as pilot:
        # hundreds of MiB of cores to index and verify first: longer than tests/tui's ready()
        await wait_for(pilot, lambda: app.window is not None and app.report is not None, 240)
        await pilot.press("Y")
        await wait_for(pilot, lambda: bool(app.screen.query(OptionList)))
        options = app.screen.query_one(OptionList)
        shown = [str(getattr(o.prompt, "plain", o.prompt)) for o in options.options]
        for key, p in programs.items():
            line = next(t for t in shown if f"marker_{key}" in t)
            assert f"memory/{p.pid}.core" in line and p.marker in line


@pytest.mark.asyncio
async def test_replay_memory_view_pages_a_region_of_the_real_core(
    captured: Captured, programs: dict[str, Program], memtarget_bin: Path, tmp_path: Path
) -> None:
    """Process view, `m`: the regions of the captured core; Enter on the heap and paging
    (n) to the marker's page shows it in the hex dump and the strings, read from the
    bundle's core member page by page."""
    from textual.widgets import OptionList, Static  # noqa: PLC0415 - only these tests

    from forensics.memory.view import stored_regions  # noqa: PLC0415
    from tests.tui.conftest import wait_for  # noqa: PLC0415
    from tui.replay.app import make_app  # noqa: PLC0415
    from tui.replay.screens.memory import PAGE, MemoryScreen  # noqa: PLC0415
    from tui.replay.screens.processes import ProcessScreen  # noqa: PLC0415

    p = programs["plain"]
    heap = _marker_address(memtarget_bin, _core(captured, p.pid, tmp_path))
    copy = tmp_path / "mem.exv"
    shutil.copyfile(captured.bundle, copy)
    app = make_app(copy)
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, 240)
        assert app.snapshot is not None
        app.push_screen(ProcessScreen(app.snapshot, p.pid))
        await pilot.pause()
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        regions = stored_regions(_records(captured)[p.pid])
        i = next(k for k, r in enumerate(regions) if r["start"] <= heap < r["end"])
        options = screen.query_one(OptionList)
        assert options.option_count == len(regions)
        options.focus()
        options.highlighted = i
        await pilot.press("enter")
        for _ in range((heap - regions[i]["start"]) // PAGE):
            await pilot.press("n")

        def page() -> str:
            return str(getattr(screen.query_one("#mem-page", Static).content, "plain", ""))

        await wait_for(pilot, lambda: p.marker in page(), 60)
        text = page()
        assert f"{heap:016x} {p.marker}" in text  # the strings list, at its address
        assert f"{heap & ~15:016x}  " in text  # the hex dump's line of that address
        # it streamed: going forward never reopened the bundle
        assert screen.cursor.opens == 1


def test_sbom_lists_the_memfd_image_found_in_the_core_with_source_memory(
    captured: Captured, programs: dict[str, Program], memtarget_bin: Path
) -> None:
    """`exuvia sbom`: the memfd process's core holds its mapped image; the SBOM lists it
    as a component whose source is memory, with the build-id `readelf -n` gives."""
    readelf = subprocess.run(
        ["readelf", "-n", str(memtarget_bin)], check=True, capture_output=True, text=True
    ).stdout
    build_id = readelf.split("Build ID:")[1].split()[0]
    res = subprocess.run(
        [sys.executable, "-m", "tui.cli", "sbom", str(captured.bundle),
         "--format", "cyclonedx-json"],
        check=False, capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    p = programs["memfd"]
    found = []
    for c in doc["components"]:
        props = {}
        for prop in c.get("properties", []):
            props.setdefault(prop["name"], []).append(prop["value"])
        if props.get("exuvia:source") == ["memory"]:
            found.append((c, props))
    assert len(found) == 1, [c["name"] for c, _ in found]  # the plain process is on disk
    c, props = found[0]
    assert c["name"].startswith("/memfd:memtarget")
    assert props["exuvia:memory:member"] == [f"memory/{p.pid}.core"]
    assert props["exuvia:memory:build-id"] == [build_id]
    assert props["exuvia:pid"] == [str(p.pid)]
    assert props["exuvia:ran-from-memfd"] == ["true"]
    addr = int(props["exuvia:memory:address"][0], 16)
    region = next(r for r in _records(captured)[p.pid]["regions"] if r["start"] == addr)
    assert region["kind"] == "memfd" and region["offset"] == 0


def test_findings_say_the_memfd_process_memory_was_captured(
    captured: Captured, programs: dict[str, Program], memtarget_bin: Path
) -> None:
    from forensics.findings import analyze_bundle  # noqa: PLC0415

    report = analyze_bundle(captured.bundle)
    hits = [f for f in report.findings if f.rule == "exe.memfd-memory"]
    p = programs["memfd"]
    assert len(hits) == 1, [f.title for f in report.findings]
    f = hits[0]
    assert f"runs from a memfd, its memory was captured (member memory/{p.pid}.core)" in f.title
    assert f.attrs["pid"] == p.pid
    text = " ".join(e.text for e in f.evidence)
    assert _records(captured)[p.pid]["sha256"] in text and "build-id" in text
