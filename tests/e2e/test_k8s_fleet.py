"""End to end: one command captures a fleet of 20 real pods across namespaces into a case.

Four namespaces (all named ``fleet-<run>-…``, deleted afterwards), every pod
labelled ``exuvia.test/fleet=<run>`` so that nothing of anyone else's is selected:

- ``web`` (PodSecurity baseline): a Deployment of 5 clean lab replicas
  (LAB_MODE=clean) whose rollout to a staged template stalls after one new
  replica (the new template's readiness never passes, maxUnavailable 0): that
  replica, owned by the same Deployment through its second ReplicaSet, carries
  the demo's incident (a binary dropped in /tmp, run and deleted; config
  changed; a listener added); plus 2 bare pods;
- ``api`` (restricted): a Deployment of 6 restricted replicas;
- ``misc`` (baseline): 4 bare pods and one with a 64 MiB blob, deleted while
  its bundle streams (its agent held with SIGSTOP so the deletion lands
  mid-stream, as in test_k8s_faults.py); a pod created after resolution;
- ``locked``: one pod started while the namespace enforced nothing, then the
  namespace labelled ``enforce=restricted``: PodSecurity forbids its agent.

`exuvia capture k8s:// -A -l exuvia.test/fleet=<run> -o CASE --sign KEY` must
record the deleted pod and the forbidden one with their reasons, complete the
18 others, see the late pod as seen-not-captured, seal a case that `exuvia
verify CASE --key` accepts, and every bundle must verify on its own. A second
test interrupts a fleet with SIGINT: in-flight bundles are sealed
``.incomplete`` and the case says interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from textual.widgets import DataTable

from forensics.bundle import verify_bundle
from forensics.bundle.format import record_collector
from forensics.bundle.reader import BundleReader
from forensics.case import load_case
from forensics.signing import generate
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_incluster import API_HOST, API_PORT, CLIENT_IMAGE, build_client_image
from tests.e2e.test_k8s_rbac import Rbac
from tui.commands.triage_cmd import _open_fleet
from tui.triage.app import make_app
from tui.triage.screens.fleet import FleetScreen
from tui.triage.session import SessionOptions

pytestmark = pytest.mark.e2e
LABEL = "exuvia.test/fleet"


@pytest.fixture
def apps(k8s_api_client: Any) -> Any:
    return client.AppsV1Api(k8s_api_client)


def _namespace(cluster: Any, run: str, suffix: str, enforce: str | None) -> str:
    return str(cluster.namespace("fleet", enforce=enforce, name=f"fleet-{run}-{suffix}"))


def _pod(name: str, run: str, *, image: str = lab.LAB_IMAGE, restricted: bool = False,
         clean: bool = True) -> dict[str, Any]:  # fmt: skip
    pod = lab.lab_pod(name, image, restricted=restricted)
    pod["metadata"]["labels"] = {LABEL: run, "app": name.rsplit("-", 1)[0]}
    if clean:
        pod["spec"]["containers"][0]["env"] = [{"name": "LAB_MODE", "value": "clean"}]
    return pod


def _deployment(name: str, run: str, replicas: int, *, restricted: bool) -> dict[str, Any]:
    tpl = _pod(name, run, restricted=restricted)
    labels = {LABEL: run, "app": name}
    tpl = {"metadata": {"labels": labels}, "spec": tpl["spec"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": tpl,
        },
    }  # fmt: skip


def _running(cluster: Any, ns: str, selector: str, count: int, timeout: float = 240) -> list[Any]:
    """``count`` pods of the selector with every container running (ready or not)."""

    def probe() -> list[Any] | None:
        pods = cluster.core.list_namespaced_pod(ns, label_selector=selector).items
        up = [p for p in pods if p.metadata.deletion_timestamp is None and _all_running(p)]
        return up if len(up) >= count else None

    return list(cluster.wait(probe, timeout, f"{count} running pods in {ns} ({selector})"))


def _all_running(pod: Any) -> bool:
    statuses = pod.status.container_statuses or []
    return (
        pod.status.phase == "Running"
        and bool(statuses)
        and all(st.state is not None and st.state.running is not None for st in statuses)
    )


def _case_doc(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((path / "case.json").read_text()))
    except (OSError, ValueError):
        return None


def _start_fleet(case: Path, kubeconfig: str, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tui.cli", "capture", *extra, "-o", str(case),
            "--image", lab.COLLECTOR_IMAGE, "--image-pull-policy", "Never", "--files", "all",
            "--kubeconfig", kubeconfig, "--output", "json"]  # fmt: skip
    return subprocess.Popen(argv, cwd=lab.REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def _processes(bundle: Path) -> list[dict[str, Any]]:
    """The process records, whether in one member (1.x) or in chunks (2.0)."""
    found = BundleReader(bundle).read_members(lambda n: record_collector(n) == "processes")
    return [r for name in sorted(found) for r in lab.jsonl(found[name])
            if r.get("kind") == "process"]  # fmt: skip


def _bundle(doc: dict[str, Any], ns: str, pod: str) -> dict[str, Any]:
    return next(b for b in doc["bundles"] if b["namespace"] == ns and b["pod"] == pod)


def _delete_mid_stream(cluster: Any, case: Path, ns: str, pod: str, cid: str) -> None:
    """Once the pod's agent stream is flowing: hold the agent, delete the pod."""
    spool = case / f"{ns}_{pod}_app.exv.agent-stream"
    lab.wait_for(lambda: spool.exists() and spool.stat().st_size > (1 << 20), 300,
                 f"the stream of {pod}", 0.05)  # fmt: skip
    pids = lab.agent_pids(cid)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGSTOP)
    cluster.core.delete_namespaced_pod(pod, ns, grace_period_seconds=0)


