"""End to end: `exuvia capture k8s://NS/POD --memory` on the real cluster.

A pod runs tests/support/memtarget.c (static, the only file of its image): a
known marker in its heap, a secret in an anonymous mmap, a heartbeat line
(CLOCK_MONOTONIC ns) on its standard output every 10 ms, so the container log
shows whether it ever stopped. It is captured through the ephemeral agent in
namespaces labelled privileged (the agent gets SYS_PTRACE, admitted by a dry
run), baseline (no SYS_PTRACE: a root agent with the runtime's default
capabilities reads a root target with the same) and restricted with the
target's uid in the pod spec (the agent runs as that uid); `gdb -batch` on the
core from the bundle prints the marker. A restricted pod whose uid only its
image names: one line, nothing captured, nothing added to the pod; the same pod
through --node-level --memory. Namespaces are ``memk8s-*`` and deleted after.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from forensics.timeline.bundleio import stream_members
from tests.e2e import k8s_lab as lab
from tests.support.memtarget import build_memtarget
from tui.demo.lab import oci_image_module

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb not installed"),
]
IMAGE = os.environ.get("EXUVIA_E2E_MEMTARGET_IMAGE", "localhost/exuvia/memtarget:test")
MARKER = "MEMK8S-HEAP-MARKER-5f3a9c"
SECRET = "MEMK8S-MMAP-SECRET-77e1d0"


@functools.cache
def _images(workdir: Path) -> Path:
    """The collector image (this tree) and the memtarget image; returns the binary."""
    lab.build_collector_image()
    binary = build_memtarget(workdir / "bin")
    rootfs = workdir / "memroot"
    rootfs.mkdir()
    shutil.copy2(binary, rootfs / "memtarget")
    (rootfs / "tmp").mkdir(mode=0o1777)
    oci_image_module().build_oci_archive(
        rootfs, IMAGE, workdir / "memtarget.tar", entrypoint=["/memtarget"], user="65534:65534"
    )
    lab.ctr("images", "import", str(workdir / "memtarget.tar"))
    return binary


@pytest.fixture(scope="session")
def memtarget(k8s_api_client: Any) -> Path:
    return _images(lab.WORKDIR)


def namespace(cluster: Any, prefix: str, enforce: str) -> str:
    labels = {"exuvia.test/e2e": "true", "pod-security.kubernetes.io/enforce": enforce,
              "pod-security.kubernetes.io/enforce-version": "latest"}  # fmt: skip
    body = client.V1Namespace(metadata=client.V1ObjectMeta(generate_name=f"memk8s-{prefix}-",
                                                           labels=labels))  # fmt: skip
    ns = str(cluster.core.create_namespace(body).metadata.name)
    cluster.created_namespaces.append(ns)  # deleted by the fixture
    cluster.wait(
        lambda: cluster._exists(cluster.core.read_namespaced_service_account, "default", ns),
        60,
        f"ServiceAccount {ns}/default",
    )
    return ns


def mem_pod(level: str, *, uid_in_spec: bool = True) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "args": [MARKER, SECRET, "-"],
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    if level == "restricted":
        spec["securityContext"] = {"runAsNonRoot": True,
                                   "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
        if uid_in_spec:
            spec["securityContext"].update(runAsUser=65534, runAsGroup=65534)
        container["securityContext"] = {"allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]}}  # fmt: skip
    else:
        container["securityContext"] = {"runAsUser": 0, "runAsGroup": 0}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mem"}, "spec": spec}


def start(cluster: Any, ns: str, manifest: dict[str, Any]) -> None:
    cluster.create_pod(ns, manifest)
    cluster.wait_pod_running(ns, "mem")
    lab.wait_logged(cluster, ns, "mem", "ready 1")


def beats(cluster: Any, ns: str) -> list[int]:
    return [int(x) for x in cluster.logs(ns, "mem", "app").splitlines() if x.isdigit()]


def core_of(bundle: Path, pid: int, out: Path) -> Path:
    name = f"memory/{pid}.core"
    with out.open("wb") as fh:
        for m in stream_members(bundle, lambda n: n == name):
            while block := m.read(1 << 20):
                fh.write(block)
    assert out.stat().st_size > 0, name
    return out


def gdb_prints(exe: Path, core: Path) -> str:
    res = subprocess.run(
        ["gdb", "-batch", "-nx", "-ex", "print (char*)marker_ptr",
         "-ex", "print (char*)(*(long*)&secret_ptr + 12345)", str(exe), str(core)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return res.stdout + res.stderr


def check_undisturbed(cluster: Any, ns: str, t0: int, t1: int) -> None:
    """Restart count 0, and the heartbeat has no gap during the capture beyond
    three times the worst one of as long a time before (a loaded, shared machine)."""
    st = cluster.read_pod(ns, "mem").status.container_statuses[0]
    assert st.restart_count == 0 and st.state.running is not None
    time.sleep(0.3)  # the beats after the window reach the log
    all_beats = beats(cluster, ns)
    during = [b for b in all_beats if t0 <= b <= t1]
    assert len(during) > 10, "the capture was too short to judge"
    early = [b for b in all_beats if t0 - (t1 - t0) <= b < t0]
    base = max((b - a for a, b in itertools.pairwise(early)), default=10_000_000)
    gap = max(b - a for a, b in itertools.pairwise(during))
    assert gap < max(500_000_000, 3 * base), (
        f"heartbeat gap {gap / 1e6:.0f} ms (before {base / 1e6:.0f})"
    )


def run(
    kubeconfig: str, uri: str, out: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], int, int]:
    t0 = time.monotonic_ns()
    res = lab.cli(*lab.capture_argv(uri, out, "--files", "none", "--memory", *extra),
                  kubeconfig=kubeconfig)  # fmt: skip
    return res, t0, time.monotonic_ns()


@pytest.mark.parametrize("level", ["privileged", "baseline", "restricted"])
def test_memory_of_a_pod_through_the_ephemeral_agent(
    level: str, cluster: Any, kubeconfig_path: str, memtarget: Path, tmp_path: Path
) -> None:
    ns = namespace(cluster, level[:4], level)
    start(cluster, ns, mem_pod(level))
    out = tmp_path / "mem.exv"
    res, t0, t1 = run(kubeconfig_path, f"k8s://{ns}/mem", out)
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"bundle:          {out} (complete)" in res.stdout
    assert "warning" not in res.stderr, res.stderr
    manifest = lab.check_verify(out)
    mem = manifest["memory"]
    assert mem["mode"] == "anon" and mem["atomic"] is False and mem["not_captured"] == []
    # the target only: the agent's own processes share its PID namespace, and are left out
    assert [p["pid"] for p in mem["processes"]] == [1]
    assert mem["processes"][0]["read_start_ns"] <= mem["processes"][0]["read_end_ns"]
    m = lab.members(out)
    fp = json.loads(m["artifacts/k8s/footprint.json"])
    caps = (fp["spec_sent"].get("securityContext") or {}).get("capabilities") or {}
    if level == "privileged":
        assert fp["memory_access"]["extra_caps"] == ["SYS_PTRACE"]
        assert "SYS_PTRACE" in caps["add"]
    else:
        access = fp["memory_access"]
        assert access["extra_caps"] == [] and access["policy"] == f"{level}:latest"
        assert "SYS_PTRACE" not in (caps.get("add") or [])
    out_gdb = gdb_prints(memtarget, core_of(out, 1, tmp_path / "1.core"))
    assert f'"{MARKER}"' in out_gdb and f'"{SECRET}"' in out_gdb, out_gdb
    check_undisturbed(cluster, ns, t0, t1)
    info = lab.cli("info", str(out), kubeconfig="")
    assert "memory:     1 process cores (mode anon" in info.stdout, info.stdout + info.stderr
    assert "memory/1.core  pid 1" in info.stdout and "NOT CAPTURED" not in info.stdout


def test_restricted_without_the_uid_is_refused_in_one_line_and_node_level_reads_it(
    cluster: Any, kubeconfig_path: str, memtarget: Path, tmp_path: Path
) -> None:
    ns = namespace(cluster, "rest", "restricted")
    start(cluster, ns, mem_pod("restricted", uid_in_spec=False))
    out = tmp_path / "refused.exv"
    res, _t0, _t1 = run(kubeconfig_path, f"k8s://{ns}/mem", out)
    assert res.returncode == 2, res.stderr + res.stdout
    (line,) = res.stderr.splitlines()
    head = f'exuvia: error: --memory: PodSecurity "restricted:latest" of namespace {ns} forbids'
    assert line.startswith(head + " SYS_PTRACE"), line
    assert "--node-level --memory" in line and "nothing was captured" in line
    assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no bundle, no partial, no spool, no custody log
    assert not cluster.read_pod(ns, "mem").spec.ephemeral_containers  # nothing added

    agent_ns = namespace(cluster, "node", "privileged")
    out = tmp_path / "node.exv"
    res, t0, t1 = run(kubeconfig_path, f"k8s://{ns}/mem", out, "--node-level",
                      "--node-namespace", agent_ns)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    manifest = lab.check_verify(out)
    (proc,) = manifest["memory"]["processes"]
    host_pid = proc["pid"]  # node level: host pids
    assert host_pid == manifest["target"]["pid"] and host_pid != 1
    out_gdb = gdb_prints(memtarget, core_of(out, host_pid, tmp_path / "n.core"))
    assert f'"{MARKER}"' in out_gdb and f'"{SECRET}"' in out_gdb, out_gdb
    assert not cluster.read_pod(ns, "mem").spec.ephemeral_containers
    check_undisturbed(cluster, ns, t0, t1)


def test_fleet_memory_captures_what_it_can_and_fails_the_pod_that_forbids_it(
    cluster: Any, kubeconfig_path: str, memtarget: Path, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    sel = f"memk8s-run={run_id}"
    base = namespace(cluster, "fbase", "baseline")
    rest = namespace(cluster, "frest", "restricted")
    for ns, manifest in ((base, mem_pod("baseline")),
                         (rest, mem_pod("restricted", uid_in_spec=False))):  # fmt: skip
        manifest["metadata"]["labels"] = {"memk8s-run": run_id}
        start(cluster, ns, manifest)
    case = tmp_path / "case"
    res = lab.cli("capture", "k8s://", "-A", "-l", sel, "-o", str(case), "--image",
                  lab.COLLECTOR_IMAGE, "--image-pull-policy", "Never", "--files", "none",
                  "--memory", "--output", "json", "-q", kubeconfig=kubeconfig_path)  # fmt: skip
    assert "Traceback" not in res.stderr
    summary = json.loads(res.stdout)
    assert res.returncode == 3 == summary["exit_status"] and summary["state"] == "partial"
    by_ns = {b["namespace"]: b for b in summary["bundles"]}
    assert by_ns[base]["status"] == "complete", by_ns[base]
    failed = by_ns[rest]
    assert failed["status"] == "failed" and failed["file"] is None
    assert failed["reason"].startswith('--memory: PodSecurity "restricted:latest"'), failed
    assert "--node-level --memory" in failed["reason"]
    assert not cluster.read_pod(rest, "mem").spec.ephemeral_containers  # nothing added there
    doc = json.loads((case / "case.json").read_text())
    assert any(b.get("reason") == failed["reason"] for b in doc["bundles"])
    bundle = case / by_ns[base]["file"]
    manifest = lab.check_verify(bundle)
    assert [p["pid"] for p in manifest["memory"]["processes"]] == [1]
    out_gdb = gdb_prints(memtarget, core_of(bundle, 1, tmp_path / "f.core"))
    assert f'"{MARKER}"' in out_gdb, out_gdb
