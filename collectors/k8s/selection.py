"""What a fleet capture is asked for: ``k8s://NS -l SELECTOR``, ``k8s://NS/KIND/NAME``,
``-A`` with a selector, and which containers of each pod.

The single-pod form ``k8s://[NS/]POD[/CONTAINER]`` stays in collectors.k8s.target;
:func:`is_fleet` says which of the two a command line means. A three-part URI
whose middle part is a workload kind (``deployment``, ``statefulset``,
``daemonset``, ``job``, their plurals and kubectl's short names) names a
workload; a middle part that is another Kubernetes kind kubectl knows
(``replicaset``, ``cronjob``, ``service`` …) is refused with the valid kinds.
Nothing here talks to the API server: collectors.k8s.resolve does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from forensics.errors import TargetError

#: kind as typed -> (API group/version, Kind)
WORKLOAD_KINDS: dict[str, tuple[str, str]] = {}
for _kind, _api, _aliases in (
    ("Deployment", "apps/v1", ("deployment", "deployments", "deploy")),
    ("StatefulSet", "apps/v1", ("statefulset", "statefulsets", "sts")),
    ("DaemonSet", "apps/v1", ("daemonset", "daemonsets", "ds")),
    ("Job", "batch/v1", ("job", "jobs")),
):
    for _alias in _aliases:
        WORKLOAD_KINDS[_alias] = (_api, _kind)
VALID_KINDS = "deployment, statefulset, daemonset, job"
#: kinds kubectl knows that exuvia does not resolve to pods: refused, not taken as a pod name
OTHER_KINDS = frozenset(
    {
        *("replicaset", "replicasets", "rs", "cronjob", "cronjobs", "cj"),
        *("replicationcontroller", "replicationcontrollers", "rc"),
        *("service", "services", "svc", "pod", "pods", "po", "node", "nodes", "no"),
        *("configmap", "configmaps", "cm", "secret", "secrets", "ingress", "ingresses", "ing"),
    }
)
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# label keys: [prefix/]name; values: empty or name-like (63 chars)
_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_SET_OP = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^()]*)\)\s*$")
_EQ_OP = re.compile(r"^\s*([^\s!=()]+)\s*(==|!=|=)\s*([^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")
CONTAINER_MODES = ("default", "all", "named")


@dataclass(frozen=True, slots=True)
class FleetRequest:
    """A fleet capture as given: a selector in a namespace (or all), or a workload."""

    target: str
    namespace: str | None  # None: the context's default (or every namespace with -A)
    all_namespaces: bool = False
    selector: str | None = None
    workload_kind: str | None = None  # Deployment, StatefulSet, DaemonSet, Job
    workload_api: str | None = None
    workload_name: str | None = None
    container_mode: str = "default"  # default, all, named
    container: str | None = None

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        """``request`` in case.json (docs/case-format.md)."""
        return {
            "target": self.target,
            "namespace": self.namespace,
            "all_namespaces": self.all_namespaces,
            "selector": self.selector,
            "workload": {"kind": self.workload_kind, "name": self.workload_name}
            if self.workload_kind
            else None,
            "containers": {"mode": self.container_mode, "name": self.container},
            **extra,
        }


def _key_ok(key: str) -> bool:
    prefix, sep, name = key.rpartition("/")
    if sep and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_KEY_NAME.match(name))


def _split_requirements(selector: str) -> list[str]:
    """Split on the commas that are not inside ``( … )``."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise TargetError(f"bad label selector {selector!r}: unbalanced ')'")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise TargetError(f"bad label selector {selector!r}: unbalanced '('")
    parts.append(cur)
    return parts