def test_one_command_captures_twenty_pods_with_faults_recorded(
    cluster: Any, apps: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    sel = f"{LABEL}={run}"
    web = _namespace(cluster, run, "web", "baseline")
    api = _namespace(cluster, run, "api", "restricted")
    misc = _namespace(cluster, run, "misc", "baseline")
    locked = _namespace(cluster, run, "locked", None)

    apps.create_namespaced_deployment(web, _deployment("web", run, 5, restricted=False))
    apps.create_namespaced_deployment(api, _deployment("api", run, 6, restricted=True))
    for i in range(2):
        cluster.create_pod(web, _pod(f"solo-{i}", run))
    for i in range(4):
        cluster.create_pod(misc, _pod(f"misc-{i}", run))
    cluster.create_pod(misc, _pod("victim", run, image=lab.LAB_BIG_IMAGE))
    cluster.create_pod(locked, _pod("held", run))
    _running(cluster, web, "app=web", 5)
    # the staged template: the incident, a readiness that never passes (an exec probe
    # of a program the image lacks; a TCP probe of a closed port passed here) -> the
    # rollout stops after one new replica, which the Deployment owns like the rest
    stage = {"spec": {"template": {"spec": {"containers": [{
        "name": "app", "env": [{"name": "LAB_MODE", "value": "incident"}],
        "readinessProbe": {"exec": {"command": ["/never-ready"]}, "periodSeconds": 5},
    }]}}}}  # fmt: skip
    apps.patch_namespaced_deployment("web", web, stage)
    pods = _running(cluster, web, "app=web", 6)
    staged = next(
        p.metadata.name for p in pods
        if any(e.value == "incident" for e in p.spec.containers[0].env or [])
    )  # fmt: skip
    for ns, n in ((api, 6), (misc, 5), (locked, 1)):
        _running(cluster, ns, sel, n)
    lab.wait_logged(cluster, web, staged, "]: ready")
    victim = cluster.read_pod(misc, "victim")
    cid = victim.status.container_statuses[0].container_id
    lab.wait_logged(cluster, misc, "victim", "]: ready")
    # existing pods stay; an agent added now must pass "restricted", and a root
    # target's matching agent cannot
    cluster.core.patch_namespace(locked, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}})  # fmt: skip

    generate(tmp_path / "key")
    case = tmp_path / "case"
    proc = _start_fleet(case, kubeconfig_path, "k8s://", "-A", "-l", sel,
                        "--sign", str(tmp_path / "key"), "--case", f"IR-{run}")  # fmt: skip
    try:
        lab.wait_for(lambda: (_case_doc(case) or {}).get("resolution"), 120, "the resolution", 0.1)
        cluster.create_pod(misc, _pod("late", run))  # after resolution: seen, not captured
        _delete_mid_stream(cluster, case, misc, "victim", cid)
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"exit {proc.returncode}\nstdout: {stdout}\nstderr: {stderr}")
    assert "Traceback" not in stderr
    summary = json.loads(stdout)
    assert summary["format"] == "exuvia-case-capture-result"
    assert proc.returncode == 3 == summary["exit_status"]  # some incomplete or failed
    assert summary["state"] == "partial"

    doc = _case_doc(case)
    assert doc is not None
    assert doc["request"]["all_namespaces"] is True and doc["request"]["selector"] == sel
    resolved = doc["resolution"]["pods"]
    assert len(resolved) == 20 and len({p["namespace"] for p in resolved}) == 4
    by_name = {(p["namespace"], p["name"]): p for p in resolved}
    owners = by_name[(web, staged)]["owners"]
    assert [o["kind"] for o in owners] == ["ReplicaSet", "Deployment"]
    assert owners[1]["name"] == "web" and all(p["uid"] and p["node"] for p in resolved)
    assert all(p["resource_version"] and p["phase"] == "Running" for p in resolved)

    deleted = _bundle(doc, misc, "victim")
    assert deleted["status"] in ("incomplete", "failed") and deleted["reason"], deleted
    forbidden = _bundle(doc, locked, "held")
    assert forbidden["status"] == "failed" and "PodSecurity" in forbidden["reason"], forbidden
    others = [b for b in doc["bundles"] if b not in (deleted, forbidden)]
    assert len(others) == 18 and all(b["status"] == "complete" for b in others), [
        (b["pod"], b["status"], b["reason"]) for b in others if b["status"] != "complete"
    ]
    assert [s["name"] for s in doc["seen_not_captured"]] == ["late"]
    assert doc["summary"]["complete"] == 18 and doc["signature"]["key_fingerprint"]

    res = lab.cli("verify", str(case), "--key", str(tmp_path / "key.pub"), kubeconfig="")
    assert res.returncode == 0, res.stdout + res.stderr
    for b in doc["bundles"]:
        if b["file"]:
            report = verify_bundle(case / b["file"])
            assert report.ok, (b["file"], report.failures())
            assert report.manifest["case"] == f"IR-{run}"
    loaded = load_case(case)
    groups = loaded.siblings()
    assert len(groups["Deployment/web:app"]) == 6 and len(groups["Deployment/api:app"]) == 6
    # the sibling comparison, through the real command line: the staged replica first
    r = lab.cli("case", "diff", str(case), "--output", "json", kubeconfig="")
    assert r.returncode == 0, r.stdout + r.stderr
    web_group = next(
        g for g in json.loads(r.stdout)["groups"] if g["group"] == "Deployment/web:app"
    )
    ranking = web_group["ranking"]
    assert ranking[0]["bundle"] == f"{web}/{staged}/app", ranking
    assert ranking[0]["score"] > 0 and all(x["score"] < ranking[0]["score"] for x in ranking[1:])
    assert len(ranking) == 6 and not web_group["not_compared"]
    # and the evidence behind it is there: the implant's deleted executable
    staged_bundle = case / _bundle(doc, web, staged)["file"]
    procs = _processes(staged_bundle)
    assert any(p.get("exe_deleted") for p in procs), "the staged replica's implant"
    clean_bundle = next(case / b["file"] for b in others if b["namespace"] == web and
                        b["pod"] != staged and b["pod"].startswith("web-"))  # fmt: skip
    procs = _processes(clean_bundle)
    assert procs and not any(p.get("exe_deleted") for p in procs)


