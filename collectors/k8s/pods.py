"""Namespaces -> pods -> containers for the triage picker, from the API's JSON.

Pure functions over the objects collectors.k8s.client returns, plus
``list_pods``/``list_namespaces`` that call it. Whether a pod's image has a
shell cannot be known from the API: ``shell`` stays None (unknown) for pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collectors.k8s.client import KubeClient
from collectors.targets.cmd import parse_time


@dataclass(frozen=True, slots=True)
class PodContainer:
    name: str
    image: str
    image_id: str
    restarts: int
    ready: bool
    state: str  # running, waiting: REASON, terminated: REASON
    started_ns: int | None


@dataclass(frozen=True, slots=True)
class PodRow:
    namespace: str
    name: str
    phase: str
    node: str
    created_ns: int | None
    containers: tuple[PodContainer, ...]

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)

    def uri(self, container: str | None = None) -> str:
        base = f"k8s://{self.namespace}/{self.name}"
        return f"{base}/{container}" if container else base


def _state(st: dict[str, Any]) -> tuple[str, int | None]:
    for key in ("running", "waiting", "terminated"):
        part = st.get(key)
        if isinstance(part, dict):
            reason = part.get("reason")
            started = parse_time(part.get("startedAt"))
            return (f"{key}: {reason}" if reason else key), started
    return "unknown", None


def pod_row(pod: dict[str, Any]) -> PodRow:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    statuses = {
        s.get("name"): s for s in status.get("containerStatuses") or [] if isinstance(s, dict)
    }
    containers = []
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        st = statuses.get(c.get("name"), {})
        state, started = _state(st.get("state") or {})
        containers.append(
            PodContainer(
                name=str(c.get("name") or ""),
                image=str(c.get("image") or ""),
                image_id=str(st.get("imageID") or ""),
                restarts=int(st.get("restartCount") or 0),
                ready=bool(st.get("ready")),
                state=state,
                started_ns=started,
            )
        )
    return PodRow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        phase=str(status.get("phase") or ""),
        node=str(spec.get("nodeName") or ""),
        created_ns=parse_time(meta.get("creationTimestamp")),
        containers=tuple(containers),
    )


def list_namespaces(kc: KubeClient) -> list[str]:
    return sorted(str((n.get("metadata") or {}).get("name") or "") for n in kc.list_namespaces())


def list_pods(kc: KubeClient, namespace: str) -> list[PodRow]:
    return sorted((pod_row(p) for p in kc.list_pods(namespace)), key=lambda r: r.name)
