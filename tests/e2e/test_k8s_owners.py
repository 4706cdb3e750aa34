"""End to end: the owner chain of a captured pod, for the controllers other than a
Deployment (whose ReplicaSet -> Deployment chain test_k8s_rbac.py checks): a
StatefulSet's pod, a Job's pod, and a Job made from a CronJob (as
``kubectl create job --from=cronjob/…`` does: the Job's controller is the CronJob).

Each pod runs the shell-less lab target and is captured with the real command line;
``artifacts/k8s/owners.jsonl`` must name every owner with the object as the API
server serves it, and the manifest's ``kubernetes.owners`` the chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e import k8s_lab as lab

pytestmark = pytest.mark.e2e


def template(labels: dict[str, str], restart: str = "Always") -> dict[str, Any]:
    spec = lab.lab_pod("x")["spec"]
    spec["restartPolicy"] = restart
    return {"metadata": {"labels": labels}, "spec": spec}


def running_pod(cluster: Any, ns: str, selector: str) -> dict[str, Any]:
    def probe() -> Any:
        for p in cluster.core.list_namespaced_pod(ns, label_selector=selector).items:
            statuses = p.status.container_statuses or []
            if p.status.phase == "Running" and statuses and all(s.ready for s in statuses):
                return p
        return None

    pod = cluster.wait(probe, 90, f"a running pod {selector} in {ns}")
    lab.wait_logged(cluster, ns, pod.metadata.name, "]: ready")
    return dict(cluster.core.api_client.sanitize_for_serialization(pod))


def capture_owners(
    kubeconfig: str, ns: str, pod: str, out: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    res = lab.cli(*lab.capture_argv(f"k8s://{ns}/{pod}", out), kubeconfig=kubeconfig)
    assert res.returncode == 0, res.stderr + res.stdout
    manifest = lab.check_verify(out)
    m = lab.members(out)
    assert lab.jsonl(m["artifacts/k8s/skips.jsonl"]) == []
    return lab.jsonl(m["artifacts/k8s/owners.jsonl"]), manifest


def chain(owners: list[dict[str, Any]]) -> list[tuple[int, str, str, str, str]]:
    """(depth, reference kind, reference name, served kind, served uid == reference uid)."""
    return [
        (
            o["depth"],
            o["reference"]["kind"],
            o["reference"]["name"],
            (o["object"] or {}).get("kind", ""),
            "same uid"
            if (o["object"] or {}).get("metadata", {}).get("uid") == o["reference"]["uid"]
            else "other uid",
        )
        for o in owners
    ]


def test_statefulset_job_and_cronjob_owner_chains(
    cluster: Any, k8s_api_client: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    ns = cluster.namespace("k8sh-owners", enforce="baseline")
    apps = client.AppsV1Api(k8s_api_client)
    batch = client.BatchV1Api(k8s_api_client)

    # a StatefulSet: its pod is <name>-0, owned directly by the StatefulSet
    apps.create_namespaced_stateful_set(ns, {
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": template({"app": "db"})},
    })  # fmt: skip
    sts_pod = running_pod(cluster, ns, "app=db")
    assert sts_pod["metadata"]["name"] == "db-0"
    owners, manifest = capture_owners(kubeconfig_path, ns, "db-0", tmp_path / "sts.exv")
    assert chain(owners) == [(1, "StatefulSet", "db", "StatefulSet", "same uid")]
    sts = owners[0]["object"]
    assert sts["spec"]["serviceName"] == "db" and sts["apiVersion"] == "apps/v1"
    assert owners[0]["reference"]["controller"] is True
    assert manifest["kubernetes"]["owners"] == ["StatefulSet/db"]

    # a Job: its pod (<job>-<random>) is owned by the Job, which has no owner
    batch.create_namespaced_job(ns, {
        "metadata": {"name": "batch-run"},
        "spec": {"backoffLimit": 0, "template": template({"app": "batch-run"}, "Never")},
    })  # fmt: skip
    job_pod = running_pod(cluster, ns, "app=batch-run")
    owners, manifest = capture_owners(
        kubeconfig_path, ns, job_pod["metadata"]["name"], tmp_path / "job.exv"
    )
    assert chain(owners) == [(1, "Job", "batch-run", "Job", "same uid")]
    assert owners[0]["object"]["spec"]["backoffLimit"] == 0
    assert manifest["kubernetes"]["owners"] == ["Job/batch-run"]

    # a CronJob's Job: the chain goes Job -> CronJob (suspended, so it never fires itself)
    cron = batch.create_namespaced_cron_job(ns, {
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "suspend": True,
                 "jobTemplate": {"spec": {"backoffLimit": 0,
                                          "template": template({"app": "nightly"}, "Never")}}},
    })  # fmt: skip
    batch.create_namespaced_job(ns, {
        "metadata": {"name": "nightly-manual", "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly",
            "uid": cron.metadata.uid, "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"backoffLimit": 0, "template": template({"app": "nightly"}, "Never")},
    })  # fmt: skip
    cron_pod = running_pod(cluster, ns, "app=nightly")
    owners, manifest = capture_owners(
        kubeconfig_path, ns, cron_pod["metadata"]["name"], tmp_path / "cron.exv"
    )
    assert chain(owners) == [
        (1, "Job", "nightly-manual", "Job", "same uid"),
        (2, "CronJob", "nightly", "CronJob", "same uid"),
    ]
    assert owners[1]["object"]["spec"]["schedule"] == "0 3 * * *"
    assert manifest["kubernetes"]["owners"] == ["Job/nightly-manual", "CronJob/nightly"]