def test_sigint_seals_in_flight_bundles_incomplete_and_the_case_interrupted(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "int", "baseline")
    for i in range(3):
        cluster.create_pod(ns, _pod(f"big-{i}", run, image=lab.LAB_BIG_IMAGE))
    pods = _running(cluster, ns, f"{LABEL}={run}", 3)
    cids = [p.status.container_statuses[0].container_id for p in pods]
    for p in pods:
        lab.wait_logged(cluster, ns, p.metadata.name, "]: ready")
    case = tmp_path / "case"
    # one at a time: the first streams while the others wait, never started
    proc = _start_fleet(case, kubeconfig_path, f"k8s://{ns}", "-l", f"{LABEL}={run}",
                        "--parallel", "1")  # fmt: skip
    spool = case / f"{ns}_big-0_app.exv.agent-stream"
    stdout, stderr, took = lab.sigint_mid_stream(
        proc, lambda: spool if spool.exists() else None, cids[0]
    )
    print(f"exit {proc.returncode} after {took:.1f}s\n{stdout}\n{stderr}")
    assert "Traceback" not in stderr
    assert proc.returncode == 130
    doc = _case_doc(case)
    assert doc is not None and doc["state"] == "interrupted" and doc["interrupted"] == "SIGINT"
    first = _bundle(doc, ns, "big-0")
    assert first["status"] == "incomplete" and "interrupted" in first["reason"], first
    assert first["file"] == f"{ns}_big-0_app.exv.incomplete"
    report = verify_bundle(case / first["file"])
    assert report.ok and not report.complete, report.failures()
    for name in ("big-1", "big-2"):
        b = _bundle(doc, ns, name)
        assert b["status"] == "failed" and b["reason"] == "not started: SIGINT", b
    assert not list(case.glob("*.partial")) and not list(case.glob("*.agent-stream"))
    res = lab.cli("verify", str(case), kubeconfig="")
    assert "Traceback" not in res.stderr, res.stderr
    assert "interrupted" in (res.stdout + res.stderr).lower(), res.stdout


