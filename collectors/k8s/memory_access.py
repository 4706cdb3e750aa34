"""``--memory`` through an ephemeral agent: can it read the target's memory?

Decided before anything is added to the pod (an ephemeral container can never
be removed), so that a namespace whose admission level makes it impossible gets
one line, and nothing is captured.

What the kernel wants. Opening ``/proc/PID/mem`` is a ptrace access check of
mode ``PTRACE_MODE_ATTACH_FSCREDS`` (nothing is attached, the process is never
stopped; ``__ptrace_may_access`` in kernel/ptrace.c):

1. the reader's fsuid equals the target's real, effective and saved uid, and
   its fsgid the target's three gids, **or** the reader has CAP_SYS_PTRACE;
2. the target is dumpable (a process that changed its credentials, e.g. a
   setuid program, is not), **or** CAP_SYS_PTRACE;
3. the reader's *effective* capabilities are a superset of the target's
   *permitted* ones, **or** CAP_SYS_PTRACE (``cap_ptrace_access_check``);
4. Yama, when the node's kernel has it: ``kernel.yama.ptrace_scope`` 1 lets
   only an ancestor of the target (the agent never is), 2 only CAP_SYS_PTRACE,
   3 nobody. Yama is not namespaced and not visible through the API: the agent
   checks it when it starts reading and says so (collectors/agent.py).

So CAP_SYS_PTRACE settles everything. Pod Security Admission: ``privileged``
lets it be added; ``baseline`` and ``restricted`` do not. Without it the agent
must *be* the target for the kernel: the same uid and gid, at least its
capabilities. Profile ``auto`` copies exactly those from the target's
securityContext, so a root target with the runtime's default capabilities is
read by a root agent with the same default set (baseline), and a non-root
target (no permitted capabilities after exec) by an agent running as its uid
(restricted), provided the pod spec says which uid that is (or ``--run-as``).

:func:`decide` asks the API server itself: a **dry-run** of the agent with
SYS_PTRACE added (``dryRun=All``: admission judges it, nothing is stored). Admitted:
SYS_PTRACE is added. Refused by PodSecurity: the rule above is checked on the
specs, and where it cannot hold, :class:`MemoryRefused` names the level and
points at ``--node-level``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from collectors.k8s.admission import BASELINE_CAPS, parse_rejection
from collectors.k8s.client import AdmissionRejected
from collectors.k8s.inject import rv
from collectors.k8s.spec import (
    agent_name,
    effective_security,
    ephemeral_container,
    security_context,
)
from collectors.k8s.target import container_spec
from forensics.errors import AccessDenied

PTRACE = "SYS_PTRACE"
#: what containerd and CRI-O give a container unless told otherwise (a root process keeps it)
RUNTIME_DEFAULT_CAPS = BASELINE_CAPS | {"NET_RAW"}  # baseline allows all of them but NET_RAW
#: the collector image's user (images/collector: root), when nothing else says
AGENT_IMAGE_UID = 0
ALL = "ALL"


class MemoryRefused(AccessDenied):
    """The namespace's admission level leaves the agent no way to read the memory."""


class DryRunApi(Protocol):
    def add_ephemeral_container(
        self,
        namespace: str,
        name: str,
        container: dict[str, Any],
        resource_version: str,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]: ...


@dataclass
class MemoryAccess:
    """How the agent will read the memory (for the spec, the custody log, the footprint)."""

    extra_caps: tuple[str, ...]
    #: the PodSecurity policy that refused SYS_PTRACE (None: it was admitted or not asked)
    policy: str | None
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"extra_caps": list(self.extra_caps), "policy": self.policy, "how": self.how}


def _cap(name: str) -> str:
    name = name.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def permitted(sc: Mapping[str, Any], uid: int) -> frozenset[str]:
    """The permitted capabilities of a container's process running as ``uid``.

    Kubernetes sets no ambient capabilities, so a non-root process has none
    left after exec; a root one has the runtime's default set, less what is
    dropped, plus what is added; a privileged one has every one (``ALL``)."""
    if uid != 0:
        return frozenset()
    if sc.get("privileged"):
        return frozenset({ALL})
    caps = sc.get("capabilities") or {}
    add = {_cap(c) for c in caps.get("add") or []}
    drop = {_cap(c) for c in caps.get("drop") or []}
    base = set() if ALL in drop else set(RUNTIME_DEFAULT_CAPS) - drop
    return frozenset(base | add)


