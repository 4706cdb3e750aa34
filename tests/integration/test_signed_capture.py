"""A real capture signed with --sign, checked with verify --key, and what its custody
log binds — through the real command line, against a real shell-less container."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from forensics.bundle import verify_bundle
from forensics.bundle.format import CUSTODY_NAME, SIGNATURE_NAME
from forensics.bundle.reader import BundleReader
from tests.support.bundles import member, member_names
from tui.demo.launch import LabContainer


def exuvia(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, check=False
    )


def test_signed_capture_verifies_with_its_key_only(
    runc_target: LabContainer, tmp_path: Path
) -> None:
    res = exuvia("keygen", str(tmp_path / "examiner"))
    assert res.returncode == 0, res.stderr
    fingerprint = res.stdout.split("fingerprint: ")[1].strip()
    assert exuvia("keygen", str(tmp_path / "other")).returncode == 0
    assert exuvia("keygen", str(tmp_path / "examiner")).returncode == 2  # never overwrites

    out = tmp_path / "signed.exv"
    res = exuvia(
        "capture", runc_target.uri, "-o", str(out), "--sign", str(tmp_path / "examiner"), "-q"
    )
    assert res.returncode == 0, res.stderr
    assert f"signed by:       {fingerprint}" in res.stdout
    assert member_names(out)[-2:] == ["manifest.json", SIGNATURE_NAME]

    res = exuvia("verify", str(out), "--key", str(tmp_path / "examiner.pub"))
    assert res.returncode == 0, res.stdout
    assert f"signature:       valid, by the given key: {fingerprint}" in res.stdout
    assert "custody seal:    matches" in res.stdout

    res = exuvia("verify", str(out), "--key", str(tmp_path / "other.pub"))
    assert res.returncode == 1
    assert "signed by another key" in res.stdout

    # the private key is nowhere in the bundle or the sidecar; its fingerprint is
    pem_body = b"".join((tmp_path / "examiner").read_bytes().splitlines()[1:-1])
    sidecar = Path(str(out) + ".custody.jsonl").read_bytes()
    assert pem_body not in out.read_bytes() and pem_body not in sidecar
    started = json.loads(member(out, CUSTODY_NAME).splitlines()[0])
    assert started["details"]["signing_key"] == fingerprint
    sealed = json.loads(sidecar.splitlines()[-1])
    assert sealed["details"]["key_fingerprint"] == fingerprint


def test_real_capture_custody_binds_member_and_bundle_hashes(
    runc_target: LabContainer, tmp_path: Path
) -> None:
    out = tmp_path / "b.exv"
    assert exuvia("capture", runc_target.uri, "-o", str(out), "-q").returncode == 0
    report = verify_bundle(out)
    assert report.ok and report.sidecar_checked, report.failures()
    listed = {m["name"]: m["sha256"] for m in BundleReader(out).manifest()["members"]}
    inside = [json.loads(line) for line in member(out, CUSTODY_NAME).splitlines()]
    finished = [e for e in inside if e["action"] == "collector.finished"]
    assert {e["details"]["collector"] for e in finished} >= {"processes", "filesystem", "logs"}
    for e in finished:  # each collector's entry binds its JSONL member's hash
        assert listed[e["details"]["member"]] == e["details"]["sha256"]
    sidecar = [json.loads(x) for x in Path(str(out) + ".custody.jsonl").read_text().splitlines()]
    assert sidecar[: len(inside)] == inside
    assert sidecar[-1]["details"]["manifest_sha256"] == report.manifest_sha256
    assert sidecar[-1]["details"]["file_sha256"] == report.file_sha256
