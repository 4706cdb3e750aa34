"""Getting an agent to run next to the target: an ephemeral container (reused when
one is still running), and waiting until it runs.

Ephemeral containers can never be removed from a pod, so exuvia adds one only
when no exuvia agent for the same target container and image is still
running; the agent's ``wait`` process exits on its own (``--linger`` seconds
after its last capture, ``--idle`` seconds after start if none), so nothing
keeps running afterwards. The footprint records exactly what was added.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.k8s.admission import explain
from collectors.k8s.client import AdmissionRejected, Conflict, NotFound
from collectors.k8s.spec import (
    PROFILES,
    agent_name,
    ephemeral_container,
    reusable,
    security_context,
)
from collectors.k8s.target import container_spec, container_status
from forensics.errors import ExuviaError, TargetGone
from forensics.timeutil import now_ns

#: waiting reasons after which a container will not start by itself
FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreCreateHookError",
        "PostStartHookError",
    }
)


class PodApi(Protocol):
    def get_pod(self, namespace: str, name: str) -> dict[str, Any]: ...

    def add_ephemeral_container(
        self, namespace: str, name: str, container: dict[str, Any], resource_version: str
    ) -> dict[str, Any]: ...

    def watch_pod(
        self, namespace: str, name: str, resource_version: str, timeout: float
    ) -> Iterator[dict[str, Any]]: ...


@dataclass
class Injection:
    """Where the agent runs, and the footprint exuvia left to get it there."""

    namespace: str
    pod: str
    container: str
    mode: str  # "ephemeral" or "node"
    footprint: dict[str, Any] = field(default_factory=dict)
    #: why the agent, once added, did not start (the capture is then written
    #: incomplete, with the footprint and the facts)
    failed: str | None = None


def rv(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("resourceVersion") or "")


def digest_of(image_id: str | None) -> str | None:
    """``repo@sha256:…`` -> ``sha256:…``; a bare config ID is not a repository digest."""
    if image_id and "@sha256:" in image_id:
        return "sha256:" + image_id.rsplit("@sha256:", 1)[1]
    return None


#: the agent's start is watched for at most this long per request, then the pod is read
#: again (and a fleet's Ctrl-C is noticed at the latest then)
WATCH_SLICE = 5.0


def wait_running(
    get: Callable[[], dict[str, Any]],
    name: str,
    timeout: float,
    what: str,
    *,
    poll: float = 0.5,
    watch: Callable[[str, float], Iterator[dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait until container ``name`` runs; returns (pod, its status). ExuviaError
    with the kubelet's reason when it cannot start or has already exited.

    With ``watch`` (the pod after each change since a resourceVersion, for at most so
    many seconds), each change is judged as it comes: the agent is seen running when
    the kubelet reports it, not up to ``poll`` seconds later (a 0.5 s poll put 0.5 or
    1.0 s of waiting into every agent's start). A watch that cannot be had (no
    ``watch`` right, an old server) falls back to reading the pod every ``poll`` s."""
    deadline = time.monotonic() + timeout
    state = _Start(name, what)
    pod = get()
    while True:
        st = state.judge(pod)
        if st is not None:
            return pod, st
        left = deadline - time.monotonic()
        if left <= 0:
            raise ExuviaError(f"{what} did not start within {timeout:g}s (last: {state.last})")
        if watch is not None:
            began = time.monotonic()
            changes = watch(rv(pod), min(left, WATCH_SLICE))
            while True:
                try:
                    seen = next(changes, None)
                except ExuviaError:
                    watch = None  # refused (e.g. no "watch" right): poll from now on
                    break
                if seen is None:
                    break  # the slice ended: read the pod again
                st = state.judge(seen)
                if st is not None:
                    return seen, st
            # a watch the server ends at once (410, a proxy) is never retried faster
            # than the poll would read
            time.sleep(
                max(0.0, min(poll - (time.monotonic() - began), deadline - time.monotonic()))
            )
        else:
            time.sleep(min(poll, left))
        pod = get()