def check_selector(selector: str) -> str:
    """``selector`` (kubectl's ``-l`` syntax: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
    ``k in (a,b)``, ``k notin (a,b)``, comma-separated) normalized, or TargetError."""
    text = selector.strip()
    if not text:
        raise TargetError("empty label selector: give one, e.g. -l app=web")
    out = []
    for req in _split_requirements(text):
        bad = f"bad label selector {selector!r}: {req.strip()!r}"
        if m := _SET_OP.match(req):
            key, op, values = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
            if not _key_ok(key) or not values or not all(v and _VALUE.match(v) for v in values):
                raise TargetError(f"{bad} is not KEY {op} (VALUE,…)")
            out.append(f"{key} {op} ({','.join(values)})")
        elif m := _EQ_OP.match(req):
            key, op, value = m.groups()
            if not _key_ok(key) or not _VALUE.match(value):
                raise TargetError(
                    f"{bad}: label keys are [prefix/]name and values at most 63 letters, "
                    "digits, '-', '_' or '.'"
                )
            out.append(f"{key}{op}{value}")
        elif m := _EXISTS.match(req):
            neg, key = m.groups()
            if not _key_ok(key):
                raise TargetError(f"{bad}: not a label key")
            out.append(f"{neg}{key}")
        else:
            raise TargetError(
                f"{bad}: use KEY=VALUE, KEY!=VALUE, KEY, !KEY, KEY in (A,B) or KEY notin (A,B)"
            )
    return ",".join(out)


def _name(kind: str, value: str, pattern: re.Pattern[str], limit: int, uri: str) -> str:
    if len(value) > limit or not pattern.match(value):
        raise TargetError(
            f"bad {kind} {value!r} in {uri!r}: Kubernetes names are lower-case letters, "
            f"digits and '-' (at most {limit})"
        )
    return value


def names_workload(uri: str) -> bool:
    """``k8s://NS/KIND/NAME`` with KIND a kind word (valid or not)."""
    parts = uri.strip().partition("://")[2].strip("/").split("/")
    return len(parts) == 3 and (parts[1].lower() in WORKLOAD_KINDS or parts[1] in OTHER_KINDS)


def is_fleet(uri: str, *, selector: str | None, all_namespaces: bool) -> bool:
    """Whether a k8s:// command line asks for a fleet capture rather than one pod."""
    return bool(selector) or all_namespaces or names_workload(uri)


def parse_fleet(
    uri: str,
    *,
    selector: str | None = None,
    all_namespaces: bool = False,
    all_containers: bool = False,
    container: str | None = None,
) -> FleetRequest:
    """The request, checked; TargetError (one line) when it is malformed."""
    text = uri.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() != "k8s":
        raise TargetError(f"a fleet capture takes a k8s:// target, not {uri!r}")
    parts = [p for p in rest.strip("/").split("/")] if rest.strip("/") else []
    if any(not p for p in parts) or len(parts) > 3:
        raise TargetError(
            f"bad fleet target {text!r}: use k8s://NS -l SELECTOR, k8s://NS/KIND/NAME "
            "or k8s:// -A -l SELECTOR"
        )
    if all_containers and container:
        raise TargetError("--all-containers and -c NAME exclude each other")
    if container is not None:
        _name("container name", container, _LABEL, 63, text)
    mode = "all" if all_containers else ("named" if container else "default")
    sel = check_selector(selector) if selector is not None else None
    shown = text + (f" -l {sel}" if sel else "") + (" -A" if all_namespaces else "")
    common: dict[str, Any] = {"container_mode": mode, "container": container}
    if len(parts) == 3:
        ns, kind, name = parts
        api_kind = WORKLOAD_KINDS.get(kind.lower())
        if api_kind is None:
            raise TargetError(
                f"unknown workload kind {kind!r} in {text!r}; use one of: {VALID_KINDS}"
            )
        if sel or all_namespaces:
            raise TargetError(
                f"{text} names a workload: its own selector chooses the pods (no -l or -A with it)"
            )
        return FleetRequest(
            target=shown,
            namespace=_name("namespace", ns, _LABEL, 63, text),
            workload_api=api_kind[0],
            workload_kind=api_kind[1],
            workload_name=_name(f"{api_kind[1]} name", name, _SUBDOMAIN, 253, text),
            **common,
        )
    if len(parts) == 2:
        raise TargetError(
            f"{text} names one pod: capture it without -l/-A, or use k8s://NS -l SELECTOR "
            f"or k8s://NS/KIND/NAME ({VALID_KINDS})"
        )
    if sel is None:
        raise TargetError(
            f"{text} needs a label selector (-l app=web) to choose pods"
            + (" across all namespaces" if all_namespaces else "")
        )
    if all_namespaces and parts:
        raise TargetError(f"-A captures in every namespace: give k8s:// without {parts[0]!r}")
    in_ns = _name("namespace", parts[0], _LABEL, 63, text) if parts else None
    assert sel is not None
    return FleetRequest(
        target=shown, namespace=in_ns, all_namespaces=all_namespaces, selector=sel, **common
    )
