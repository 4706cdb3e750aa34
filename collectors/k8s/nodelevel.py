"""``--node-level``: for clusters that forbid ephemeral containers.

A short-lived privileged pod with ``hostPID: true`` is created on the target's
node (``spec.nodeName``: no scheduling). Its agent sees every process of the
node; it finds the target container's processes by the container ID the
kubelet reported (status.containerStatuses[].containerID, as the CRI runtime
named it), through the runtime's cgroup naming, and collects the same way as the
ephemeral agent, with root and every capability (so the kernel-enforced
read-only view and the overlay upper layer, through the node's
``/proc/1/root``, are available). The pod is deleted afterwards (grace period
0) and the client waits until it is gone; its exact spec, uid, times and
deletion are recorded in the footprint.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from collectors.k8s.client import AdmissionRejected, NotFound
from collectors.k8s.inject import Injection, _ran, wait_running
from collectors.k8s.spec import NODE_CONTAINER, NODE_POD_PREFIX, node_pod, short_id
from forensics.errors import ExuviaError
from forensics.timeutil import now_ns


class NodeApi(Protocol):
    def get_pod(self, namespace: str, name: str) -> dict[str, Any]: ...

    def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete_pod(self, namespace: str, name: str, grace_seconds: int = 0) -> dict[str, Any]: ...


def start_node_agent(
    api: NodeApi,
    target_pod: dict[str, Any],
    *,
    namespace: str,
    image: str,
    pull_policy: str,
    idle: float,
    linger: float,
    start_timeout: float,
    target_uri: str,
) -> Injection:
    node = (target_pod.get("spec") or {}).get("nodeName")
    if not node:
        raise ExuviaError("--node-level: the target pod is not scheduled on a node")
    name = NODE_POD_PREFIX + short_id()
    body = node_pod(
        name=name,
        namespace=namespace,
        node=str(node),
        image=image,
        target_uri=target_uri,
        pull_policy=pull_policy,
        idle=idle,
        linger=linger,
    )
    fp: dict[str, Any] = {
        "mode": "node-level-pod",
        "reused": False,
        "container": NODE_CONTAINER,
        "image_requested": image,
        "profile": "node-level (privileged, hostPID)",
        "pod": {"namespace": namespace, "name": name, "node": node, "spec_sent": body},
        "pod_resource_version_before": (target_pod.get("metadata") or {}).get("resourceVersion"),
    }
    fp["pod"]["created_ns"] = now_ns()
    try:
        created = api.create_pod(namespace, body)
    except AdmissionRejected as err:
        raise AdmissionRejected(
            f"--node-level needs a namespace that admits a privileged pod with hostPID; "
            f"namespace {namespace} refused it: {err.message} (use --node-namespace NS with a "
            "namespace labelled pod-security.kubernetes.io/enforce=privileged)",
            err.verb,
            err.resource,
        ) from err
    meta = created.get("metadata") or {}
    fp["pod"]["uid"] = meta.get("uid")
    fp["pod"]["spec_as_stored"] = created.get("spec")
    inj = Injection(namespace, name, NODE_CONTAINER, "node", fp)
    try:
        _pod, st = wait_running(
            lambda: api.get_pod(namespace, name),
            NODE_CONTAINER,
            start_timeout,
            f"the node-level agent pod {namespace}/{name}",
        )
    except ExuviaError as err:  # the caller deletes the pod and records why
        inj.failed = fp["start_error"] = str(err)
        return inj
    except BaseException:
        delete_node_agent(api, inj)
        raise
    fp["running_ns"] = now_ns()
    fp.update(_ran(st))
    return inj


def delete_node_agent(api: NodeApi, inj: Injection, timeout: float = 60.0) -> None:
    """Delete the node-level pod and wait until it is gone; record how it went."""
    rec: dict[str, Any] = inj.footprint.setdefault("pod", {})
    rec["delete_requested_ns"] = now_ns()
    try:
        api.delete_pod(inj.namespace, inj.pod, 0)
    except NotFound:
        pass
    except ExuviaError as err:
        rec["deletion"] = f"FAILED: {err} — delete pod {inj.namespace}/{inj.pod} by hand"
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            last = api.get_pod(inj.namespace, inj.pod)
        except NotFound:
            rec["deleted_ns"] = now_ns()
            rec["deletion"] = "confirmed: the pod is gone"
            return
        except ExuviaError as err:
            rec["deletion"] = f"requested; could not confirm: {err}"
            return
        rec["final_status"] = last.get("status")
        time.sleep(0.5)
    rec["deletion"] = f"requested; the pod still existed after {timeout:g}s"
