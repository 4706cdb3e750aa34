"""Reading a bundle for the findings: one pass, refs that point at the records,
cut-off and hostile bundles, the command line's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.errors import BundleError
from forensics.findings import analyze_bundle
from forensics.findings.load import collector_of, load_facts
from forensics.timeline.bundleio import read_record
from tests.support import incident_bundle
from tests.support.incident_bundle import ESCAPE, MARKUP

EXUVIA = [sys.executable, "-m", "tui.cli"]
REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return incident_bundle.build(tmp_path_factory.mktemp("fb") / "incident.exv")


def test_member_names_of_records() -> None:
    assert collector_of("artifacts/processes.jsonl") == "processes"
    assert collector_of("artifacts/filesystem/000003.jsonl") == "filesystem"
    assert collector_of("artifacts/target.json") is None
    assert collector_of("files/artifacts/processes.jsonl") is None


def test_refs_point_at_the_records(bundle: Path) -> None:
    facts = load_facts(bundle)
    for rec in facts.processes + facts.sockets + list(facts.files.values()):
        assert json.loads(read_record(bundle, rec.member, rec.line)) == rec.data
    assert facts.manifest_sha256 and facts.upper_known and facts.inventory is not None
    assert facts.logs_scanned == ["logs/runtime/01-stdio.log"]


def test_a_cut_off_bundle_gives_what_precedes_the_cut(bundle: Path, tmp_path: Path) -> None:
    data = bundle.read_bytes()
    full = analyze_bundle(bundle)
    for keep in (len(data) // 2, len(data) - 600):
        cut = tmp_path / f"cut-{keep}.exv.partial"
        cut.write_bytes(data[:keep])
        report = analyze_bundle(cut)
        assert report.facts.cut is not None and not report.complete
        assert report.blind_spots[0].startswith("the bundle is cut off")
        assert {f.id for f in report.findings} <= {f.id for f in full.findings}
        r = subprocess.run([*EXUVIA, "findings", str(cut)], capture_output=True, text=True,
                           check=False)  # fmt: skip
        assert r.returncode == 0 and "capture: CUT OFF" in r.stdout, r.stderr


def test_not_a_bundle_and_a_newer_one(tmp_path: Path, bundle: Path) -> None:
    junk = tmp_path / "junk.exv"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(BundleError):
        analyze_bundle(junk)
    r = subprocess.run([*EXUVIA, "findings", str(junk)], capture_output=True, text=True,
                       check=False)  # fmt: skip
    assert (
        r.returncode == 2 and r.stderr.startswith("exuvia: error:") and "Traceback" not in r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_escapes_what_comes_from_the_bundle(bundle: Path) -> None:
    r = subprocess.run([*EXUVIA, "findings", str(bundle), "--explain"], capture_output=True,
                       text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "HIGH     process .x (pid 7, host 4107) runs a deleted executable: /tmp/.x" in r.stdout
    assert "why: The file the process was started from has been removed" in r.stdout
    r = subprocess.run([*EXUVIA, "findings", str(bundle), "--output", "json", "--min-severity",
                        "high"], capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0 and r.stdout.isascii() and "\x1b" not in r.stdout
    doc = json.loads(r.stdout)
    assert {f["severity"] for f in doc["findings"]} == {"high"}
    assert doc["counts"] == {"critical": 0, "high": 3, "medium": 1, "low": 0, "info": 0}
    deleted = next(f for f in doc["findings"] if f["rule"] == "exe.deleted")
    # the hostile command line is in the evidence text, exactly (JSON-escaped)
    assert MARKUP in deleted["evidence"][0]["text"] and ESCAPE in deleted["evidence"][0]["text"]
    assert deleted["evidence"][0] == {
        "member": "artifacts/processes.jsonl", "line": 2, "pivot": "process", "key": 4107,
        "role": "the process", "text": deleted["evidence"][0]["text"],
    }  # fmt: skip


def test_lone_surrogates_in_records_are_no_traceback(tmp_path: Path) -> None:
    """JSON can carry a lone surrogate (``\\udcff``), which UTF-8 and SQLite refuse:
    every reader shows it (as U+FFFD or an escape) instead of crashing."""
    from tests.support.bundle_craft import write_real_bundle  # noqa: PLC0415

    def rec(**kw: object) -> bytes:  # "@@" becomes a lone surrogate's JSON escape
        return json.dumps(kw).replace("@@", "x\\udcffy").encode() + b"\n"

    proc = rec(kind="process", pid=7, nspid=1, name="@@", cmdline=["@@"],
               exe="/tmp/@@ (deleted)", exe_deleted=True, start_ns=1)  # fmt: skip
    fs = rec(kind="fs_entry", path="/etc/@@", type="file", mode="0755", changed=True,
             mtime_ns=1, atime_ns=1, ctime_ns=1)  # fmt: skip
    path = tmp_path / "s.exv"
    write_real_bundle(path, contents={
        "artifacts/target.json": rec(uri="runc://@@", pid=7, name="@@"),
        "artifacts/processes.jsonl": proc,
        "artifacts/filesystem.jsonl": fs,
    })  # fmt: skip
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    for cmd in (["findings"], ["findings", "--output", "json"], ["timeline"], ["sbom"],
                ["report", "-o", str(tmp_path / "r.html")]):  # fmt: skip
        r = subprocess.run([*EXUVIA, cmd[0], str(path), *cmd[1:]], capture_output=True,
                           text=True, check=False, env=env, cwd=REPO)  # fmt: skip
        assert r.returncode == 0 and "Traceback" not in r.stderr, (cmd, r.stderr)
    assert "runs a deleted executable" in (tmp_path / "r.html").read_text()


def test_a_family_can_ask_for_a_collectors_records(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """How a new family (e.g. over memory members) gets its records: RECORD_COLLECTORS."""
    from forensics.findings.rules import exe  # noqa: PLC0415
    from tests.support.bundle_craft import write_real_bundle  # noqa: PLC0415

    monkeypatch.setattr(exe, "RECORD_COLLECTORS", ("memory",), raising=False)
    path = tmp_path / "m.exv"
    rows = b'{"kind":"memory_region","pid":7}\n{"kind":"memory_region","pid":8}\n'
    write_real_bundle(path, contents={"artifacts/memory.jsonl": rows})
    facts = load_facts(path)
    assert [(r.member, r.line, r.get("pid")) for r in facts.records["memory"]] == [
        ("artifacts/memory.jsonl", 1, 7), ("artifacts/memory.jsonl", 2, 8)]  # fmt: skip
