"""Headless pieces of `exuvia triage`: literal text, the no-follow shell check,
progress/ETA and cancellation, the process tree order, log tails."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from collectors.capture_progress import CANCEL_REASON, ProgressTracker
from collectors.fs.acquire import FsStats
from collectors.fs.shellcheck import has_shell
from collectors.live.logs import LogTail, parse_line
from collectors.live.processes import ProcRow, tree_order
from forensics.errors import CaptureInterrupted, ExuviaError
from forensics.textsafe import printable
from tests.support.incident_bundle import build


def test_printable_escapes_controls_and_bidi_and_keeps_the_rest() -> None:
    assert printable("plain [bold]x[/] ü 日本") == "plain [bold]x[/] ü 日本"
    assert printable("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert printable("l1\nl2\tt\r") == "l1\\nl2\\tt\\r"
    assert printable("x\u202ey\x9bz\x7f") == "x\\u202ey\\x9bz\\x7f"


def _root(tmp_path: Path) -> int:
    return os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)


def test_shell_found_as_file_or_symlink(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sh").symlink_to("busybox")  # dangling is fine: never followed
    fd = _root(tmp_path)
    try:
        assert has_shell(fd) == (True, "/bin/sh (symlink)")
    finally:
        os.close(fd)


def test_merged_usr_bin_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "bin").mkdir(parents=True)
    (outside / "bin" / "sh").write_text("host shell")
    root = tmp_path / "root"
    root.mkdir()
    # /bin -> a directory outside the root (absolute, as a hostile image could hold)
    (root / "bin").symlink_to(outside / "bin")
    fd = _root(root)
    try:
        found, why = has_shell(fd)
    finally:
        os.close(fd)
    assert found is False and "/bin" in why
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "dash").write_text("")
    fd = _root(root)
    try:
        assert has_shell(fd) == (True, "/usr/bin/dash (file)")
    finally:
        os.close(fd)


def test_distroless_root_has_no_shell(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "server").write_text("")
    fd = _root(tmp_path)
    try:
        found, why = has_shell(fd)
    finally:
        os.close(fd)
    assert not found and why.startswith("no sh")


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_rate_eta_and_cancel() -> None:
    seen = []
    clock = _Clock()
    cancel = threading.Event()
    tr = ProgressTracker(seen.append, cancel=cancel, estimate=(1000, 10_000_000), clock=clock)
    tr("processes", None)
    assert seen[-1].phase == "processes" and seen[-1].fraction == 0.0
    clock.t = 101.0
    tr("filesystem", FsStats(entries=1, hashed_bytes=0))  # the walk starts at t=101
    clock.t = 103.0
    tr("filesystem", FsStats(entries=250, files=200, hashed_bytes=2_000_000))
    info = seen[-1]
    assert info.rate_bps == pytest.approx(1_000_000)
    # by entries 6 s are left, by bytes 8 s: the later wins
    assert info.eta_s == pytest.approx(8.0)
    assert info.fraction == pytest.approx(0.25)
    tr("logs", None)  # later phases keep the walk's totals on screen
    assert seen[-1].phase == "logs" and seen[-1].entries == 250 and seen[-1].fraction == 1.0
    cancel.set()
    with pytest.raises(CaptureInterrupted, match=CANCEL_REASON):
        tr("filesystem", FsStats(entries=300))


def _row(pid: int, ppid: int) -> ProcRow:
    return ProcRow(pid, pid, ppid, f"p{pid}", (f"p{pid}",), None, False, False, "S", 1, 0,
                   None, 0, 0)  # fmt: skip


def test_tree_order_parents_first_and_orphans_are_roots() -> None:
    rows = [_row(10, 1), _row(12, 10), _row(11, 10), _row(13, 12), _row(20, 99)]
    order = [(d, r.pid) for d, r in tree_order(rows)]
    assert order == [(0, 10), (1, 11), (1, 12), (2, 13), (0, 20)]


def test_log_tail_reads_backlog_then_new_lines_and_unwraps_k8s_file(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(
        b"2026-11-23T10:00:00.000000001Z stdout F first\n"
        b"2026-11-23T10:00:01.000000000Z stderr F \x1b[31mred\n"
    )
    tail = LogTail(str(log), "k8s-file")
    lines = tail.poll()
    assert [(ln.stream, ln.text) for ln in lines] == [
        ("stdout", "first"),
        ("stderr", "\x1b[31mred"),
    ]
    assert lines[0].ts_ns == 1795428000000000001
    with log.open("ab") as fh:
        fh.write(b"2026-11-23T10:00:02Z stdout F third\n2026-11-23T10:00:03Z stdout P half")
    assert [ln.text for ln in tail.poll()] == ["third"]  # the partial line waits
    tail.close()
    assert parse_line(b"not enveloped", "k8s-file").text == "not enveloped"
    assert parse_line(b'{"log":"hi\\n","stream":"stdout","time":"2026-11-23T10:00:00Z"}',
                      "json-file").text == "hi"  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["pid://999999999"], "does not exist"),
        (["k8s://ns/pod"], "picker"),
        (["nope://x"], "unknown target scheme"),
        (["pid://1", "-o", "/nonexistent-dir"], "is not a directory"),
    ],
)
def test_triage_bad_input_is_one_line_before_any_screen(args: list[str], expect: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tui.cli", "triage", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2, res
    assert res.stdout == ""  # no screen was drawn
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_replay_handoff_runs_the_replay_command(tmp_path: Path) -> None:
    """'o' after a capture hands the bundle to `exuvia replay` (which, off a terminal,
    says in one line that it needs one: proof the hand-off reached it)."""
    from tui.commands import triage_cmd  # noqa: PLC0415

    bundle = build(tmp_path / "b.exv")
    with pytest.raises(ExuviaError, match="replay needs a terminal"):
        triage_cmd.open_in_replay(bundle)
    with pytest.raises(ExuviaError, match="no such bundle"):
        triage_cmd.open_in_replay(tmp_path / "missing.exv")


def test_bundle_names_never_collide_with_evidence_already_there(tmp_path: Path) -> None:
    from tui.triage.session import SessionOptions, TriageSession  # noqa: PLC0415

    s = TriageSession(SessionOptions(output_dir=tmp_path, examiner="t"))
    first = s.bundle_path("we b/1", "20261123T000000Z")
    assert first == tmp_path / "triage-we_b_1-20261123T000000Z.exv"
    first.with_name(first.name + ".incomplete").write_bytes(b"")
    second = s.bundle_path("we b/1", "20261123T000000Z")
    assert second.name == "triage-we_b_1-20261123T000000Z-2.exv"
