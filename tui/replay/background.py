"""Verification and the snapshot of a bundle, read in a child process.

Both read the whole bundle (decompressing, parsing tar headers, hashing): in
a thread of the app that Python work would hold the GIL and make the screen
stutter on a large bundle, so it runs in its own process and hands back two
JSON lines: ``{"verify": ...}`` then ``{"snapshot": ...}``.

    python -m tui.replay.background BUNDLE
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from forensics.bundle.verify import VerifyReport, verify_bundle
from forensics.errors import ExuviaError
from forensics.snapshot import Snapshot, load_snapshot

_REPORT_FIELDS = {f.name for f in fields(VerifyReport)}
_SNAPSHOT_FIELDS = {f.name for f in fields(Snapshot)}


def report_from(d: dict[str, Any]) -> VerifyReport:
    return VerifyReport(**{k: v for k, v in d.items() if k in _REPORT_FIELDS})


def snapshot_from(d: dict[str, Any]) -> Snapshot:
    return Snapshot(**{k: v for k, v in d.items() if k in _SNAPSHOT_FIELDS})


def _results(bundle: Path) -> Iterator[dict[str, Any]]:
    try:
        report = verify_bundle(bundle)
    except ExuviaError as err:
        report = VerifyReport(str(bundle), problems=[str(err)])
    report.vouched_names = []  # the app needs the counts, not the (long) list
    yield {"verify": asdict(report)}
    try:
        snap = load_snapshot(bundle)
    except ExuviaError as err:
        snap = Snapshot(problems=[str(err)])
    yield {"snapshot": asdict(snap)}


def read_in_child(
    bundle: Path,
    on_report: Callable[[VerifyReport], None],
    on_snapshot: Callable[[Snapshot], None],
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> None:
    """Run the child and call back as each result arrives (from the calling thread);
    ``started`` gets the child process (to kill it when the app quits first)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    got_report = got_snapshot = False
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.replay.background", str(bundle)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None
        if started is not None:
            started(proc)
        with proc:
            for line in proc.stdout:
                msg = json.loads(line)
                if "verify" in msg:
                    on_report(report_from(msg["verify"]))
                    got_report = True
                elif "snapshot" in msg:
                    on_snapshot(snapshot_from(msg["snapshot"]))
                    got_snapshot = True
    except (OSError, ValueError) as err:
        problem = f"the background reader failed: {err}"
    else:
        problem = f"the background reader stopped (exit status {proc.returncode})"
    if not got_report:
        on_report(VerifyReport(str(bundle), problems=[problem]))
    if not got_snapshot:
        on_snapshot(Snapshot(problems=[problem]))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tui.replay.background BUNDLE", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        os.nice(10)  # the screen's process comes first
    for msg in _results(Path(argv[0])):
        sys.stdout.write(json.dumps(msg, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
