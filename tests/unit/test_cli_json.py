"""`--output json` of verify, info and findings: one JSON document, ASCII, the
documented fields, the same exit status as the text form."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import incident_bundle

EXUVIA = [sys.executable, "-m", "tui.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXUVIA, *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return incident_bundle.build(tmp_path_factory.mktemp("j") / "incident.exv")


def test_verify_json_ok_and_failed(bundle: Path, tmp_path: Path) -> None:
    r = run("verify", str(bundle), "--output", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and r.stdout.isascii()
    assert doc["format"] == "exuvia-verify-result" and doc["ok"] is True
    assert doc["members_verified"] > 5 and len(doc["manifest_sha256"]) == 64
    assert doc["exit_status"] == 0 and doc["altered"] == []
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x55
    bad = tmp_path / "bad.exv"
    bad.write_bytes(bytes(data))
    r = run("verify", str(bad), "--output", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["ok"] is False and doc["exit_status"] == 1
    assert doc["altered"] or doc["problems"] or doc["truncated"]


def test_info_json_escapes_what_the_bundle_says(bundle: Path) -> None:
    r = run("info", str(bundle), "--output", "json")
    assert r.returncode == 0 and r.stdout.isascii() and "\x1b" not in r.stdout
    doc = json.loads(r.stdout)
    assert doc["format"] == "exuvia-info" and doc["complete"] is True
    assert doc["case"] == "IR-7" and doc["target"]["uri"] == "runc://web-1"
    assert doc["skips"]["total"] == 0 and doc["members"] > 5 and doc["exit_status"] == 0


def test_the_option_takes_text_or_json_only(bundle: Path) -> None:
    r = run("verify", str(bundle), "--output", "x.exv")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr
    r = run("capture", "pid://1", "--output", "x.exv")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_verify_and_info_json_of_a_case(tmp_path: Path) -> None:
    from tests.support.case_bundles import make_case  # noqa: PLC0415

    d = tmp_path / "case"
    make_case(d, [("prod", "web-a"), ("prod", "web-b")])
    doc = json.loads(run("verify", str(d), "--output", "json").stdout)
    assert doc["format"] == "exuvia-case-verify-result" and doc["ok"] and doc["verified"] == 2
    assert [b["label"] for b in doc["bundles"]] == ["prod/web-a/app", "prod/web-b/app"]
    (d / "prod_web-b_app.exv").write_bytes(b"junk")
    r = run("verify", str(d), "--output", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False
    doc = json.loads(run("info", str(d), "--output", "json").stdout)
    assert doc["format"] == "exuvia-case-info" and doc["case_id"] == "IR-1"
