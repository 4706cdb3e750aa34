"""The agent's container: the ephemeral container spec, its security profiles, the
node-level pod.

Why the profiles look the way they do: the agent reads the target's files
through ``/proc/<pid>/root``. The kernel allows that (ptrace access mode
``READ_FSCREDS``) when the reader has CAP_SYS_PTRACE, **or** when it runs as the
target's uid and gid and its effective capabilities include every capability
the target has permitted (and the target is dumpable). Pod Security Admission
``baseline`` forbids adding SYS_PTRACE and ``restricted`` forbids nearly every
capability, so the profile that passes both is the one that *matches* the
target: ``auto``.

================  ==============================================================
profile           the agent's securityContext
================  ==============================================================
``auto``          the target container's own: runAsUser, runAsGroup,
                  runAsNonRoot, capabilities, allowPrivilegeEscalation,
                  privileged, seccompProfile, seLinuxOptions, appArmorProfile
                  (pod-level settings apply to ephemeral containers anyway).
                  Passes whatever policy admitted the target.
``general``       capabilities add SYS_PTRACE (as ``kubectl debug``'s general):
                  reads any target; privileged namespaces only.
``baseline``      nothing added (runs as the image's user, root, with the
                  runtime's default capabilities): reads root targets that
                  keep the default capabilities; passes ``baseline``.
``restricted``    runAsNonRoot, runAsUser/runAsGroup of the target, drop ALL,
                  allowPrivilegeEscalation false, seccomp RuntimeDefault:
                  reads non-root targets without capabilities; passes
                  ``restricted``.
``sysadmin``      privileged: true: reads anything; privileged namespaces only.
================  ==============================================================
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

from forensics import __version__
from forensics.errors import ExuviaError

PROFILES = ("auto", "general", "baseline", "restricted", "sysadmin")
DEFAULT_PROFILE = "auto"
DEFAULT_IMAGE = f"ghcr.io/exuvia/collector:{__version__}"
AGENT_COMMAND = ["python3", "-m", "collectors.agent"]
NAME_PREFIX = "exuvia-"
NODE_CONTAINER = "exuvia"
NODE_POD_PREFIX = "exuvia-node-"
LABEL_ROLE = "exuvia.io/role"
ANNOTATION_TARGET = "exuvia.io/target"
#: container-level fields ``auto`` copies from the target
AUTO_FIELDS = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "capabilities",
    "allowPrivilegeEscalation",
    "privileged",
    "seccompProfile",
    "seLinuxOptions",
    "appArmorProfile",
)
#: pod-level fields that also apply to every container (ephemeral ones too)
POD_INHERITED = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "seccompProfile",
    "seLinuxOptions",
    "appArmorProfile",
)


@dataclass
class AgentSpec:
    """An agent container spec and the reasoning behind it (for the footprint)."""

    profile: str
    container: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def short_id() -> str:
    return secrets.token_hex(3)


def agent_name(ident: str | None = None) -> str:
    """``exuvia-<short id>`` (a DNS label)."""
    return NAME_PREFIX + (ident or short_id())


def parse_run_as(text: str) -> tuple[int, int | None]:
    """``"1000"`` or ``"1000:1000"`` -> (uid, gid or None); ExuviaError otherwise."""
    uid, sep, gid = text.strip().partition(":")
    if not uid.isdigit() or (sep and not gid.isdigit()):
        raise ExuviaError(f"--run-as wants UID or UID:GID (numbers), not {text!r}")
    return int(uid), (int(gid) if gid else None)


def effective_security(pod: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The target's securityContext as the kubelet applies it: pod level, then container."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    out = {k: copy.deepcopy(pod_sc[k]) for k in POD_INHERITED if k in pod_sc}
    out.update(copy.deepcopy(target.get("securityContext") or {}))
    return out


def security_context(
    profile: str,
    pod: dict[str, Any],
    target: dict[str, Any],
    run_as: tuple[int, int | None] | None = None,
    extra_caps: tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The agent's container-level securityContext for ``profile``, and notes.

    ``extra_caps``: capabilities added on top of the profile (``--memory`` adds
    SYS_PTRACE where the namespace's admission permits it: collectors.k8s.memory_access).
    """
    notes: list[str] = []
    eff = effective_security(pod, target)
    own = target.get("securityContext") or {}
    sc: dict[str, Any]
    if profile == "auto":
        sc = {k: copy.deepcopy(own[k]) for k in AUTO_FIELDS if k in own}
        if "runAsUser" not in eff and run_as is None:
            notes.append(
                "the pod spec does not say which uid the target runs as (its image "
                "decides): the agent runs as its own image's user; if the target's image "
                "runs as another user, give --run-as UID:GID"
            )
    elif profile == "general":
        sc = {"capabilities": {"add": ["SYS_PTRACE"]}}
    elif profile == "baseline":
        sc = {}
    elif profile == "restricted":
        sc = {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for key in ("runAsUser", "runAsGroup"):
            if key in eff and eff[key] is not None:
                sc[key] = eff[key]
        if not sc.get("runAsUser") and run_as is None:
            sc["runAsUser"] = 65532
            notes.append(
                "restricted: the target's uid is not in the pod spec; the agent runs as "
                "65532 (give --run-as UID:GID to match the target)"
            )
    elif profile == "sysadmin":
        sc = {"privileged": True}
    else:
        raise ExuviaError(f"unknown profile {profile!r}; use one of: {', '.join(PROFILES)}")
    if run_as is not None:
        sc["runAsUser"] = run_as[0]
        if run_as[1] is not None:
            sc["runAsGroup"] = run_as[1]
        if run_as[0] != 0 and profile in ("auto", "restricted"):
            sc.setdefault("runAsNonRoot", True)
        notes.append(f"--run-as {run_as[0]}{'' if run_as[1] is None else ':' + str(run_as[1])}")
    if sc.get("runAsUser") == 0 and sc.get("runAsNonRoot") is True:
        del sc["runAsNonRoot"]
    if extra_caps and not sc.get("privileged"):
        caps = sc.setdefault("capabilities", {})
        add = list(caps.get("add") or [])
        add += [c for c in extra_caps if c not in add]
        caps["add"] = add
        notes.append(f"added {', '.join(extra_caps)} for --memory (/proc/PID/mem of the target)")
    return sc, notes


def agent_args(idle: float, linger: float) -> list[str]:
    return ["wait", "--idle", f"{idle:g}", "--linger", f"{linger:g}"]


def ephemeral_container(
    *,
    name: str,
    image: str,
    target_container: str,
    profile: str,
    pod: dict[str, Any],
    target: dict[str, Any],
    run_as: tuple[int, int | None] | None = None,
    pull_policy: str = "IfNotPresent",
    idle: float = 300.0,
    linger: float = 30.0,
    extra_caps: tuple[str, ...] = (),
) -> AgentSpec:
    """The exact ephemeral container exuvia adds (pods/ephemeralcontainers)."""
    sc, notes = security_context(profile, pod, target, run_as, extra_caps)
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": list(AGENT_COMMAND),
        "args": agent_args(idle, linger),
        "targetContainerName": target_container,
        "stdin": False,
        "tty": False,
        "terminationMessagePolicy": "File",
    }
    if sc:
        container["securityContext"] = sc
    return AgentSpec(profile, container, notes)


