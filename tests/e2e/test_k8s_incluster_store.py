"""End to end: `exuvia capture k8s://… -o s3://…` run *inside* a pod, uploading
straight into the evidence store.

As tests/e2e/test_k8s_incluster.py: the client runs in a pod under a
ServiceAccount bound to exactly the roles of docs/rbac.yaml, with in-cluster
configuration and ``hostNetwork`` (the e2e cluster has no kube-proxy). The
node's network is also where the real versitygw of tests/support/s3server.py
listens (127.0.0.1), so the pod reaches it with ``--endpoint-url``; the
credentials are the AWS chain's environment variables. The client image is
built from this source tree (images/collector/build-local --with-client, which
carries boto3), under a ref of this module's own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forensics.bundle import verify_bundle
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_incluster import (
    build_client_image,
    client_done,
    client_pod,
    staged_client,
)
from tests.e2e.test_k8s_rbac import Rbac
from tests.support.s3server import S3Server

pytestmark = pytest.mark.e2e
BUCKET = "locked"


@pytest.fixture(scope="session")
def k8s_images(k8s_api_client: Any) -> str:
    return lab.ensure_images(lab.WORKDIR) + "\n" + build_client_image()


@pytest.fixture
def rbac(k8s_api_client: Any) -> Iterator[Rbac]:
    r = Rbac(k8s_api_client, uuid.uuid4().hex[:6])
    yield r
    r.cleanup()


def test_in_cluster_capture_uploads_into_the_locked_bucket(
    rbac: Rbac, cluster: Any, s3: S3Server, k8s_images: str, tmp_path: Path
) -> None:
    target_ns, client_ns = staged_client(rbac, cluster, "s3ic")

    key = f"incluster/{target_ns}/lab.exv"
    url = f"s3://{BUCKET}/{key}"
    argv = [*lab.capture_argv(f"k8s://{target_ns}/lab", Path(url)), "--retain", "1d",
            "--endpoint-url", s3.endpoint, "--output", "json"]  # fmt: skip
    argv[argv.index("-o") + 1] = url  # Path() would fold the "//"
    env = {k: v for k, v in s3.env().items() if k.startswith("AWS_")}
    cluster.create_pod(client_ns, client_pod("exuvia-client", "capturer", argv, env))
    pod, log = client_done(cluster, client_ns, 300)
    assert pod.status.phase == "Succeeded", log + cluster.describe(client_ns, "exuvia-client")
    assert s3.secret_key not in log  # credentials are never printed
    out, _ = json.JSONDecoder().raw_decode(log[log.index("{") :])
    assert out["bundle"] == url and out["complete"] and out["retention"]["mode"] == "GOVERNANCE"

    c = s3.client()
    keys = sorted(o["Key"] for o in c.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"])
    assert keys == [key, key + ".custody.jsonl"]
    assert c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    head = c.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["VersionId"] == out["version_id"]
    local = tmp_path / "lab.exv"
    local.write_bytes(c.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    report = verify_bundle(local)
    assert report.ok and report.complete, report.failures()
    k8s = report.manifest["kubernetes"]
    assert k8s["cluster"]["source"] == "in-cluster service account", k8s["cluster"]
    assert k8s["namespace"] == target_ns and k8s["pod"] == "lab"
    side = c.get_object(Bucket=BUCKET, Key=key + ".custody.jsonl")["Body"].read()
    assert s3.secret_key.encode() not in side
    sealed = next(json.loads(ln)["details"] for ln in side.splitlines()
                  if b'"bundle.sealed"' in ln)  # fmt: skip
    assert sealed["version_id"] == head["VersionId"] and sealed["key"] == key
