"""``k8s://[NAMESPACE/]POD[/CONTAINER]``: parsing, and which container is meant."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from forensics.errors import TargetError, TargetGone

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class PodRef:
    """What a k8s:// URI names. ``namespace`` None means the context's default."""

    namespace: str | None
    pod: str
    container: str | None = None

    def uri(self, namespace: str | None = None, container: str | None = None) -> str:
        ns = namespace or self.namespace
        c = container or self.container
        return "k8s://" + "/".join(p for p in (ns, self.pod, c) if p)


def _check(kind: str, value: str, pattern: re.Pattern[str], limit: int, uri: str) -> None:
    if len(value) > limit or not pattern.match(value):
        raise TargetError(
            f"bad {kind} {value!r} in {uri!r}: Kubernetes names are lower-case letters, "
            f"digits and '-'{', ' + repr('.') if kind == 'pod name' else ''} (at most {limit})"
        )


def parse_k8s(ref: str, uri: str | None = None) -> PodRef:
    """``"ns/pod/container"`` (the part after ``k8s://``) -> PodRef; TargetError if malformed."""
    shown = uri or f"k8s://{ref}"
    text = ref.strip().strip("/") if ref.strip().endswith("/") else ref.strip()
    parts = text.split("/")
    if not text or any(not p for p in parts) or len(parts) > 3:
        raise TargetError(f"bad Kubernetes target {shown!r}: use k8s://[NAMESPACE/]POD[/CONTAINER]")
    if len(parts) == 1:
        ns, pod, container = None, parts[0], None
    elif len(parts) == 2:
        ns, pod, container = parts[0], parts[1], None
    else:
        ns, pod, container = parts
    if ns is not None:
        _check("namespace", ns, _LABEL, 63, shown)
    _check("pod name", pod, _SUBDOMAIN, 253, shown)
    if container is not None:
        _check("container name", container, _LABEL, 63, shown)
    return PodRef(ns, pod, container)


def choose_container(pod: dict[str, Any], requested: str | None) -> tuple[str, str]:
    """The container to capture and why it was chosen.

    An explicit name must be one of the pod's containers (or init containers).
    Otherwise the ``kubectl.kubernetes.io/default-container`` annotation, else
    the only container, else the first one.
    """
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or [] if c.get("name")]
    inits = [c.get("name") for c in spec.get("initContainers") or [] if c.get("name")]
    meta = pod.get("metadata") or {}
    pod_name = f"{meta.get('namespace')}/{meta.get('name')}"
    if requested:
        if requested in names or requested in inits:
            return requested, "named in the target URI"
        eph = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        extra = " (that is an ephemeral container)" if requested in eph else ""
        raise TargetError(
            f"pod {pod_name} has no container {requested!r}{extra}; "
            f"its containers: {', '.join(names) or 'none'}"
        )
    if not names:
        raise TargetError(f"pod {pod_name} has no containers")
    annotated = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if annotated and annotated in names:
        return annotated, f"the {DEFAULT_CONTAINER_ANNOTATION} annotation"
    if len(names) == 1:
        return names[0], "the pod's only container"
    return names[0], f"the first of {len(names)} containers ({', '.join(names)})"


def container_spec(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if c.get("name") == name:
                return dict(c)
    raise TargetError(f"container {name!r} is not in the pod spec")


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for st in status.get(key) or []:
            if st.get("name") == name:
                return dict(st)
    return None


def require_running(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """The container's status; TargetGone unless it is running."""
    meta = pod.get("metadata") or {}
    label = f"k8s://{meta.get('namespace')}/{meta.get('name')}/{name}"
    st = container_status(pod, name)
    phase = (pod.get("status") or {}).get("phase")
    if st is None:
        raise TargetGone(f"{label}: no status yet (pod phase {phase})")
    state = st.get("state") or {}
    if "running" in state:
        if not st.get("containerID"):
            raise TargetGone(f"{label}: running but no container ID reported yet")
        return st
    if "waiting" in state:
        w = state["waiting"] or {}
        why = w.get("reason") or "waiting"
        msg = w.get("message")
        raise TargetGone(f"{label} is not running ({why}{': ' + msg if msg else ''})")
    t = state.get("terminated") or {}
    raise TargetGone(
        f"{label} is not running (terminated: {t.get('reason')}, exit code {t.get('exitCode')}, "
        f"at {t.get('finishedAt')}): there is no live process to capture"
    )