def test_a_workload_resolves_through_its_owners_and_bad_input_is_one_line(
    cluster: Any, apps: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "wl", "baseline")
    dep = _deployment("web", run, 2, restricted=False)
    side = {**dep["spec"]["template"]["spec"]["containers"][0], "name": "side"}
    side["env"] = [*side["env"], {"name": "APP_PORT", "value": "8081"}]
    dep["spec"]["template"]["spec"]["containers"].append(side)  # --all-containers: both
    apps.create_namespaced_deployment(ns, dep)
    stray = _pod("stray", run)
    stray["metadata"]["labels"] = {LABEL: run, "app": "web"}  # the Deployment's labels
    cluster.create_pod(ns, stray)
    _running(cluster, ns, f"{LABEL}={run}", 3)
    case = tmp_path / "case"

    def cli(target: str, *extra: str, out: Path = case) -> subprocess.CompletedProcess[str]:
        return lab.cli(*lab.capture_argv(target, out, *extra), kubeconfig=kubeconfig_path)

    for target, extra, expected in [
        (f"k8s://{ns}/replicaset/web", (), "unknown workload kind 'replicaset'"),
        (f"k8s://{ns}", ("-l", "app=nothing"),
         f"no pods in namespace {ns} match selector 'app=nothing'"),
        (f"k8s://{ns}", ("-l", f"{LABEL}={run}", "--max-pods", "2"),
         "matches 3 pods, more than --max-pods 2"),
        (f"k8s://{ns}/deployment/absent", (), "not found"),
    ]:  # fmt: skip
        r = cli(target, *extra)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and expected in lines[0], r.stderr
        assert not case.exists(), "bad input left a case directory behind"

    r = cli(f"k8s://{ns}/deployment/web", "--all-containers", "--output", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["state"] == "complete"
    doc = _case_doc(case)
    assert doc is not None
    res = doc["resolution"]
    assert res["workload"]["kind"] == "Deployment" and res["workload"]["uid"]
    assert res["workload"]["selector"] == f"app=web,{LABEL}={run}"
    assert [e["name"] for e in res["excluded"]] == ["stray"]
    assert len(res["pods"]) == 2 and all(
        [o["kind"] for o in p["owners"]] == ["ReplicaSet", "Deployment"]
        and p["owners"][1]["uid"] == res["workload"]["uid"]
        for p in res["pods"]
    )
    assert [b["status"] for b in doc["bundles"]] == ["complete"] * 4
    assert sorted(b["container"] for b in doc["bundles"]) == ["app", "app", "side", "side"]
    assert doc["request"]["containers"] == {"mode": "all", "name": None}
    assert lab.cli("verify", str(case), kubeconfig="").returncode == 0


def test_a_fleet_captured_by_a_job_inside_the_cluster_with_the_documented_rights(
    cluster: Any, apps: Any, k8s_api_client: Any, k8s_images: str, tmp_path: Path
) -> None:
    """docs/kubernetes.md's Job: the client in the cluster, in-cluster configuration,
    a ServiceAccount bound to exactly docs/rbac.yaml's roles, the case on a hostPath."""
    build_client_image()
    run = uuid.uuid4().hex[:6]
    target = _namespace(cluster, run, "jt", "baseline")
    ops = _namespace(cluster, run, "ops", "privileged")
    apps.create_namespaced_deployment(target, _deployment("web", run, 3, restricted=False))
    _running(cluster, target, f"{LABEL}={run}", 3)
    rbac = Rbac(k8s_api_client, run)
    out = Path(tempfile.mkdtemp(prefix="exuvia-fleet-job-", dir="/var/tmp"))
    try:
        cluster.core.create_namespaced_service_account(ops, {"metadata": {"name": "capturer"}})
        roles = rbac.roles()
        rbac.bind(roles["exuvia-capture"], target, "capturer", ops)
        rbac.bind(roles["exuvia-capture-nodes"], None, "capturer", ops)
        argv = ["python3", "-m", "tui.cli", "capture", f"k8s://{target}/deployment/web",
                "-o", "/case/IR-job", "--case", "IR-job", "--image", lab.COLLECTOR_IMAGE,
                "--image-pull-policy", "Never", "--output", "json"]  # fmt: skip
        job = {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "exuvia-ir"},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "serviceAccountName": "capturer", "restartPolicy": "Never",
                "hostNetwork": True,  # no kube-proxy here: see test_k8s_incluster.py
                "terminationGracePeriodSeconds": 2,
                "containers": [{
                    "name": "capture", "image": CLIENT_IMAGE, "imagePullPolicy": "Never",
                    "command": argv,
                    "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": API_HOST},
                            {"name": "KUBERNETES_SERVICE_PORT", "value": API_PORT}],
                    "volumeMounts": [{"name": "case", "mountPath": "/case"}]}],
                "volumes": [{"name": "case",
                             "hostPath": {"path": str(out), "type": "Directory"}}],
            }}},
        }  # fmt: skip
        batch = client.BatchV1Api(k8s_api_client)
        batch.create_namespaced_job(ops, job)

        def finished() -> Any:
            st = batch.read_namespaced_job("exuvia-ir", ops).status
            return st if (st.succeeded or st.failed) else None

        st = cluster.wait(finished, 300, "the capture Job to finish")
        (pod,) = cluster.core.list_namespaced_pod(ops, label_selector="job-name=exuvia-ir").items
        log = cluster.logs(ops, pod.metadata.name, "capture")
        assert st.succeeded == 1, log
        assert "total: 3/3 done" in log, log  # progress lines reach the Job's log
        summary = json.loads(log[log.index("{") :])
        assert summary["state"] == "complete" and summary["exit_status"] == 0
        case = out / "IR-job"
        doc = _case_doc(case)
        assert doc is not None
        assert doc["cluster"]["source"] == "in-cluster service account", doc["cluster"]
        assert len(doc["resolution"]["pods"]) == 3 and doc["summary"]["complete"] == 3
        res = lab.cli("verify", str(case), kubeconfig="")
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        rbac.cleanup()
        shutil.rmtree(out, ignore_errors=True)


