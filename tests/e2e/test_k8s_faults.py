"""End to end faults against the real cluster: the pod is deleted mid-capture.

The result must be a bundle clearly marked incomplete that verifies for what it
holds, and a one-line message, never a traceback or a file claiming completeness.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from forensics.bundle import verify_bundle
from tests.e2e import k8s_lab as lab

pytestmark = pytest.mark.e2e


def _pod_exists(cluster: Any, ns: str, name: str) -> bool:
    try:
        cluster.core.read_namespaced_pod(name, ns)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def test_pod_deleted_mid_capture_gives_a_clearly_incomplete_bundle(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    ns = cluster.namespace("hostile-del", enforce="baseline")
    cluster.create_pod(ns, lab.lab_pod("big", image=lab.LAB_BIG_IMAGE))
    running = cluster.wait_pod_running(ns, "big")
    cid = running.status.container_statuses[0].container_id
    lab.wait_logged(cluster, ns, "big", "]: ready")
    out = tmp_path / "del.exv"
    spool = Path(f"{out}.agent-stream")
    proc = lab.start_capture(f"k8s://{ns}/big", out, kubeconfig_path)
    try:
        lab.wait_for(lambda: spool.exists() and spool.stat().st_size > (1 << 20), 120, "the stream")
        # Hold the agent still while the pod goes, so the deletion lands
        # mid-stream: at full speed the agent could finish (its output then
        # buffered on the way) before the kubelet kills it, and the test would
        # race (seen once). A stopped process is still killed with its pod.
        pids = lab.agent_pids(cid)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGSTOP)
        cluster.core.delete_namespaced_pod("big", ns, grace_period_seconds=0)
        lab.wait_for(lambda: not _pod_exists(cluster, ns, "big"), 120, "the pod to go", 0.2)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"exit {proc.returncode}\nstdout: {stdout}\nstderr: {stderr}")
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert not out.exists(), "a bundle under the final name claims completeness"
    kept = Path(f"{out}.incomplete")
    assert kept.exists() and not spool.exists()
    assert proc.returncode == 3
    assert len([ln for ln in stderr.splitlines() if ln.strip()]) <= 1, stderr
    assert "INCOMPLETE" in stdout
    report = verify_bundle(kept)
    assert report.ok and not report.complete, report.failures()
    assert report.incomplete_reason
    res = lab.cli("verify", str(kept), kubeconfig="")
    assert res.returncode == 0 and "INCOMPLETE capture" in res.stdout, res.stdout
    assert "artifacts/processes.jsonl" in lab.members(kept)  # what arrived is kept