def node_pod(
    *,
    name: str,
    namespace: str,
    node: str,
    image: str,
    target_uri: str,
    pull_policy: str = "IfNotPresent",
    idle: float = 300.0,
    linger: float = 5.0,
) -> dict[str, Any]:
    """The short-lived privileged pod of ``--node-level`` (hostPID, on the target's node)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "exuvia", LABEL_ROLE: "node-agent"},
            "annotations": {ANNOTATION_TARGET: target_uri},
        },
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": NODE_CONTAINER,
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": list(AGENT_COMMAND),
                    "args": agent_args(idle, linger),
                    "securityContext": {"privileged": True},
                    "stdin": False,
                    "tty": False,
                }
            ],
        },
    }


def reusable(
    pod: dict[str, Any], target_container: str, image: str, security: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A still-running exuvia agent in the pod for the same target, image and
    securityContext (so the same profile).

    Returns (its spec as found in the pod, its status) or None. Ephemeral
    containers can never be removed, so one is reused rather than adding another.
    """
    spec = pod.get("spec") or {}
    statuses = {
        s.get("name"): s for s in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
    }
    for c in reversed(spec.get("ephemeralContainers") or []):
        name = c.get("name") or ""
        if not name.startswith(NAME_PREFIX):
            continue
        if c.get("targetContainerName") != target_container or c.get("image") != image:
            continue
        if (c.get("securityContext") or {}) != security:
            continue
        st = statuses.get(name) or {}
        if "running" in (st.get("state") or {}):
            return dict(c), dict(st)
    return None
