"""End to end: `exuvia capture k8s://…` run *inside* a pod, with in-cluster configuration.

The client runs in a pod of the cluster under a ServiceAccount bound to exactly the
roles of docs/rbac.yaml, with no kubeconfig: collectors/k8s/client.py must find
the service account's token, CA and namespace itself (in-cluster configuration).

The e2e cluster has no kube-proxy, so the ``kubernetes`` Service's VIP routes
nowhere. The client pod therefore uses the node's network (``hostNetwork``) and
KUBERNETES_SERVICE_HOST/PORT name the API server's real address (127.0.0.1:6443,
where it listens on the node) — exactly the two variables in-cluster configuration
reads; the token, CA and namespace still come from the projected service account
volume. The image is the collector image plus the command line and the kubernetes
client (images/collector/build-local --with-client), from this source tree. The
bundle is written to a hostPath directory and checked here with `exuvia verify`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_rbac import Rbac

pytestmark = pytest.mark.e2e
CLIENT_IMAGE = os.environ.get("EXUVIA_E2E_CLIENT_IMAGE", "localhost/exuvia/client:test")
API_HOST, API_PORT = "127.0.0.1", "6443"


@functools.cache
def build_client_image() -> str:
    out = subprocess.run(
        [sys.executable, str(lab.REPO / "images/collector/build-local"), "--with-client",
         "--ref", CLIENT_IMAGE, "--containerd-address", lab.containerd_socket()],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.fixture(scope="session")
def k8s_images(k8s_api_client: Any) -> str:
    built = lab.ensure_images(lab.WORKDIR)
    return built + "\n" + build_client_image()


@pytest.fixture
def rbac(k8s_api_client: Any) -> Iterator[Rbac]:
    r = Rbac(k8s_api_client, uuid.uuid4().hex[:6])
    yield r
    r.cleanup()


@pytest.fixture
def host_out() -> Iterator[Path]:
    """A node directory the client pod writes its bundle to (hostPath)."""
    path = Path(tempfile.mkdtemp(prefix="exuvia-k8sh-incluster-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def client_pod(
    name: str, sa: str, argv: list[str], env: dict[str, str] | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The exuvia client as a pod under service account ``sa``: in-cluster configuration
    (the API server's real address), ``env`` added, ``out_dir`` (a hostPath) as /out."""
    variables = {"KUBERNETES_SERVICE_HOST": API_HOST, "KUBERNETES_SERVICE_PORT": API_PORT,
                 **(env or {})}  # fmt: skip
    container: dict[str, Any] = {
        "name": "exuvia",
        "image": CLIENT_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["python3", "-m", "tui.cli", *argv],
        "env": [{"name": k, "value": v} for k, v in variables.items()],
    }
    spec: dict[str, Any] = {
        "serviceAccountName": sa,
        "automountServiceAccountToken": True,
        "hostNetwork": True,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 2,
        "containers": [container],
    }
    if out_dir is not None:
        container["volumeMounts"] = [{"name": "out", "mountPath": "/out"}]
        spec["volumes"] = [{"name": "out", "hostPath": {"path": str(out_dir), "type": "Directory"}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def staged_client(rbac: Rbac, cluster: Any, prefix: str) -> tuple[str, str]:
    """A lab pod ready in ``PREFIX-target`` and a service account ``capturer`` in
    ``PREFIX-client`` bound to exactly docs/rbac.yaml's roles: (target ns, client ns)."""
    target_ns = cluster.namespace(f"{prefix}-target", enforce="baseline")
    client_ns = cluster.namespace(f"{prefix}-client", enforce="privileged")
    cluster.create_pod(target_ns, lab.lab_pod("lab"))
    cluster.wait_pod_running(target_ns, "lab")
    lab.wait_logged(cluster, target_ns, "lab", "]: ready")
    cluster.core.create_namespaced_service_account(client_ns, {"metadata": {"name": "capturer"}})
    roles = rbac.roles()
    rbac.bind(roles["exuvia-capture"], target_ns, "capturer", client_ns)
    rbac.bind(roles["exuvia-capture-nodes"], None, "capturer", client_ns)
    return target_ns, client_ns


def client_done(cluster: Any, client_ns: str, timeout: float) -> tuple[Any, str]:
    """Wait for the client pod ``exuvia-client`` to end: (its pod, its log)."""

    def done() -> Any:
        pod = cluster.read_pod(client_ns, "exuvia-client")
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    pod = cluster.wait(done, timeout, "the in-cluster capture to finish",
                       on_timeout=lambda: cluster.describe(client_ns, "exuvia-client"))  # fmt: skip
    return pod, cluster.logs(client_ns, "exuvia-client", "exuvia")


def test_capture_from_inside_the_cluster_with_in_cluster_config(
    rbac: Rbac, cluster: Any, k8s_images: str, host_out: Path
) -> None:
    target_ns, client_ns = staged_client(rbac, cluster, "k8sh-ic")
    argv = lab.capture_argv(f"k8s://{target_ns}/lab", Path("/out/cap.exv"))
    cluster.create_pod(client_ns, client_pod("exuvia-client", "capturer", argv, out_dir=host_out))
    pod, log = client_done(cluster, client_ns, 240)
    assert pod.status.phase == "Succeeded", log + cluster.describe(client_ns, "exuvia-client")
    assert "(complete)" in log, log

    out = host_out / "cap.exv"
    manifest = lab.check_verify(out)
    k8s = manifest["kubernetes"]
    assert k8s["cluster"]["source"] == "in-cluster service account", k8s["cluster"]
    assert k8s["cluster"]["server"] == f"https://{API_HOST}:{API_PORT}"
    assert k8s["cluster"]["default_namespace"] == client_ns  # the service account's own
    assert k8s["namespace"] == target_ns and k8s["pod"] == "lab"
    assert manifest["agent"]["end_to_end"]["ok"] is True
    m = lab.members(out)
    procs = [r for r in lab.jsonl(m["artifacts/processes.jsonl"]) if r.get("kind") == "process"]
    assert any((p.get("cmdline") or [None])[0] == "/app/target" for p in procs)
    assert b"]: ready" in m["logs/k8s/app.log"]
    assert lab.jsonl(m["artifacts/k8s/skips.jsonl"]) == []  # the documented rights sufficed
    fp = lab.jsonl(m["artifacts/k8s/footprint.json"])[0]
    assert fp["mode"] == "ephemeral-container" and fp["image_ran"] == lab.COLLECTOR_IMAGE
    live = cluster.read_pod(target_ns, "lab").spec.ephemeral_containers
    assert [c.name for c in live] == [fp["container"]]
