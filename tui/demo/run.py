"""`exuvia demo`: a staged incident in a real shell-less container, captured.

Runs the same code paths a responder would: resolve `runc://ID`, capture it
read-only into a bundle, verify the bundle, then summarize what was found.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.bundle import verify_bundle
from forensics.bundle.reader import BundleReader
from forensics.custody import default_operator
from forensics.timeline import first_lines
from forensics.timeutil import now_ns
from tui.demo.lab import start_demo_container


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def summarize(bundle: Path) -> list[str]:
    """The few lines a responder wants first: odd processes, changes, listeners."""
    wanted = {"artifacts/processes.jsonl", "artifacts/filesystem.jsonl", "artifacts/network.jsonl"}
    arts = BundleReader(bundle).read_members(lambda n: n in wanted)
    lines: list[str] = []
    for p in _jsonl(arts.get("artifacts/processes.jsonl", b"")):
        flag = ""
        if p.get("exe_memfd"):
            flag = "runs from a MEMFD (fileless)"
        elif p.get("exe_deleted"):
            flag = "runs a DELETED executable"
        if flag:
            lines.append(f"  process {p.get('nspid')} ({p.get('name')}): {flag}: {p.get('exe')}")
    for f in _jsonl(arts.get("artifacts/filesystem.jsonl", b"")):
        if f.get("changed") and f.get("type") != "dir":
            what = "deleted" if f.get("deleted") else "written since start"
            lines.append(f"  file {f.get('path')}: {what}")
    for s in _jsonl(arts.get("artifacts/network.jsonl", b"")):
        if s.get("kind") == "socket" and s.get("state") == "LISTEN" and s.get("local_port"):
            owners = ", ".join(str(o.get("name")) for o in s.get("owners") or [])
            lines.append(
                f"  listening {s.get('proto')} {s.get('local_addr')}:"
                f"{s.get('local_port')} ({owners})"
            )
    return lines


def run_demo(output_dir: Path, *, replay: bool = True) -> int:
    output_dir.mkdir(parents=True, exist_ok=True)
    bundle = output_dir / f"demo-{now_ns() // 1_000_000_000}.exv"
    with tempfile.TemporaryDirectory(prefix="exuvia-demo-") as work:
        print("starting a shell-less container (one static binary, no shell) with runc ...")
        with start_demo_container(work) as box:
            print(f"  container {box.container_id}, init pid {box.pid} on this host")
            print("  it staged an incident: a binary dropped in /tmp, run, then deleted;")
            print("  a fileless process; a changed config file; log lines; open ports")
            target = resolve(f"runc://{box.container_id}")
            print(f"capturing {target.uri} (read-only) ...")
            res = capture(
                target,
                CaptureOptions(
                    output=bundle,
                    examiner=default_operator(),
                    case="exuvia-demo",
                    argv=list(sys.argv),
                    threads=min(2, os.cpu_count() or 1),
                ),
            )
    report = verify_bundle(res.path)
    state = "complete" if res.complete else f"INCOMPLETE: {res.incomplete_reason}"
    print(f"bundle:          {res.path} ({state}, {res.file_bytes} bytes)")
    print(f"manifest sha256: {res.manifest_sha256}")
    print(f"custody log:     {res.custody_path}")
    if report.ok:
        print(f"verify:          OK, {report.members_verified} members match the manifest")
    else:
        print("verify:          FAILED")
        for line in report.failures():
            print(f"  {line}")
        return 1
    print("what the capture shows:")
    for line in summarize(res.path):
        print(line)
    print("the incident's timeline (from the container's start):")
    for line in first_lines(res.path, 15, from_container_start=True):
        print(f"  {line}")
    print(f"next: exuvia info {res.path}   exuvia timeline {res.path} --format jsonl -o t.jsonl")
    code = 0 if res.complete else 3
    if not replay:
        return code
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(f"replay: not on a terminal, so not opened; run: exuvia replay {res.path}")
        return code
    print("opening it in the replay view (press ? for the keys, q to quit) ...")
    from tui.commands.replay_cmd import run_replay  # noqa: PLC0415 - textual only here

    run_replay(res.path, from_container_start=True)
    return code
