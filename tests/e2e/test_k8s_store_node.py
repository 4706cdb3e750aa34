"""End to end: ``--node-level -o s3://…`` — one pod captured by a node-level agent,
its stream uploaded into the store by the client.

A real lab pod in a ``restricted`` namespace of the e2e cluster, the agent's
privileged pod in a ``privileged`` one (both deleted afterwards), and a real
versitygw with object lock (tests/support/s3server.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forensics.bundle import verify_bundle
from tests.e2e import k8s_lab as lab
from tests.support.s3server import S3Server

pytestmark = pytest.mark.e2e
BUCKET = "locked"


def _cli(s3: S3Server, scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **s3.env(), "PYTHONPATH": str(lab.REPO), "TMPDIR": str(scratch)}
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--endpoint-url", s3.endpoint],
        capture_output=True, text=True, env=env, cwd=lab.REPO, timeout=900, check=False,
    )  # fmt: skip


def test_node_level_pod_into_a_locked_bucket(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    target_ns = cluster.namespace("s3node-t", enforce="restricted")
    agent_ns = cluster.namespace("s3node-a", enforce="privileged")
    cluster.create_pod(target_ns, lab.lab_pod("lab", restricted=True))
    cluster.wait_pod_running(target_ns, "lab")
    lab.wait_logged(cluster, target_ns, "lab", "]: ready")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    url = f"s3://{BUCKET}/node/{target_ns}/lab.exv"
    res = _cli(s3, scratch, "capture", f"k8s://{target_ns}/lab", "-o", url, "--node-level",
               "--node-namespace", agent_ns, "--retain", "1d", "--output", "json",
               "--image", lab.COLLECTOR_IMAGE, "--image-pull-policy", "Never", "-q",
               "--kubeconfig", kubeconfig_path)  # fmt: skip
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    out = json.loads(res.stdout)
    assert out["bundle"] == url and out["complete"] and out["retention"]["mode"] == "GOVERNANCE"
    key = f"node/{target_ns}/lab.exv"
    c = s3.client()
    keys = sorted(o["Key"] for o in c.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"])
    assert keys == [key, key + ".custody.jsonl"]  # nothing .partial
    assert c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    head = c.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["VersionId"] == out["version_id"]
    with pytest.raises(ClientError):
        c.delete_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])
    # the node-level pod collected it, and is gone; the target was not patched
    local = tmp_path / "lab.exv"
    local.write_bytes(c.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    report = verify_bundle(local)
    assert report.ok and report.complete, report.failures()
    m = lab.members(local)
    fp = json.loads(m["artifacts/k8s/footprint.json"])
    assert fp["mode"] == "node-level-pod"
    assert fp["pod"]["namespace"] == agent_ns
    assert fp["pod"]["deletion"] == "confirmed: the pod is gone"
    assert cluster.core.list_namespaced_pod(agent_ns).items == []
    assert not cluster.read_pod(target_ns, "lab").spec.ephemeral_containers
    side = c.get_object(Bucket=BUCKET, Key=key + ".custody.jsonl")["Body"].read()
    actions = [json.loads(ln)["action"] for ln in side.splitlines()]
    # the store was asked before the node-level pod was created, and it was deleted
    assert actions.index("store.upload.started") < actions.index("agent.running")
    assert "agent.pod_deleted" in actions and "bundle.sealed" in actions
    assert list(scratch.iterdir()) == []  # the spool is gone; no local bundle
    ver = _cli(s3, scratch, "verify", url)
    assert ver.returncode == 0 and f"OK: {url}" in ver.stdout, ver.stdout + ver.stderr
