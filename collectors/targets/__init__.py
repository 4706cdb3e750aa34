"""Target URIs -> the container's init process on this host and its runtime's facts.

``resolve("podman://web")`` returns a :class:`TargetInfo`. Schemes::

    pid://PID                     any host process
    runc://ID[?root=DIR]          runc state
    podman://NAME|ID              podman container inspect
    docker://NAME|ID              Docker Engine API on $DOCKER_HOST (unix socket)
    containerd://[NAMESPACE/]ID   ctr (namespace "default" unless given)
    k8s://[NAMESPACE/]POD[/CONTAINER]

Errors are one line: TargetError (bad URI, not found), TargetGone (not running,
exited), RuntimeToolError (the runtime's tool is missing or failed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from collectors.k8s.target import parse_k8s
from forensics.errors import TargetError, TargetGone

from .base import TargetInfo
from .pid import require_process

__all__ = ["SCHEMES", "TargetInfo", "parse_uri", "resolve"]

Resolver = Callable[[str, str, str], TargetInfo]


def _resolve_k8s(ref: str, uri: str, procfs: str = "/proc") -> TargetInfo:
    """k8s:// is captured through the API by an in-pod agent (collectors.k8s.capture),
    not by a local process: check the URI's form, then say so."""
    parse_k8s(ref, uri)
    raise TargetError(
        f"{uri} is captured through the Kubernetes API by an agent inside the pod "
        "(`exuvia capture k8s://…`), not as a process of this host; on the node itself, "
        "containerd://k8s.io/ID works too"
    )


# scheme -> "module:resolver" of this package, resolver(ref, uri, procfs); the order is
# the order shown to users. Imported when a URI of that scheme is resolved, so that
# importing one module of this package (the in-pod agent imports .base and .pid) does
# not import every runtime's client (.docker pulls in http.client).
_RESOLVERS: dict[str, str] = {
    "pid": "pid:resolve_pid",
    "runc": "runc:resolve_runc",
    "podman": "podman:resolve_podman",
    "docker": "docker:resolve_docker",
    "containerd": "containerd:resolve_containerd",
    "k8s": "",
}
SCHEMES: tuple[str, ...] = tuple(_RESOLVERS)
_EXAMPLES = (
    "pid://PID, runc://ID, podman://NAME, docker://NAME, "
    "containerd://[NAMESPACE/]ID, k8s://[NAMESPACE/]POD[/CONTAINER]"
)


def parse_uri(uri: str) -> tuple[str, str]:
    """``"scheme://rest"`` -> (scheme, rest); TargetError listing the valid schemes."""
    text = uri.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise TargetError(f"target {uri!r} has no scheme; use one of: {_EXAMPLES}")
    scheme = scheme.lower()
    if scheme not in _RESOLVERS:
        raise TargetError(f"unknown target scheme {scheme + '://'!r}; use one of: {_EXAMPLES}")
    if not rest.strip():
        raise TargetError(f"target {uri!r} names nothing after {scheme}://")
    return scheme, rest.strip()


def _resolver(scheme: str) -> Resolver:
    if scheme == "k8s":
        return _resolve_k8s
    module, _, name = _RESOLVERS[scheme].partition(":")
    fn: Resolver = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return fn


def resolve(uri: str, *, procfs: str = "/proc") -> TargetInfo:
    """Resolve a target URI to its init process and runtime facts.

    ``procfs`` is where /proc of the collecting host is mounted (the in-pod
    agent passes its shared-PID-namespace view).
    """
    scheme, rest = parse_uri(uri)
    info = _resolver(scheme)(rest, uri.strip(), procfs)
    if info.pid <= 0:
        raise TargetGone(f"{uri.strip()} has no running process")
    require_process(info.pid, procfs, uri.strip())
    return info
