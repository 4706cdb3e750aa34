"""End to end: a capture needs no more than docs/rbac.yaml grants, and a missing right
is reported as the verb and resource the API server refused.

A ServiceAccount gets exactly the ClusterRoles of docs/rbac.yaml (renamed per test),
a token from the TokenRequest API, and a kubeconfig with nothing else; the target
belongs to a Deployment, so the owner chain (ReplicaSet -> Deployment) is read too.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e import k8s_lab as lab

pytestmark = pytest.mark.e2e
RBAC = lab.REPO / "docs" / "rbac.yaml"


class Rbac:
    """Cluster roles and bindings made for one test, removed afterwards."""

    def __init__(self, api: Any, suffix: str) -> None:
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.core = client.CoreV1Api(api)
        self.suffix = suffix
        self.cluster_objects: list[tuple[str, str]] = []

    def roles(self, drop: tuple[str, str] | None = None) -> dict[str, str]:
        """Create docs/rbac.yaml's ClusterRoles (optionally without one rule's
        resource/verb); returns {documented name: created name}."""
        names = {}
        for doc in yaml.safe_load_all(RBAC.read_text()):
            if not doc or doc.get("kind") != "ClusterRole":
                continue
            body = copy.deepcopy(doc)
            name = f"{doc['metadata']['name']}-{self.suffix}{'-x' if drop else ''}"
            body["metadata"]["name"] = name
            if drop:
                body["rules"] = [
                    r
                    for r in body["rules"]
                    if not (drop[0] in r["resources"] and drop[1] in r["verbs"])
                ]
            self.rbac.create_cluster_role(body)
            self.cluster_objects.append(("role", name))
            names[doc["metadata"]["name"]] = name
        return names

    def bind(self, role: str, ns: str | None, sa: str, sa_ns: str) -> None:
        subject = {"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
        name = f"{role}-{sa}"
        body = {"metadata": {"name": name}, "roleRef": ref, "subjects": [subject]}
        if ns is None:
            self.rbac.create_cluster_role_binding(body)
            self.cluster_objects.append(("binding", name))
        else:
            self.rbac.create_namespaced_role_binding(ns, body)

    def kubeconfig(self, path: Path, admin_kubeconfig: str, sa: str, ns: str) -> str:
        self.core.create_namespaced_service_account(ns, {"metadata": {"name": sa}})
        token = self.core.create_namespaced_service_account_token(
            sa, ns, {"spec": {"expirationSeconds": 900}}
        ).status.token
        cfg = yaml.safe_load(Path(admin_kubeconfig).read_text())
        ctx = cfg["contexts"][0]
        cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["context"]["cluster"])
        out = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": sa, "context": {"cluster": cluster["name"], "user": sa,
                                                  "namespace": ns}}],
            "current-context": sa,
        }  # fmt: skip
        path.write_text(yaml.safe_dump(out))
        path.chmod(0o600)
        return str(path)

    def cleanup(self) -> None:
        for kind, name in self.cluster_objects:
            with contextlib.suppress(ApiException):
                if kind == "role":
                    self.rbac.delete_cluster_role(name)
                else:
                    self.rbac.delete_cluster_role_binding(name)


@pytest.fixture
def rbac(k8s_api_client: Any) -> Iterator[Rbac]:
    r = Rbac(k8s_api_client, uuid.uuid4().hex[:6])
    yield r
    r.cleanup()


def deployment(ns: str, k8s_api_client: Any, cluster: Any) -> str:
    pod = lab.lab_pod("web")
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]},
        },
    }
    client.AppsV1Api(k8s_api_client).create_namespaced_deployment(ns, body)

    def running() -> str | None:
        for p in cluster.core.list_namespaced_pod(ns, label_selector="app=web").items:
            if p.status.phase == "Running" and all(
                s.ready for s in p.status.container_statuses or []
            ):
                return str(p.metadata.name)
        return None

    name = str(cluster.wait(running, 90, f"deployment {ns}/web running"))
    lab.wait_logged(cluster, ns, name, "]: ready")
    return name


def test_capture_with_exactly_the_documented_rights(
    rbac: Rbac, cluster: Any, k8s_api_client: Any, kubeconfig_path: str, k8s_images: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    ns = cluster.namespace("rbac", enforce="baseline")
    node_ns = cluster.namespace("rbac-node", enforce="privileged")
    pod = deployment(ns, k8s_api_client, cluster)
    roles = rbac.roles()
    rbac.bind(roles["exuvia-capture"], ns, "capturer", ns)
    rbac.bind(roles["exuvia-capture-nodes"], None, "capturer", ns)
    rbac.bind(roles["exuvia-capture"], node_ns, "capturer", ns)
    rbac.bind(roles["exuvia-capture-node-level"], node_ns, "capturer", ns)
    kc = rbac.kubeconfig(tmp_path / "sa.kubeconfig", kubeconfig_path, "capturer", ns)

    out = tmp_path / "web.exv"
    res = lab.cli(*lab.capture_argv(f"k8s://{pod}", out), kubeconfig=kc)  # context's namespace
    assert res.returncode == 0, res.stderr + res.stdout
    manifest = lab.check_verify(out)
    m = lab.members(out)
    owners = lab.jsonl(m["artifacts/k8s/owners.jsonl"])
    kinds = [(o["depth"], o["reference"]["kind"], (o["object"] or {}).get("kind")) for o in owners]
    assert kinds == [(1, "ReplicaSet", "ReplicaSet"), (2, "Deployment", "Deployment")], kinds
    assert manifest["kubernetes"]["owners"][-1] == "Deployment/web"
    assert lab.jsonl(m["artifacts/k8s/skips.jsonl"]) == []
    assert manifest["kubernetes"]["node"]["kernel"]
    assert manifest["kubernetes"]["cluster"]["source"].startswith("kubeconfig ")

    out = tmp_path / "web-node.exv"
    res = lab.cli(*lab.capture_argv(f"k8s://{ns}/{pod}", out, "--node-level",
                                    "--node-namespace", node_ns), kubeconfig=kc)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    fp = json.loads(lab.members(out)["artifacts/k8s/footprint.json"])
    assert fp["pod"]["deletion"] == "confirmed: the pod is gone"


@pytest.mark.parametrize(
    ("resource", "verb", "extra"),
    [("pods/ephemeralcontainers", "patch", ()), ("pods/exec", "get", ())],
)
def test_a_missing_right_names_the_verb_and_resource(
    resource: str, verb: str, extra: tuple[str, ...], rbac: Rbac, cluster: Any,
    kubeconfig_path: str, k8s_images: str, tmp_path: Path,
) -> None:  # fmt: skip
    ns = cluster.namespace("rbac-no", enforce="baseline")
    cluster.create_pod(ns, lab.lab_pod("lab"))
    cluster.wait_pod_running(ns, "lab")
    roles = rbac.roles(drop=(resource, verb))
    rbac.bind(roles["exuvia-capture"], ns, "limited", ns)
    rbac.bind(roles["exuvia-capture-nodes"], None, "limited", ns)
    kc = rbac.kubeconfig(tmp_path / "sa.kubeconfig", kubeconfig_path, "limited", ns)
    out = tmp_path / "denied.exv"
    res = lab.cli(*lab.capture_argv(f"k8s://{ns}/lab", out, *extra), kubeconfig=kc)
    text = res.stderr + res.stdout
    assert "Traceback" not in text
    assert f"not allowed to {verb} {resource} in namespace {ns}" in text, text
    assert "docs/rbac.yaml" in text
    if resource == "pods/exec":
        # the agent was added before exec was refused: the bundle keeps its footprint
        assert res.returncode == 3, text
        kept = Path(f"{out}.incomplete")
        m = lab.members(kept)
        assert json.loads(m["artifacts/k8s/footprint.json"])["container"].startswith("exuvia-")
        lab.check_verify(kept)
    else:
        assert res.returncode == 2, text
        assert not cluster.read_pod(ns, "lab").spec.ephemeral_containers