def without_ptrace(
    agent_sc: Mapping[str, Any], pod: dict[str, Any], target: dict[str, Any]
) -> str | None:
    """Why an agent with ``agent_sc`` (no CAP_SYS_PTRACE) cannot open the target's
    /proc/PID/mem, as far as the specs tell; None when the kernel's rule holds."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    eff = effective_security(pod, target)
    t_uid = eff.get("runAsUser")
    a_uid = agent_sc.get("runAsUser", pod_sc.get("runAsUser"))
    if t_uid is None:
        if a_uid is None and eff.get("runAsNonRoot") is True:
            return (
                "the target runs as a non-root uid its image chooses, which the pod spec "
                "does not name, so the agent cannot be made to run as it (give --run-as UID:GID)"
            )
        # both images decide: the collector image's user is root; a root target
        # is read, another one is reported by the agent when it opens the memory
        t_uid = a_uid if a_uid is not None else AGENT_IMAGE_UID
    if a_uid is None:
        a_uid = AGENT_IMAGE_UID
    if a_uid != t_uid:
        return f"the agent would run as uid {a_uid}, the target runs as uid {t_uid}"
    t_gid = eff.get("runAsGroup")
    a_gid = agent_sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if t_gid is not None and a_gid is not None and t_gid != a_gid:
        return f"the agent would run as gid {a_gid}, the target runs as gid {t_gid}"
    theirs = permitted(eff, int(t_uid))
    agent_eff = {**{k: v for k, v in eff.items() if k not in ("capabilities", "privileged")}}
    agent_eff.update({k: agent_sc[k] for k in ("capabilities", "privileged") if k in agent_sc})
    mine = permitted(agent_eff, int(a_uid))
    if ALL in theirs and ALL not in mine:
        return "the target is privileged (every capability) and the agent may not be"
    if ALL not in mine and not theirs <= mine:
        return "the target has capabilities the agent would lack: " + ", ".join(
            sorted(theirs - mine)
        )
    return None


def decide(
    api: DryRunApi,
    pod: dict[str, Any],
    target_name: str,
    *,
    image: str,
    profile: str,
    run_as: tuple[int, int | None] | None,
    pull_policy: str,
) -> MemoryAccess:
    """How the agent reads the memory, or :class:`MemoryRefused` (one line)."""
    if profile == "sysadmin":
        return MemoryAccess((), None, "profile sysadmin: a privileged agent (CAP_SYS_PTRACE)")
    if profile == "general":
        return MemoryAccess((), None, "profile general: the agent has CAP_SYS_PTRACE")
    meta = pod.get("metadata") or {}
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    target = container_spec(pod, target_name)
    probe = ephemeral_container(
        name=agent_name(),
        image=image,
        target_container=target_name,
        profile=profile,
        pod=pod,
        target=target,
        run_as=run_as,
        pull_policy=pull_policy,
        extra_caps=(PTRACE,),
    )
    try:
        api.add_ephemeral_container(ns, name, probe.container, rv(pod), dry_run=True)
    except AdmissionRejected as err:
        rej = parse_rejection(err.message)
        if rej is None:  # another admission controller: its own words, as is
            raise
        policy = rej.policy
    else:
        return MemoryAccess(
            (PTRACE,), None, "the namespace admits SYS_PTRACE (dry run): added to the agent"
        )
    sc, _notes = security_context(profile, pod, target, run_as)
    problem = without_ptrace(sc, pod, target)
    if problem:
        raise MemoryRefused(
            f'--memory: PodSecurity "{policy}" of namespace {ns} forbids SYS_PTRACE, and '
            f"without it {problem}; nothing was captured. Use --node-level --memory "
            "(a privileged pod on the node; --node-namespace NS that admits it), or "
            "capture without --memory"
        )
    return MemoryAccess(
        (),
        policy,
        f'PodSecurity "{policy}" forbids SYS_PTRACE: the agent reads /proc/PID/mem as the '
        "target's own uid and gid with at least its capabilities (a node with Yama "
        "ptrace_scope >= 1 still refuses that; the agent then says so)",
    )


def memory_warnings(asked: bool, manifest: Mapping[str, Any]) -> list[str]:
    """One line per process whose memory was asked for and not captured (from the
    agent's manifest, relayed): never a bundle silently without memory."""
    if not asked:
        return []
    mem = manifest.get("memory")
    if not isinstance(mem, Mapping):
        return ["--memory was asked but the agent captured no memory (see the incomplete reason)"]
    out = [
        f"memory of pid {x.get('pid')} not captured: {x.get('reason')}"
        for x in mem.get("not_captured") or []
        if isinstance(x, Mapping)
    ]
    if not mem.get("processes"):
        out.append("--memory was asked but no process memory was captured")
    return out
