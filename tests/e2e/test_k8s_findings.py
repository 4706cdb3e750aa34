"""End to end: findings of a real pod, captured through the kubectl plugin.

The lab target (tui/demo/target.c) runs in a pod whose service-account token
kubelet mounts (a real projected token); `kubectl exuvia capture` (the real
kubectl running the `kubectl-exuvia` entry point) captures it through the
ephemeral agent; `exuvia findings` then names the implant reading the token,
the memfd and deleted executables, the LD_PRELOAD, the late listener and the
attack tooling in the log, and nothing about the capture's own agent. The same
target run clean (LAB_MODE=clean) gives no finding at all.

The lab image is built here under a tag of its own, so this test neither uses
nor replaces the image other e2e tests share.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import k8s_lab as lab
from tui.demo.lab import oci_archive
from tui.demo.rootfs import TARGET_SOURCE, build_demo_rootfs

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
IMAGE = (
    "localhost/exuvia/lab-findings:" + hashlib.sha256(TARGET_SOURCE.read_bytes()).hexdigest()[:12]
)
INCIDENT = {
    "secrets.sa-token", "exe.memfd", "exe.deleted", "exe.writable-dir", "env.preload",
    "cmdline.kernel-thread-name", "logs.attack-tooling", "net.late-listener",
}  # fmt: skip


@functools.cache
def _images() -> str:
    lab.build_collector_image()
    work = lab.WORKDIR / "findings"
    rootfs = build_demo_rootfs(work)
    lab.ctr("images", "import", oci_archive(rootfs, work / "lab.tar", IMAGE).path)
    return IMAGE


def _kubectl_capture(uri: str, out: Path, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "KUBECONFIG": kubeconfig}
    argv = ["kubectl", "exuvia", *lab.capture_argv(uri, out), "--kubeconfig", kubeconfig]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                          check=False)  # fmt: skip


def _findings(bundle: Path) -> dict[str, Any]:
    r = lab.cli("findings", str(bundle), "--output", "json", kubeconfig="")
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _start(cluster: Any, ns: str, *, token: bool, env: list[dict[str, str]] | None = None) -> None:
    pod = lab.lab_pod("lab", _images())
    pod["spec"]["automountServiceAccountToken"] = token
    if env:
        pod["spec"]["containers"][0]["env"] = env
    cluster.create_pod(ns, pod)
    cluster.wait_pod_running(ns, "lab")
    lab.wait_logged(cluster, ns, "lab", "]: ready")


def test_findings_of_a_real_pod_through_the_kubectl_plugin(
    cluster: Any, kubeconfig_path: str, tmp_path: Path
) -> None:
    ns = cluster.namespace("find", enforce="baseline")
    _start(cluster, ns, token=True)
    out = tmp_path / "pod.exv"
    r = _kubectl_capture(f"k8s://{ns}/lab", out, kubeconfig_path)
    assert r.returncode == 0, r.stderr + r.stdout
    assert f"bundle:          {out} (complete)" in r.stdout
    lab.check_verify(out)
    doc = _findings(out)
    rules = {f["rule"] for f in doc["findings"]}
    assert rules >= INCIDENT, sorted(rules)
    token = next(f for f in doc["findings"] if f["rule"] == "secrets.sa-token")
    # kubelet's projected volume: the fd names the timestamped directory behind ..data
    (path,) = token["attrs"]["paths"]
    assert path.startswith("/var/run/secrets/kubernetes.io/serviceaccount/") and path.endswith(
        "/token"
    )
    manifest = lab.check_verify(out)
    agent = set(manifest["target"]["runtime_facts"]["agent"]["container_processes"])
    for f in doc["findings"]:
        named = {e["key"] for e in f["evidence"] if e["pivot"] in ("process", "socket")}
        assert not named & agent, f"a finding names the capture's own agent: {f['title']}"
    # no overlay upper layer through an ephemeral container: said, not guessed
    assert any("no overlay upper layer" in b for b in doc["blind_spots"])


def test_a_clean_pod_has_no_findings(cluster: Any, kubeconfig_path: str, tmp_path: Path) -> None:
    ns = cluster.namespace("clean", enforce="baseline")
    _start(cluster, ns, token=False, env=[{"name": "LAB_MODE", "value": "clean"}])
    out = tmp_path / "clean.exv"
    r = lab.cli(*lab.capture_argv(f"k8s://{ns}/lab", out), kubeconfig=kubeconfig_path)
    assert r.returncode == 0, r.stderr + r.stdout
    doc = _findings(out)
    assert doc["findings"] == [], [f["title"] for f in doc["findings"]]
