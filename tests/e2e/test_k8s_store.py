"""End to end: a fleet case captured straight into the evidence store.

Real pods on the e2e cluster (namespaces ``fleets3-<run>-…``, deleted
afterwards) and a real S3 server (versitygw with object lock, on 127.0.0.1, the
fixture of tests/support/s3server.py). ``exuvia capture k8s://NS -l SEL -o
s3://locked/cases/<run>/`` must lay the case out as ``exuvia push CASE_DIR``
does, ``exuvia verify s3://…/`` must verify it as a case from the store, the
server must refuse to delete a bundle's locked version, a second capture into
the same prefix must be refused before any pod is touched, and a fleet
interrupted with SIGINT must leave ``.incomplete`` bundles and a case.json
saying interrupted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forensics.bundle import verify_bundle
from tests.e2e import k8s_lab as lab
from tests.support.s3server import S3Server

pytestmark = pytest.mark.e2e
LABEL = "exuvia.test/fleets3"
BUCKET = "locked"


def _namespace(cluster: Any, run: str, suffix: str) -> str:
    return str(cluster.namespace("fleets3", enforce="baseline", name=f"fleets3-{run}-{suffix}"))


def _pod(name: str, run: str, image: str = lab.LAB_IMAGE) -> dict[str, Any]:
    pod = lab.lab_pod(name, image)
    pod["metadata"]["labels"] = {LABEL: run}
    pod["spec"]["containers"][0]["env"] = [{"name": "LAB_MODE", "value": "clean"}]
    return pod


def _running(cluster: Any, ns: str, run: str, count: int) -> list[Any]:
    def probe() -> list[Any] | None:
        pods = cluster.core.list_namespaced_pod(ns, label_selector=f"{LABEL}={run}").items
        up = [
            p
            for p in pods
            if p.status.phase == "Running"
            and p.status.container_statuses
            and all(s.state.running is not None for s in p.status.container_statuses)
        ]
        return up if len(up) >= count else None

    return list(cluster.wait(probe, 240, f"{count} running pods in {ns}"))


def _argv(s3: S3Server, kubeconfig: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui.cli", *args, "--endpoint-url", s3.endpoint,
            "--image", lab.COLLECTOR_IMAGE, "--image-pull-policy", "Never",
            "--kubeconfig", kubeconfig]  # fmt: skip


def _env(s3: S3Server, scratch: Path | None = None) -> dict[str, str]:
    env = {**os.environ, **s3.env(), "PYTHONPATH": str(lab.REPO)}
    if scratch is not None:  # the agents' spools and a fleet's case journal go there
        env["TMPDIR"] = str(scratch)
        env["EXUVIA_FALLBACK_DIR"] = str(scratch)
    return env


def _keys(s3: S3Server, prefix: str) -> list[str]:
    page = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for o in page.get("Contents", []))


def _verify(s3: S3Server, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "verify", url, "--endpoint-url", s3.endpoint],
        capture_output=True, text=True, env=_env(s3), cwd=lab.REPO, timeout=600, check=False,
    )  # fmt: skip


def _case_json(s3: S3Server, prefix: str) -> dict[str, Any]:
    body = s3.client().get_object(Bucket=BUCKET, Key=prefix + "case.json")["Body"].read()
    return dict(json.loads(body))


def test_three_pods_by_label_into_a_locked_bucket_verify_from_the_store(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "web")
    for i in range(3):
        cluster.create_pod(ns, _pod(f"web-{i}", run))
    _running(cluster, ns, run, 3)
    prefix = f"cases/{run}/"
    url = f"s3://{BUCKET}/{prefix}"
    res = subprocess.run(
        _argv(s3, kubeconfig_path, "capture", f"k8s://{ns}", "-l", f"{LABEL}={run}", "-o", url,
              "--retain", "1d", "--lock-mode", "governance", "--output", "json"),
        capture_output=True, text=True, env=_env(s3, tmp_path), cwd=lab.REPO, timeout=900,
        check=False,
    )  # fmt: skip
    print(res.stdout, res.stderr)
    assert res.returncode == 0, res.stderr
    journal = tmp_path / f"exuvia-journal-{BUCKET}_cases_{run}"
    assert res.stderr.splitlines()[0].startswith(f"exuvia: case journal: {journal}/")
    assert list(tmp_path.iterdir()) == []  # the journal is gone once the case is stored
    out = json.loads(res.stdout)
    assert out["case"] == url and out["state"] == "complete"
    names = [f"{ns}_web-{i}_app.exv" for i in range(3)]
    expected = sorted([*names, *(n + ".custody.jsonl" for n in names), "case.json",
                       "case.custody.jsonl"])  # fmt: skip
    assert _keys(s3, prefix) == expected  # nothing .partial, nothing else
    doc = _case_json(s3, prefix)
    assert doc["state"] == "complete" and doc["case_id"] == out["case_id"]
    assert sorted(b["file"] for b in doc["bundles"]) == names
    assert all(b["status"] == "complete" for b in doc["bundles"])
    c = s3.client()
    log = c.get_object(Bucket=BUCKET, Key=prefix + "case.custody.jsonl")["Body"].read()
    noted = next(json.loads(ln) for ln in log.splitlines() if b'"store.case"' in ln)
    assert noted["details"]["url"] == url and noted["details"]["mode"] == "GOVERNANCE"
    assert c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    head = c.head_object(Bucket=BUCKET, Key=prefix + names[0])
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    by_file = {b["file"]: b for b in doc["bundles"]}
    assert head["Metadata"]["exuvia-manifest-sha256"] == by_file[names[0]]["manifest_sha256"]
    side = c.get_object(Bucket=BUCKET, Key=prefix + names[0] + ".custody.jsonl")["Body"].read()
    sealed = next(json.loads(ln) for ln in side.splitlines() if b'"bundle.sealed"' in ln)
    assert sealed["details"]["key"] == prefix + names[0]
    assert sealed["details"]["version_id"] == head["VersionId"]
    assert c.head_object(Bucket=BUCKET, Key=prefix + "case.json")["ObjectLockMode"] == "GOVERNANCE"

    ver = _verify(s3, url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0 and "Traceback" not in ver.stderr, ver.stdout + ver.stderr

    # the server refuses to delete the locked version of a bundle and of case.json
    for key in (prefix + names[1], prefix + "case.json"):
        vid = c.head_object(Bucket=BUCKET, Key=key)["VersionId"]
        with pytest.raises(ClientError):
            c.delete_object(Bucket=BUCKET, Key=key, VersionId=vid)
        assert c.head_object(Bucket=BUCKET, Key=key)["VersionId"] == vid

    # the same prefix again: refused before any pod is touched, one line
    before = {p.metadata.name: len(p.spec.ephemeral_containers or [])
              for p in cluster.core.list_namespaced_pod(ns).items}  # fmt: skip
    again = subprocess.run(
        _argv(s3, kubeconfig_path, "capture", f"k8s://{ns}", "-l", f"{LABEL}={run}", "-o", url),
        capture_output=True, text=True, env=_env(s3), cwd=lab.REPO, timeout=300, check=False,
    )  # fmt: skip
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
    errors = [ln for ln in again.stderr.splitlines() if ln.startswith("exuvia: error:")]
    assert len(errors) == 1 and "already holds" in errors[0], again.stderr
    assert _keys(s3, prefix) == expected
    # (every pod already has its agent from the first run; none was added or patched)
    after = {p.metadata.name: len(p.spec.ephemeral_containers or [])
             for p in cluster.core.list_namespaced_pod(ns).items}  # fmt: skip
    assert after == before


def test_sigint_leaves_incomplete_bundles_and_an_interrupted_case_json(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "int")
    for i in range(2):
        cluster.create_pod(ns, _pod(f"big-{i}", run, image=lab.LAB_BIG_IMAGE))
    pods = sorted(_running(cluster, ns, run, 2), key=lambda p: p.metadata.name)
    cid = pods[0].status.container_statuses[0].container_id
    for p in pods:
        lab.wait_logged(cluster, ns, p.metadata.name, "]: ready")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    prefix = f"cases/{run}/"
    url = f"s3://{BUCKET}/{prefix}"
    proc = subprocess.Popen(
        _argv(s3, kubeconfig_path, "capture", f"k8s://{ns}", "-l", f"{LABEL}={run}", "-o", url,
              "--parallel", "1", "--files", "all", "--output", "json"),
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(s3, scratch),
        cwd=lab.REPO,
    )  # fmt: skip

    def spool() -> Path | None:
        found = list(scratch.glob(f"exuvia-journal-*/{ns}_big-0_app.exv.agent-stream"))
        return found[0] if found else None

    stdout, stderr, took = lab.sigint_mid_stream(proc, spool, cid)
    print(f"exit {proc.returncode} after {took:.1f}s\n{stdout}\n{stderr}")
    assert "Traceback" not in stderr
    assert proc.returncode == 130
    first = f"{ns}_big-0_app.exv.incomplete"
    assert _keys(s3, prefix) == sorted([first, first + ".custody.jsonl", "case.json",
                                        "case.custody.jsonl"])  # fmt: skip
    doc = _case_json(s3, prefix)
    assert doc["state"] == "interrupted" and doc["interrupted"] == "SIGINT"
    b0 = next(b for b in doc["bundles"] if b["pod"] == "big-0")
    assert b0["status"] == "incomplete" and b0["file"] == first and "interrupted" in b0["reason"]
    b1 = next(b for b in doc["bundles"] if b["pod"] == "big-1")
    assert b1["status"] == "failed" and b1["reason"] == "not started: SIGINT", b1
    local = tmp_path / first
    local.write_bytes(s3.client().get_object(Bucket=BUCKET, Key=prefix + first)["Body"].read())
    report = verify_bundle(local)
    assert report.ok and not report.complete, report.failures()
    assert s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert list(scratch.iterdir()) == []  # the case journal and the spools are gone
    ver = _verify(s3, url)
    assert "Traceback" not in ver.stderr, ver.stderr
    assert "interrupted" in (ver.stdout + ver.stderr).lower(), ver.stdout


def test_bad_store_input_is_one_line_before_the_cluster_is_asked(
    s3: S3Server, kubeconfig_path: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sel = f"{LABEL}=nothing-{uuid.uuid4().hex[:6]}"  # would match no pod: the store is asked first
    cases = {
        "s3://locked/cases/no-slash": "give a prefix ending in '/'",
        "s3://plain/cases/x/": "does not have object lock enabled",
        "s3://no-such-bucket/x/": "no-such-bucket",
    }
    for url, expect in cases.items():
        res = subprocess.run(
            _argv(s3, kubeconfig_path, "capture", "k8s://default", "-l", sel, "-o", url),
            capture_output=True, text=True, env=_env(s3, scratch), cwd=lab.REPO, timeout=300,
            check=False,
        )  # fmt: skip
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("exuvia: error:")]
        assert len(errors) == 1 and expect in errors[0], res.stderr
        assert "no pods" not in errors[0]  # refused before resolution
    # a case journal already there (an earlier case cut off) is never overwritten
    old = tmp_path / "fb" / "exuvia-journal-locked_cases_fb"
    old.mkdir(parents=True)
    res = subprocess.run(
        _argv(s3, kubeconfig_path, "capture", "k8s://default", "-l", sel, "-o",
              "s3://locked/cases/fb/", "--fallback-dir", str(tmp_path / "fb")),
        capture_output=True, text=True, env=_env(s3, scratch), cwd=lab.REPO, timeout=300,
        check=False,
    )  # fmt: skip
    _one_line(res, f"{old} already exists")
    assert _keys(s3, "cases/no-slash") == [] and _keys(s3, "cases/fb/") == []
    assert list(scratch.iterdir()) == [] and list(old.iterdir()) == []  # nothing left behind


SCAN_RULE = """
rule conf_changed_at_runtime {
  strings:
    $line = /# changed at runtime by pid [0-9]+\\n/
  condition:
    $line
}
"""


def _ephemeral(cluster: Any, ns: str) -> dict[str, int]:
    return {p.metadata.name: len(p.spec.ephemeral_containers or [])
            for p in cluster.core.list_namespaced_pod(ns).items}  # fmt: skip


def _one_line(res: subprocess.CompletedProcess[str], expect: str) -> None:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("exuvia: error:")]
    assert len(errors) == 1 and expect in errors[0], res.stderr


def test_one_pod_into_a_locked_bucket_verifies_there_and_cannot_be_deleted(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "pod")
    pod = _pod("web", run)
    pod["spec"]["containers"][0]["env"] = []  # the staged incident: the scan has a match
    cluster.create_pod(ns, pod)
    _running(cluster, ns, run, 1)
    lab.wait_logged(cluster, ns, "web", "]: ready")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    prefix = f"pods/{run}/"
    url = f"s3://{BUCKET}/{prefix}web.exv"
    target = f"k8s://{ns}/web"

    # bad store input and options that cannot combine: one line, no agent added
    for out, extra, expect in (
        (f"s3://plain/{prefix}web.exv", (), "does not have object lock enabled"),
        (f"s3://{BUCKET}/{prefix}", (), "give the object's name"),
        (url, ("--fallback-dir", str(tmp_path)), "--fallback-dir is for a local target"),
    ):
        res = subprocess.run(
            _argv(s3, kubeconfig_path, "capture", target, "-o", out, *extra),
            capture_output=True, text=True, env=_env(s3, scratch), cwd=lab.REPO, timeout=300,
            check=False,
        )  # fmt: skip
        _one_line(res, expect)
    assert _ephemeral(cluster, ns) == {"web": 0}
    assert list(scratch.iterdir()) == [] and _keys(s3, prefix) == []

    rules = tmp_path / "rules.yar"
    rules.write_text(SCAN_RULE)
    res = subprocess.run(
        _argv(s3, kubeconfig_path, "capture", target, "-o", url, "--retain", "1d",
              "--scan", str(rules), "--output", "json"),
        capture_output=True, text=True, env=_env(s3, scratch), cwd=tmp_path, timeout=900,
        check=False,
    )  # fmt: skip
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    out = json.loads(res.stdout)
    assert out["format"] == "exuvia-capture-result" and out["bundle"] == url and out["complete"]
    assert out["retention"]["mode"] == "GOVERNANCE" and out["retention"]["retain_until"]
    assert out["custody_log"] == url + ".custody.jsonl" and out["exit_status"] == 0
    # the scan read the sealed object back from the store: its results lie beside it
    scan = out["scan"]
    assert scan["matches"] >= 1 and scan["scan_complete"], scan
    assert scan["rules_matched"] == ["rules.yar:conf_changed_at_runtime"], scan
    assert scan["results_file"] == url + ".yara.json"
    assert _keys(s3, prefix) == ["web.exv", "web.exv.custody.jsonl", "web.exv.yara.json"]
    assert list(scratch.iterdir()) == []  # the agent's spool is gone; no local bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.yar", "scratch"]
    c = s3.client()
    assert c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    key = prefix + "web.exv"
    head = c.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["VersionId"] == out["version_id"]
    assert head["Metadata"]["exuvia-manifest-sha256"] == out["manifest_sha256"]
    side = c.get_object(Bucket=BUCKET, Key=key + ".custody.jsonl")["Body"].read()
    log = [json.loads(ln) for ln in side.splitlines()]
    sealed = next(e["details"] for e in log if e["action"] == "bundle.sealed")
    assert (sealed["bucket"], sealed["key"]) == (BUCKET, key)
    assert sealed["version_id"] == head["VersionId"]
    assert sealed["mode"] == "GOVERNANCE" and sealed["retain_until"] and sealed["complete"]
    actions = [e["action"] for e in log]
    # the store was asked (the upload created) before the pod got its agent
    assert actions.index("store.upload.started") < actions.index("agent.running")
    assert "store.partial.removed" in actions and "capture.started" in actions
    results = json.loads(c.get_object(Bucket=BUCKET, Key=key + ".yara.json")["Body"].read())
    assert results["manifest_sha256"] == out["manifest_sha256"] and results["matches"]

    ver = _verify(s3, url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0 and "Traceback" not in ver.stderr, ver.stdout + ver.stderr
    assert f"OK: {url}" in ver.stdout
    with pytest.raises(ClientError):  # the server refuses to delete the locked version
        c.delete_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])
    assert c.head_object(Bucket=BUCKET, Key=key)["VersionId"] == head["VersionId"]

    # the same key again: refused before the pod is touched (no second agent)
    before = _ephemeral(cluster, ns)
    again = subprocess.run(
        _argv(s3, kubeconfig_path, "capture", target, "-o", url),
        capture_output=True, text=True, env=_env(s3, scratch), cwd=lab.REPO, timeout=300,
        check=False,
    )  # fmt: skip
    _one_line(again, "already exists; refusing to overwrite evidence")
    assert _ephemeral(cluster, ns) == before


def test_sigint_of_one_pod_into_the_store_leaves_an_incomplete_that_verifies(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "podint")
    cluster.create_pod(ns, _pod("big", run, image=lab.LAB_BIG_IMAGE))
    (p,) = _running(cluster, ns, run, 1)
    cid = p.status.container_statuses[0].container_id
    lab.wait_logged(cluster, ns, "big", "]: ready")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    prefix = f"pods/{run}/"
    url = f"s3://{BUCKET}/{prefix}big.exv"
    proc = subprocess.Popen(
        _argv(s3, kubeconfig_path, "capture", f"k8s://{ns}/big", "-o", url, "--files", "all",
              "--retain", "1d", "--output", "json"),
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(s3, scratch),
        cwd=lab.REPO,
    )  # fmt: skip

    def spool() -> Path | None:
        found = list(scratch.glob("exuvia-pod-*/big.exv.agent-stream"))
        return found[0] if found else None

    stdout, stderr, took = lab.sigint_mid_stream(proc, spool, cid)
    print(f"exit {proc.returncode} after {took:.1f}s\n{stdout}\n{stderr}")
    assert "Traceback" not in stderr
    assert proc.returncode == 3  # incomplete, as a local interrupted capture
    out = json.loads(stdout)
    assert out["bundle"] == url + ".incomplete" and not out["complete"]
    assert "interrupted (SIGINT)" in out["incomplete_reason"], out
    assert out["exit_status"] == 3 and out["retention"]["mode"] == "GOVERNANCE"
    assert _keys(s3, prefix) == ["big.exv.incomplete", "big.exv.incomplete.custody.jsonl"]
    c = s3.client()
    assert c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    head = c.head_object(Bucket=BUCKET, Key=prefix + "big.exv.incomplete")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["VersionId"] == out["version_id"]
    assert list(scratch.iterdir()) == []  # the spool is gone once sealed
    local = tmp_path / "big.exv.incomplete"
    local.write_bytes(c.get_object(Bucket=BUCKET, Key=prefix + "big.exv.incomplete")["Body"]
                      .read())  # fmt: skip
    report = verify_bundle(local)
    assert report.ok and not report.complete, report.failures()
    ver = _verify(s3, url + ".incomplete")
    print(ver.stdout, ver.stderr)
    # it verifies for what it holds (exit 0), and says it is an interrupted capture
    assert ver.returncode == 0 and "Traceback" not in ver.stderr, ver.stdout + ver.stderr
    assert "INCOMPLETE capture" in ver.stdout and "interrupted (SIGINT)" in ver.stdout


def test_a_fleet_scanned_from_the_store_and_verified_there_as_a_case(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    """``--scan`` of a fleet into the store: each sealed bundle read back from its
    object as a stream, its results put beside it; only the staged pod matches."""
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "scan")
    staged = _pod("staged", run)
    staged["spec"]["containers"][0]["env"] = []
    cluster.create_pod(ns, staged)
    cluster.create_pod(ns, _pod("clean", run))
    _running(cluster, ns, run, 2)
    for name in ("staged", "clean"):
        lab.wait_logged(cluster, ns, name, "]: ready")
    rules = tmp_path / "rules.yar"
    rules.write_text(SCAN_RULE)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    prefix = f"cases/{run}/"
    url = f"s3://{BUCKET}/{prefix}"
    res = subprocess.run(
        _argv(s3, kubeconfig_path, "capture", f"k8s://{ns}", "-l", f"{LABEL}={run}", "-o", url,
              "--retain", "1d", "--scan", str(rules), "--output", "json"),
        capture_output=True, text=True, env=_env(s3, scratch), cwd=lab.REPO, timeout=900,
        check=False,
    )  # fmt: skip
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    out = json.loads(res.stdout)
    names = {p: f"{ns}_{p}_app.exv" for p in ("staged", "clean")}
    assert _keys(s3, prefix) == sorted([
        *names.values(), *(n + ".custody.jsonl" for n in names.values()),
        *(n + ".yara.json" for n in names.values()), "case.json", "case.custody.jsonl",
    ])  # fmt: skip
    scans = {b["pod"]: b["scan"] for b in out["bundles"]}
    assert scans["staged"]["rules_matched"] == ["rules.yar:conf_changed_at_runtime"], scans
    assert scans["clean"]["matches"] == 0 and scans["clean"]["scan_complete"], scans
    assert scans["staged"]["results_file"] == url + names["staged"] + ".yara.json"
    c = s3.client()
    head = c.head_object(Bucket=BUCKET, Key=prefix + names["staged"] + ".yara.json")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    log = c.get_object(Bucket=BUCKET, Key=prefix + "case.custody.jsonl")["Body"].read()
    assert log.count(b'"bundle.scanned"') == 2
    assert list(scratch.iterdir()) == []  # no local copy of any bundle is left
    ver = _verify(s3, url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0 and "Traceback" not in ver.stderr, ver.stdout + ver.stderr
