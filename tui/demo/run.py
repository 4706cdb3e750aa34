"""`exuvia demo`: a staged incident in a real shell-less container, captured.

Runs the same code paths a responder would: resolve `runc://ID`, capture it
read-only into a bundle, verify the bundle, then print its findings (what a
responder looks at first) and, after them, the timeline they come from.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.bundle import verify_bundle
from forensics.custody import default_operator
from forensics.findings import analyze_bundle
from forensics.textsafe import printable
from forensics.timeline import first_lines
from forensics.timeutil import now_ns
from tui.commands.findings_cmd import finding_lines
from tui.demo.lab import start_demo_container


def run_demo(output_dir: Path, *, replay: bool = True) -> int:
    output_dir.mkdir(parents=True, exist_ok=True)
    bundle = output_dir / f"demo-{now_ns() // 1_000_000_000}.exv"
    with tempfile.TemporaryDirectory(prefix="exuvia-demo-") as work:
        print("starting a shell-less container (one static binary, no shell) with runc ...")
        with start_demo_container(work) as box:
            print(f"  container {box.container_id}, init pid {box.pid} on this host")
            print("  it staged an incident: a binary dropped in /tmp, run, then deleted, that")
            print("  listens, reaches out and holds the service-account token; a fileless")
            print("  process; a changed config file; a 'curl | sh' in its log")
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
    findings = analyze_bundle(res.path)
    counts = ", ".join(f"{n} {k}" for k, n in findings.counts.items() if n)
    print(f"findings ({counts}), most severe first:")
    for f in findings.findings:
        print("  " + finding_lines(f)[0])
        for ev in f.evidence[:2]:
            print(f"             > {printable(ev.member)}:{ev.line}  {printable(ev.role)}")
    print("the incident's timeline (from the container's start), where they come from:")
    for line in first_lines(res.path, 15, from_container_start=True):
        print(f"  {line}")
    print(f"next: exuvia findings {res.path} --explain   exuvia report {res.path} -o report.html")
    print(f"      exuvia timeline {res.path} --format jsonl -o t.jsonl")
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
