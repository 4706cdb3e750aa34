"""End to end: a Kubernetes capture signed with --sign (the key stays on the
client; the agent in the pod never sees it), checked with verify --key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forensics.bundle.format import CUSTODY_NAME, SIGNATURE_NAME
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_capture import start_lab

pytestmark = pytest.mark.e2e


def test_signed_k8s_capture(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    ns = cluster.namespace("sign", enforce="baseline")
    start_lab(cluster, ns)
    key = tmp_path / "examiner"
    res = lab.cli("keygen", str(key), kubeconfig="")
    assert res.returncode == 0, res.stderr
    fingerprint = res.stdout.split("fingerprint: ")[1].strip()
    out = tmp_path / "lab.exv"
    res = lab.cli(*lab.capture_argv(f"k8s://{ns}/lab", out, "--sign", str(key)),
                  kubeconfig=kubeconfig_path)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"signed by:       {fingerprint}" in res.stdout
    lab.check_verify(out)
    res = lab.cli("verify", str(out), "--key", f"{key}.pub", kubeconfig="")
    assert res.returncode == 0 and f"valid, by the given key: {fingerprint}" in res.stdout
    m = lab.members(out)
    assert SIGNATURE_NAME in m and "agent/" + SIGNATURE_NAME not in m  # the agent never signs
    started = json.loads(m[CUSTODY_NAME].splitlines()[0])
    assert started["details"]["signing_key"] == fingerprint
    # the key never went to the cluster: not in the agent's command nor anywhere inside
    pem_body = b"".join(key.read_bytes().splitlines()[1:-1])
    assert all(pem_body not in data for data in m.values())
    footprint = json.dumps(json.loads(m["artifacts/k8s/footprint.json"])) if (
        "artifacts/k8s/footprint.json" in m) else ""  # fmt: skip
    assert str(key) not in footprint