class _Start:
    """Judges one pod status after another while an agent container starts."""

    def __init__(self, name: str, what: str) -> None:
        self.name, self.what = name, what
        self.last = "no status yet"

    def judge(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The container's status once it runs; None while it is starting; raises when
        it cannot start, has exited, or the pod has ended."""
        st = container_status(pod, self.name) or {}
        state = st.get("state") or {}
        if "running" in state:
            return st
        if "terminated" in state:
            t = state["terminated"] or {}
            raise ExuviaError(
                f"{self.what} exited before the capture ({t.get('reason')}, exit code "
                f"{t.get('exitCode')}): {t.get('message') or 'see its log'}"
            )
        if "waiting" in state:
            w = state["waiting"] or {}
            self.last = f"{w.get('reason')}: {w.get('message') or ''}".strip(": ")
            if w.get("reason") in FATAL_WAITING:
                raise ExuviaError(f"{self.what} cannot start: {self.last}")
        if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded") and not state:
            raise TargetGone(f"the pod ended ({(pod.get('status') or {}).get('phase')})")
        return None


def inject_ephemeral(
    api: PodApi,
    pod: dict[str, Any],
    target_name: str,
    *,
    image: str,
    profile: str,
    run_as: tuple[int, int | None] | None,
    pull_policy: str,
    idle: float,
    linger: float,
    start_timeout: float,
    reuse: bool = True,
    extra_caps: tuple[str, ...] = (),
) -> Injection:
    meta = pod.get("metadata") or {}
    ns, pod_name = str(meta.get("namespace")), str(meta.get("name"))
    fp: dict[str, Any] = {
        "mode": "ephemeral-container",
        "pod_resource_version_before": rv(pod),
        "image_requested": image,
        "profile": profile,
    }
    target = container_spec(pod, target_name)
    want_sc, _notes = security_context(profile, pod, target, run_as, extra_caps)
    found = reusable(pod, target_name, image, want_sc) if reuse else None
    if found is not None:
        spec, st = found
        fp.update(
            reused=True,
            container=spec["name"],
            spec_as_stored=spec,
            spec_sent=None,
            note="a still-running exuvia agent for this target was reused; nothing was added",
        )
        fp.update(_ran(st))
        fp["pod_resource_version_after_patch"] = None
        return Injection(ns, pod_name, str(spec["name"]), "ephemeral", fp)

    patched: dict[str, Any] | None = None
    for _attempt in range(4):
        name = agent_name()
        aspec = ephemeral_container(
            name=name,
            image=image,
            target_container=target_name,
            profile=profile,
            pod=pod,
            target=target,
            run_as=run_as,
            pull_policy=pull_policy,
            idle=idle,
            linger=linger,
            extra_caps=extra_caps,
        )
        fp.update(
            reused=False,
            container=name,
            spec_sent=aspec.container,
            profile_notes=aspec.notes,
            pod_resource_version_before=rv(pod),
        )
        try:
            fp["injected_ns"] = now_ns()
            patched = api.add_ephemeral_container(ns, pod_name, aspec.container, rv(pod))
            break
        except Conflict:
            pod = api.get_pod(ns, pod_name)  # changed meanwhile: read it again, retry
            continue
        except AdmissionRejected as err:
            pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
            candidates = {
                p: ephemeral_container(
                    name=name,
                    image=image,
                    target_container=target_name,
                    profile=p,
                    pod=pod,
                    target=target,
                    run_as=run_as,
                ).container
                for p in PROFILES
            }
            raise AdmissionRejected(
                explain(err.message, name, profile, candidates, pod_sc), err.verb, err.resource
            ) from err
        except NotFound as err:
            raise ExuviaError(
                f"the API server has no pods/ephemeralcontainers for {ns}/{pod_name} ({err}); "
                "ephemeral containers may be disabled: use --node-level"
            ) from err
    if patched is None:
        raise ExuviaError(f"pod {ns}/{pod_name} kept changing; could not add the agent")
    fp["pod_resource_version_after_patch"] = rv(patched)
    stored = next(
        (
            c
            for c in (patched.get("spec") or {}).get("ephemeralContainers") or []
            if c.get("name") == name
        ),
        None,
    )
    fp["spec_as_stored"] = stored
    inj = Injection(ns, pod_name, name, "ephemeral", fp)
    try:
        _pod, st = wait_running(
            lambda: api.get_pod(ns, pod_name),
            name,
            start_timeout,
            f"the agent container {name}",
            watch=lambda since, secs: api.watch_pod(ns, pod_name, since, secs),
        )
    except TargetGone:
        raise
    except ExuviaError as err:  # added but not running: keep going, to record it
        inj.failed = fp["start_error"] = str(err)
        return inj
    fp["running_ns"] = now_ns()
    fp.update(_ran(st))
    return inj


def _ran(st: dict[str, Any]) -> dict[str, Any]:
    running = (st.get("state") or {}).get("running") or {}
    return {
        "image_ran": st.get("image"),
        "image_id": st.get("imageID"),
        "image_digest": digest_of(st.get("imageID")),
        "agent_container_id": st.get("containerID"),
        "agent_started_at": running.get("startedAt"),
    }


def final_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The agent container's status as last seen (for the footprint)."""
    return container_status(pod, name)
