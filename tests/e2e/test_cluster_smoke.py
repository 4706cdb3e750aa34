"""Smoke tests of the e2e cluster itself (tests/e2e/cluster/up).

They prove what exuvia's Kubernetes capture relies on, against a real
kube-apiserver + kubelet + containerd: a pod whose image has no shell runs;
kubectl-debug-style ephemeral containers start in it (sharing its PID
namespace through ``targetContainerName``); logs, exec and attach work
through the API server; PodSecurity admission is enforced per namespace.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

pytestmark = pytest.mark.e2e


def _debug_container(
    name: str,
    image: str,
    command: list[str],
    *,
    target: str = "app",
    stdin: bool = False,
    security_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "targetContainerName": target,
        "stdin": stdin,
        "tty": False,
        "terminationMessagePolicy": "File",
    }
    if security_context:
        c["securityContext"] = security_context
    return c


def _message(err: Any) -> str:
    """The ``message`` of the Status an ApiException carries."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.body)


def test_node_ready_and_version(core_v1: Any, k8s_api_client: Any) -> None:
    version = client.VersionApi(k8s_api_client).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.")
    nodes = core_v1.list_node().items
    assert len(nodes) == 1, [n.metadata.name for n in nodes]
    ready = {c.type: c.status for c in nodes[0].status.conditions}
    assert ready["Ready"] == "True", nodes[0].status.conditions
    assert nodes[0].status.node_info.kubelet_version == version.git_version
    assert nodes[0].status.node_info.container_runtime_version.startswith("containerd://")


def test_pod_security_levels_are_enforced(cluster: Any, pod_manifest: Any) -> None:
    """One namespace per PodSecurity level; a privileged pod is admitted only
    where the level allows it."""
    nss = {
        level: cluster.namespace(level, enforce=level)
        for level in ("privileged", "baseline", "restricted")
    }
    for level, ns in nss.items():
        labels = cluster.core.read_namespace(ns).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == level

    for level, ns in nss.items():
        pod = pod_manifest("priv", cluster.images.shellless)
        pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        if level == "privileged":
            cluster.create_pod(ns, pod)
            cluster.wait_pod_running(ns, "priv")
        else:
            with pytest.raises(ApiException) as err:
                cluster.create_pod(ns, pod)
            assert err.value.status == 403
            msg = _message(err.value)
            assert "violates PodSecurity" in msg
            assert f'"{level}:latest"' in msg
            assert 'container "app" must not set securityContext.privileged=true' in msg


def test_restricted_namespace(cluster: Any, pod_manifest: Any) -> None:
    """restricted: a pod without the required securityContext is rejected with
    a PodSecurity message; a compliant one runs (as non-root, RuntimeDefault
    seccomp, no capabilities)."""
    ns = cluster.namespace("restricted", enforce="restricted")
    with pytest.raises(ApiException) as err:
        cluster.create_pod(ns, pod_manifest("noncompliant", cluster.images.shellless))
    assert err.value.status == 403
    msg = _message(err.value)
    assert msg.startswith(
        'pods "noncompliant" is forbidden: violates PodSecurity "restricted:latest"'
    ), msg
    for rule in (
        "allowPrivilegeEscalation != false",
        "runAsNonRoot != true",
        "unrestricted capabilities",
        "seccompProfile",
    ):
        assert rule in msg, msg

    cluster.create_pod(ns, pod_manifest("compliant", cluster.images.shellless, restricted=True))
    cluster.wait_pod_running(ns, "compliant")
    code, out, _ = cluster.exec(ns, "compliant", ["/app/shellless", "echo", "compliant-ok"])
    assert (code, out.strip()) == (0, "compliant-ok")


def test_shellless_pod_logs_exec(cluster: Any, pod_manifest: Any) -> None:
    """The image holds one static binary and nothing else: it runs, its logs
    come through the API server, exec of the binary works, and there is no
    shell to exec."""
    ns = cluster.namespace("shellless", enforce="baseline")
    cluster.create_pod(ns, pod_manifest("target", cluster.images.shellless))
    pod = cluster.wait_pod_running(ns, "target")
    assert pod.spec.containers[0].image == cluster.images.shellless

    def two_lines() -> str | None:
        text: str = cluster.logs(ns, "target")
        return text if "exuvia shellless tick 1" in text else None

    logs = cluster.wait(two_lines, 20, "two log lines")
    assert logs.splitlines()[0] == "exuvia shellless tick 0"

    code, out, err = cluster.exec(ns, "target", ["/app/shellless", "echo", "hello", "exec"])
    assert code == 0, err
    assert out.strip() == "hello exec"

    # No shell in the image: exec of /bin/sh cannot even start.
    code, out, err = cluster.exec(ns, "target", ["/bin/sh", "-c", "echo nope"])
    assert code is None and "nope" not in out
    assert "/bin/sh" in err and "no such file or directory" in err, err


