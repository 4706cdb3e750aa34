"""Reading a Pod Security Admission rejection, and which profile would pass.

The API server answers a rejected pods/ephemeralcontainers patch (or pod
create) with 403 and a message such as::

    pods "web" is forbidden: violates PodSecurity "restricted:latest":
    allowPrivilegeEscalation != false (container "exuvia-1a2b3c" must set
    securityContext.allowPrivilegeEscalation=false), unrestricted capabilities
    (container "exuvia-1a2b3c" must set securityContext.capabilities.drop=["ALL"];
    container "exuvia-1a2b3c" must not include "SYS_PTRACE" in
    securityContext.capabilities.add)

:func:`parse_rejection` turns that into the policy level and one
:class:`Violation` per check, with the containers and the fields named.
:func:`check_container` applies the same container-level checks (baseline and
restricted, as in k8s.io/pod-security-admission) to a spec we are about to
send, so :func:`explain` can say which of our profiles would pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPS = frozenset({"NET_BIND_SERVICE"})
BASELINE_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})

_HEAD = re.compile(
    r'violates PodSecurity "(?P<level>[a-z]+):(?P<version>[^"]+)":\s*(?P<rest>.*)$', re.S
)
_CONTAINER = re.compile(r'containers? ((?:"[^"]+"(?:, | and )?)+)')
_FIELD = re.compile(r"\b((?:spec\.)?(?:securityContext|hostNetwork|hostPID|hostIPC)[\w.]*)")


@dataclass
class Violation:
    """One failed PodSecurity check: its name, its details, containers and fields."""

    check: str
    details: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)

    def about(self, container: str) -> bool:
        return container in self.containers

    def text(self) -> str:
        return f"{self.check} ({'; '.join(self.details)})" if self.details else self.check


@dataclass
class Rejection:
    level: str
    version: str
    violations: list[Violation]
    message: str

    @property
    def policy(self) -> str:
        return f"{self.level}:{self.version}"


def _split_top(text: str) -> list[str]:
    """Split ``a (x, y), b (z)`` on the commas outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    cur: list[str] = []
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def parse_rejection(message: str) -> Rejection | None:
    """The PodSecurity verdict in an API error message, or None if it is not one."""
    m = _HEAD.search(message)
    if not m:
        return None
    violations: list[Violation] = []
    for part in _split_top(m.group("rest").strip()):
        check, _, inner = part.partition("(")
        inner = inner.rsplit(")", 1)[0] if inner else ""
        details = [d.strip() for d in inner.split(";") if d.strip()]
        containers: list[str] = []
        for d in details:
            for group in _CONTAINER.findall(d):
                for name in re.findall(r'"([^"]+)"', group):
                    if name not in containers:
                        containers.append(name)
        fields = sorted({f.rstrip(".=") for d in details for f in _FIELD.findall(d)})
        if not fields and "=" in check:
            fields = [check.split("=", 1)[0].split()[-1].strip()]
        violations.append(Violation(check.strip(), details, containers, fields))
    return Rejection(m.group("level"), m.group("version"), violations, message)


# -- our own checks ------------------------------------------------------------------
def _caps(sc: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    caps = sc.get("capabilities") or {}
    return set(caps.get("add") or []), set(caps.get("drop") or [])


def check_container(
    container: Mapping[str, Any], pod_sc: Mapping[str, Any], level: str
) -> list[str]:
    """PodSecurity container checks ``container`` fails at ``level`` (field: why)."""
    if level not in LEVELS:
        raise ValueError(f"unknown PodSecurity level {level!r}")
    if level == "privileged":
        return []
    sc: Mapping[str, Any] = container.get("securityContext") or {}
    bad: list[str] = []
    if sc.get("privileged"):
        bad.append("securityContext.privileged: must not be true")
    add, drop = _caps(sc)
    if add - BASELINE_CAPS:
        bad.append(f"securityContext.capabilities.add: {sorted(add - BASELINE_CAPS)} not allowed")
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        bad.append("securityContext.windowsOptions.hostProcess: must not be true")
    if sc.get("procMount") not in (None, "Default"):
        bad.append("securityContext.procMount: must be Default")
    for where, ctx in (("", sc), ("pod ", pod_sc)):
        se = ctx.get("seLinuxOptions") or {}
        if se.get("type", "") not in BASELINE_SELINUX_TYPES or se.get("user") or se.get("role"):
            bad.append(f"{where}securityContext.seLinuxOptions: not an allowed SELinux label")
        if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
            bad.append(f"{where}securityContext.seccompProfile.type: must not be Unconfined")
        if (ctx.get("appArmorProfile") or {}).get("type") == "Unconfined":
            bad.append(f"{where}securityContext.appArmorProfile.type: must not be Unconfined")
    if level == "baseline":
        return bad
    if sc.get("allowPrivilegeEscalation") is not False:
        bad.append("securityContext.allowPrivilegeEscalation: must be false")
    if "ALL" not in drop:
        bad.append('securityContext.capabilities.drop: must include "ALL"')
    if add - RESTRICTED_CAPS:
        bad.append(f"securityContext.capabilities.add: only NET_BIND_SERVICE, not {sorted(add)}")
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    if non_root is not True:
        bad.append("securityContext.runAsNonRoot: must be true (pod or container)")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
        bad.append("securityContext.runAsUser: must not be 0")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        bad.append("securityContext.seccompProfile.type: must be RuntimeDefault or Localhost")
    return bad


def passing_profiles(
    candidates: Mapping[str, Mapping[str, Any]], pod_sc: Mapping[str, Any], level: str
) -> list[str]:
    """The profiles (name -> container spec) whose spec passes ``level``."""
    return [name for name, spec in candidates.items() if not check_container(spec, pod_sc, level)]


def explain(
    message: str,
    agent: str,
    profile: str,
    candidates: Mapping[str, Mapping[str, Any]],
    pod_sc: Mapping[str, Any],
) -> str:
    """One paragraph: which policy, which fields, and which profile would pass."""
    rej = parse_rejection(message)
    if rej is None:
        return message
    ours = [v for v in rej.violations if v.about(agent) or not v.containers]
    theirs = [v for v in rej.violations if v.containers and not v.about(agent)]
    lines = [f'PodSecurity "{rej.policy}" rejected the agent container {agent} (profile {profile})']
    if ours:
        fields = sorted({f for v in ours for f in v.fields})
        lines.append(
            "violations: "
            + "; ".join(v.text() for v in ours)
            + (f" [fields: {', '.join(fields)}]" if fields else "")
        )
    if theirs:
        names = sorted({c for v in theirs for c in v.containers})
        lines.append(
            f"the pod's own containers ({', '.join(names)}) violate it too: "
            + "; ".join(v.text() for v in theirs)
            + " — no agent profile can pass; use --node-level with a namespace that "
            "allows privileged pods"
        )
        return ". ".join(lines)
    good = [p for p in passing_profiles(candidates, pod_sc, rej.level) if p != profile]
    if good:
        lines.append(f"profiles that pass {rej.level}: {', '.join(good)} (use --profile {good[0]})")
    else:
        lines.append(
            f"none of exuvia's profiles passes {rej.level} for this pod; use --node-level with "
            "a namespace that allows privileged pods"
        )
    return ". ".join(lines)