@pytest.mark.asyncio
async def test_triage_lists_the_selected_pods_and_captures_them_all_on_one_key(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    """`exuvia triage k8s://NS -l SELECTOR`: the pods listed, `c` captures them into a case."""
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run, "tri", "baseline")
    for i in range(3):
        cluster.create_pod(ns, _pod(f"t-{i}", run))
    _running(cluster, ns, f"{LABEL}={run}", 3)
    args = argparse.Namespace(target=f"k8s://{ns}", selector=f"{LABEL}={run}",
                              all_namespaces=False, kubeconfig=kubeconfig_path,
                              context=None)  # fmt: skip
    fleet = _open_fleet(args)
    opts = SessionOptions(output_dir=tmp_path, examiner="tester", kubeconfig=kubeconfig_path,
                          k8s_image=lab.COLLECTOR_IMAGE, case=f"IR-tri-{run}")  # fmt: skip
    app = make_app(None, options=opts, fleet=fleet)
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, FleetScreen)
            table = screen.query_one("#fleet-table", DataTable)
            assert table.row_count == 3
            assert [table.get_row_at(i)[1].plain for i in range(3)] == ["t-0", "t-1", "t-2"]
            await pilot.press("c")
            deadline = time.monotonic() + 300
            while screen.result is None:
                assert time.monotonic() < deadline, "the fleet capture did not end"
                await pilot.pause(0.2)
            states = {table.get_row_at(i)[-1].plain for i in range(3)}
    finally:
        fleet[2].close()
    res = screen.result
    assert res.state == "complete" and states == {"complete"}, (res.state, states)
    case = tmp_path / f"IR-tri-{run}"
    assert res.directory == case
    r = lab.cli("verify", str(case), kubeconfig="")
    assert r.returncode == 0, r.stdout + r.stderr
