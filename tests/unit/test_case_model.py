"""The case model: case.json written while bundles finish, read back, verified,
and every way of tampering with a case noticed (forensics/case/)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.case import (
    CASE_FILE,
    CUSTODY_FILE,
    SIGNATURE_FILE,
    CaseWriter,
    bundle_file_name,
    is_case,
    load_case,
    verify_case,
)
from forensics.errors import BundleError, BundleVersionError, OutputError
from forensics.signing import Signer, generate, load_public_key
from tests.support.case_bundles import make_case, pod_bundle

REPO = Path(__file__).resolve().parents[2]
PODS = [("prod", "web-5d9-a"), ("prod", "web-5d9-b"), ("prod", "web-5d9-c")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=REPO,
        timeout=120, check=False,
    )  # fmt: skip


def _edit(case_dir: Path, change: object) -> None:
    doc = json.loads((case_dir / CASE_FILE).read_text())
    change(doc)  # type: ignore[operator]
    (case_dir / CASE_FILE).write_text(json.dumps(doc))


def test_a_case_is_written_as_it_goes_and_reads_back(tmp_path: Path) -> None:
    d = tmp_path / "case"
    w = make_case(d, PODS[:2], seal=False)
    mid = load_case(d)  # readable before it is sealed
    assert mid.state == "capturing" and mid.sealed_ns is None
    assert [b.status for b in mid.bundles] == ["complete", "complete"]
    w.seal()
    case = load_case(d / CASE_FILE)  # the file itself works as well as the directory
    assert is_case(d) and not is_case(tmp_path) and not is_case(d / CASE_FILE)
    assert case.case_id == "IR-1" and case.examiner == "alice" and case.state == "complete"
    assert case.target == "k8s://prod -l app=web"
    assert [p.name for p in case.pods] == ["web-5d9-a", "web-5d9-b"]
    pod = case.pods[0]
    assert pod.uid == "uid-web-5d9-a" and pod.node == "node-a" and pod.workload == "Deployment/web"
    assert [o.kind for o in pod.owners] == ["ReplicaSet", "Deployment"]
    b = case.bundle("prod", "web-5d9-b", "app")
    assert b is not None and b.captured and b.path == d / "prod_web-5d9-b_app.exv"
    assert b.label == "prod/web-5d9-b/app" and b.uri == "k8s://prod/web-5d9-b/app"
    assert b.manifest_sha256 and len(b.manifest_sha256) == 64 and b.bytes == b.path.stat().st_size
    assert b.start_ns is not None and b.end_ns is not None and b.start_ns <= b.end_ns
    assert case.siblings() == {"Deployment/web:app": list(case.captured)}
    actions = [json.loads(x)["action"] for x in (d / CUSTODY_FILE).read_text().splitlines()]
    assert actions[0] == "case.started" and actions[-1] == "case.sealed"
    assert actions.count("bundle.finished") == 2 and "case.resolved" in actions
    report = verify_case(d)
    assert report.ok, report.problems + [f for c in report.bundles for f in c.failures()]
    assert report.verified == 2 and report.sealed and report.signed_by is None


def test_incomplete_failed_and_interrupted_bundles_are_recorded(tmp_path: Path) -> None:
    d = tmp_path / "case"
    make_case(d, PODS, incomplete=("web-5d9-b",), failed={"web-5d9-c": "pod deleted"})
    case = load_case(d)
    assert case.state == "partial"
    st = {b.pod: (b.status, b.reason, b.file) for b in case.bundles}
    assert st["web-5d9-b"] == ("incomplete", "the agent's stream broke",
                               "prod_web-5d9-b_app.exv.incomplete")  # fmt: skip
    assert st["web-5d9-c"] == ("failed", "pod deleted", None)
    assert [b.pod for b in case.captured] == ["web-5d9-a", "web-5d9-b"]
    assert verify_case(d).ok
    # an interrupted case: what never started is failed with the reason
    d2 = tmp_path / "interrupted"
    w = CaseWriter.create(d2, case_id="x", examiner="e", request={"target": "k8s://prod"})
    w.add_bundle("prod", "p", "app", file="prod_p_app.exv")
    state, sha = w.seal(interrupted="interrupted by SIGINT")
    case = load_case(d2)
    assert (
        state == case.state == "interrupted" and case.raw["interrupted"] == "interrupted by SIGINT"
    )
    assert (case.bundles[0].status, case.bundles[0].reason) == (
        "failed", "not started: interrupted by SIGINT")  # fmt: skip
    assert len(sha) == 64


def test_a_case_needs_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "old.exv").write_bytes(b"")
    with pytest.raises(OutputError, match="not empty"):
        CaseWriter.create(tmp_path / "x", case_id="c", examiner="e", request={})
    assert bundle_file_name("prod", "web.v2-1", "app") == "prod_web.v2-1_app.exv"
    with pytest.raises(ValueError, match="not a Kubernetes name"):
        bundle_file_name("prod", "../etc", "app")


def test_every_tampering_with_a_case_is_noticed(tmp_path: Path) -> None:
    base = tmp_path / "base"
    make_case(base, PODS[:2])

    def fresh(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(base, d)
        return d

    def problems(d: Path) -> str:
        r = verify_case(d)
        assert not r.ok
        return "\n".join(r.problems + [f for c in r.bundles for f in c.failures()])

    d = fresh("edited")  # case.json changed after sealing
    _edit(d, lambda doc: doc.update(examiner="mallory"))
    assert "case.json's SHA-256 is not the one sealed" in problems(d)

    d = fresh("swapped")  # a bundle replaced by another valid one
    other = d / "prod_web-5d9-a_app.exv"
    pod_bundle(other, "prod", "web-5d9-a", pod_uid="uid-web-5d9-a", files={"/x": b"evil"})
    assert "is not the bundle case.json names" in problems(d)

    d = fresh("moved")  # a bundle filed under another pod's name
    a, b = d / "prod_web-5d9-a_app.exv", d / "prod_web-5d9-b_app.exv"
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)
    text = problems(d)
    assert "is not the bundle case.json names" in text and "its target is" in text

    d = fresh("deleted")
    (d / "prod_web-5d9-b_app.exv").unlink()
    assert "missing: prod_web-5d9-b_app.exv" in problems(d)

    d = fresh("flipped")  # one byte of a bundle
    f = d / "prod_web-5d9-b_app.exv"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    f.write_bytes(bytes(raw))
    assert problems(d)

    d = fresh("unsealed")  # the custody log lost its seal
    lines = (d / CUSTODY_FILE).read_text().splitlines()
    (d / CUSTODY_FILE).write_text("\n".join(lines[:-1]) + "\n")
    assert "case.json says it was sealed" in problems(d)

    d = fresh("no-custody")
    (d / CUSTODY_FILE).unlink()
    assert "custody log case.custody.jsonl is unreadable" in problems(d)


def test_a_cut_off_case_is_reported_not_sealed_and_its_bundles_still_checked(
    tmp_path: Path,
) -> None:
    d = tmp_path / "cut"
    w = make_case(d, PODS[:1], seal=False)
    w.add_bundle("prod", "late", "app", file="prod_late_app.exv")
    w.started("prod", "late", "app")
    r = verify_case(d)
    assert not r.ok and any("not sealed" in p for p in r.problems)
    assert r.verified == 1 and any("not finished" in n for n in r.notes)


def test_signed_case(tmp_path: Path) -> None:
    key = tmp_path / "k"
    generate(key)
    signer = Signer.from_file(key)
    d = tmp_path / "case"
    make_case(d, PODS[:2], signer=signer)
    pub = load_public_key(tmp_path / "k.pub")
    r = verify_case(d, public_key=pub)
    assert r.ok and r.signed_by == signer.fingerprint
    assert json.loads((d / SIGNATURE_FILE).read_text())["signed_member"] == "case.json"
    # another key: refused for case.json and for every bundle
    generate(tmp_path / "k2")
    r = verify_case(d, public_key=load_public_key(tmp_path / "k2.pub"))
    assert not r.ok and any("another key" in p for p in r.problems)
    assert all(not c.ok for c in r.bundles)
    # case.json edited and the custody seal forged to match: the signature still holds it
    _edit(d, lambda doc: doc.update(examiner="mallory"))
    lines = (d / CUSTODY_FILE).read_text().splitlines()
    seal = json.loads(lines[-1])
    seal["details"]["case_sha256"] = hashlib.sha256((d / CASE_FILE).read_bytes()).hexdigest()
    (d / CUSTODY_FILE).write_text("\n".join([*lines[:-1], json.dumps(seal)]) + "\n")
    r = verify_case(d)
    assert r.problems == [
        "case.json.sig: the signature is for another case.json (its case_sha256 differs)"
    ]
    (d / SIGNATURE_FILE).unlink()
    assert "case.json says it is signed, but case.json.sig is missing" in verify_case(d).problems


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version="2.0"), "case format 2.0 is newer"),
        (lambda d: d.update(version="x"), "no valid format version"),
        (lambda d: d.update(format="exuvia-notes"), "not an exuvia case file"),
        (lambda d: d["bundles"][0].update(file="../../etc/passwd"), r"bundles\[0\]\.file"),
        (lambda d: d["bundles"][0].update(file="/etc/passwd"), r"bundles\[0\]\.file"),
        (lambda d: d["bundles"][0].update(status="great"), r"bundles\[0\]\.status"),
        (lambda d: d["bundles"][0].update(bytes=-1), r"bundles\[0\]\.bytes"),
        (lambda d: d["resolution"]["pods"][0].update(owners="x"), r"pods\[0\]\.owners"),
        (lambda d: d.update(state=["x"]), "state is not valid"),
        (lambda d: d.update(created_ns="yesterday"), "created_ns is not valid"),
    ],
)
def test_malformed_case_json_is_one_clear_error(
    tmp_path: Path, change: object, message: str
) -> None:
    d = tmp_path / "case"
    make_case(d, PODS[:1])
    _edit(d, change)
    err_type = BundleVersionError if "newer" in message else BundleError
    with pytest.raises(err_type, match=message):
        load_case(d)
    res = _cli("info", str(d))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert verify_case(d).case is None


def test_hostile_case_json_is_bounded_and_never_followed(tmp_path: Path) -> None:
    d = tmp_path / "case"
    d.mkdir()
    (d / CASE_FILE).write_text("[" * 200_000)
    with pytest.raises(BundleError, match="not valid JSON"):
        load_case(d)
    os.unlink(d / CASE_FILE)
    os.symlink("/etc/hostname", d / CASE_FILE)
    assert not is_case(d)
    with pytest.raises(BundleError, match="cannot read"):
        load_case(d)


def test_verify_and_info_on_the_command_line(tmp_path: Path) -> None:
    d = tmp_path / "case"
    make_case(d, PODS, incomplete=("web-5d9-b",), failed={"web-5d9-c": "pod deleted [red]x"})
    res = _cli("verify", str(d))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "OK prod/web-5d9-a/app: prod_web-5d9-a_app.exv" in out
    assert "INCOMPLETE capture: the agent's stream broke" in out
    assert "prod/web-5d9-c/app: failed, no bundle (pod deleted [red]x)" in out
    assert "OK: case IR-1" in out and "2 of 3 bundles verify" in out and "state partial" in out
    res = _cli("info", str(d))
    assert res.returncode == 0, res.stderr
    assert (
        "state:      partial" in res.stdout
        and "bundles:    3 (1 complete, 1 failed, 1 incomplete)" in res.stdout
    )
    assert "replicas:   Deployment/web:app: 2" in res.stdout
    (d / "prod_web-5d9-a_app.exv").unlink()
    res = _cli("verify", str(d))
    assert res.returncode == 1 and "FAILED: case IR-1" in res.stdout
    assert "missing: prod_web-5d9-a_app.exv" in res.stdout