def test_ephemeral_debug_container(cluster: Any, pod_manifest: Any) -> None:
    """kubectl-debug style: an ephemeral container targeting the shell-less
    container sees its processes and its root filesystem; exec and attach
    into it work through the API server; a one-shot one terminates."""
    ns = cluster.namespace("debug", enforce="baseline")
    cluster.create_pod(ns, pod_manifest("target", cluster.images.shellless))
    cluster.wait_pod_running(ns, "target")

    # 1. A long-running debugger with stdin, to attach to.
    cluster.add_ephemeral(
        ns, "target", _debug_container("debugger", cluster.images.debug, ["/bin/sh"], stdin=True)
    )
    cluster.wait_ephemeral(ns, "target", "debugger", ("running",))

    # exec into the ephemeral container: the target's processes are visible
    # (shared PID namespace via targetContainerName) and so is its rootfs.
    code, out, err = cluster.exec(ns, "target", ["ps", "-o", "pid,args"], container="debugger")
    assert code == 0, err
    target_pids = [line.split()[0] for line in out.splitlines() if "/app/shellless log" in line]
    assert target_pids, out
    pid = target_pids[0]
    code, out, err = cluster.exec(
        ns, "target", ["ls", f"/proc/{pid}/root/app"], container="debugger"
    )
    assert code == 0, err
    assert out.split() == ["shellless"]
    code, out, err = cluster.exec(
        ns, "target", ["ls", f"/proc/{pid}/root/bin"], container="debugger"
    )
    assert code != 0  # the target has no /bin at all

    # attach to the debugger's stdin/stdout through the API server.
    ws = stream(
        cluster.core.connect_get_namespaced_pod_attach,
        "target",
        ns,
        container="debugger",
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        ws.write_stdin("echo attached-$((6*7))\n")
        seen = ""
        deadline = time.monotonic() + 60
        while "attached-42" not in seen and time.monotonic() < deadline:
            ws.update(timeout=1)
            if ws.peek_stdout():
                seen += ws.read_stdout()
        assert "attached-42" in seen, seen
        ws.write_stdin("exit 3\n")
    finally:
        ws.close()
    term = cluster.wait_ephemeral(ns, "target", "debugger", ("terminated",))
    assert term.exit_code == 3

    # 2. A one-shot ephemeral container: runs, terminates, its logs are readable.
    oneshot = ["/bin/sh", "-c", "echo oneshot-done; cat /proc/1/cmdline"]
    cluster.add_ephemeral(ns, "target", _debug_container("oneshot", cluster.images.debug, oneshot))
    term = cluster.wait_ephemeral(ns, "target", "oneshot", ("terminated",))
    assert term.exit_code == 0
    assert "oneshot-done" in cluster.logs(ns, "target", "oneshot")

    # The target kept running throughout.
    pod = cluster.read_pod(ns, "target")
    assert pod.status.phase == "Running"
    assert [s.restart_count for s in pod.status.container_statuses] == [0]


def test_ephemeral_container_in_restricted_namespace(
    cluster: Any, pod_manifest: Any, restricted_sc: Any
) -> None:
    """PodSecurity also applies to ephemeral containers: a debugger without a
    restricted securityContext is refused, a compliant one runs."""
    ns = cluster.namespace("rdebug", enforce="restricted")
    cluster.create_pod(ns, pod_manifest("target", cluster.images.shellless, restricted=True))
    cluster.wait_pod_running(ns, "target")

    with pytest.raises(ApiException) as err:
        cluster.add_ephemeral(
            ns, "target", _debug_container("loose", cluster.images.debug, ["/bin/sh", "-c", "true"])
        )
    assert err.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in _message(err.value)

    cluster.add_ephemeral(
        ns,
        "target",
        _debug_container(
            "strict",
            cluster.images.debug,
            ["/bin/sh", "-c", "id -u; ps -o pid,args"],
            security_context=restricted_sc(),
        ),
    )
    term = cluster.wait_ephemeral(ns, "target", "strict", ("terminated",))
    assert term.exit_code == 0
    out = cluster.logs(ns, "target", "strict")
    assert out.splitlines()[0] == "65534"
    assert "/app/shellless log" in out
