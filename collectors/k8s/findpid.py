"""Find the target container's init process from inside the pod (or on the node).

The agent runs in an ephemeral container created with ``targetContainerName``:
the kubelet starts it in the *target container's* PID namespace. So the agent
sees the target's processes and its own, but not the pause process or the other
containers' (unless the pod sets ``shareProcessNamespace: true``, in which case
every container of the pod, the pause process as PID 1, and the agent share one
namespace). The agent is never PID 1 itself.

How the init process is chosen, strongest evidence first:

1. **By container ID** (always available: the client passes the
   ``containerID`` the kubelet reported in ``status.containerStatuses``). Every
   process of a container lives in a cgroup whose path ends with (containerd,
   cgroupfs driver) or contains (systemd driver ``cri-containerd-<id>.scope``,
   CRI-O ``crio-<id>.scope``) that ID; ``/proc/N/cgroup`` is world-readable
   and, under a cgroup namespace, still shows the ID (as ``/../<id>``). Among
   the processes of that cgroup, the init process is the one whose parent is
   not one of them.
2. **PID 1, when it is not ours**: with ``targetContainerName`` and no
   ``shareProcessNamespace``, the target's entrypoint is PID 1 of the shared
   namespace. Used only when no container ID was given; a process whose cgroup
   is the agent's own is never chosen.

The node-level agent (a privileged pod with ``hostPID``) uses rule 1 only: on
the node's PID namespace PID 1 is the node's init.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_HEX_ID = re.compile(r"^[0-9a-f]{12,128}$")


@dataclass(frozen=True, slots=True)
class Found:
    """The target's init process as seen in ``procfs``, and how it was found."""

    pid: int
    how: str
    members: tuple[int, ...] = ()


class NotFound(Exception):
    """No process of the target container is visible."""


def bare_container_id(container_id: str) -> str:
    """``containerd://abc…`` -> ``abc…``; ValueError unless it is a hex ID."""
    cid = container_id.split("://", 1)[-1].strip().lower()
    if not _HEX_ID.match(cid):
        raise ValueError(f"not a container ID: {container_id!r}")
    return cid


def _read(path: str, limit: int = 65536) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def cgroup_paths(raw: bytes) -> list[str]:
    """The cgroup paths of a ``/proc/N/cgroup`` file (v1 and v2 lines)."""
    out: list[str] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2]:
            out.append(parts[2])
    return out


def in_container(paths: list[str], cid: str) -> bool:
    """True when one of the cgroup paths names the container ``cid``.

    The ID must be a whole path component or a component's ``<prefix>-<id>``
    or ``<id>.scope`` form, so one ID that merely starts another never matches.
    """
    for path in paths:
        for comp in path.split("/"):
            if comp == cid:
                return True
            core = comp.removesuffix(".scope")
            if core == cid or core.endswith("-" + cid):
                return True
    return False


def _ppid(procfs: str, pid: int) -> int | None:
    raw = _read(f"{procfs}/{pid}/stat", 4096)
    if raw is None:
        return None
    rpar = raw.rfind(b")")
    fields = raw[rpar + 2 :].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def _pids(procfs: str) -> list[int]:
    return sorted(int(n) for n in os.listdir(procfs) if n.isdigit())


def container_members(procfs: str, cid: str) -> list[int]:
    """Every visible process whose cgroup names container ``cid``."""
    out: list[int] = []
    for pid in _pids(procfs):
        raw = _read(f"{procfs}/{pid}/cgroup")
        if raw is not None and in_container(cgroup_paths(raw), cid):
            out.append(pid)
    return out


def own_container(procfs: str) -> list[int]:
    """The processes of the reader's own container (same cgroups as ``self``): the
    agent's, so a reader of the bundle can tell them from the target's."""
    own = cgroup_paths(_read(f"{procfs}/self/cgroup") or b"")
    if not own:
        return []
    out: list[int] = []
    for pid in _pids(procfs):
        raw = _read(f"{procfs}/{pid}/cgroup")
        if raw is not None and cgroup_paths(raw) == own:
            out.append(pid)
    return out


def init_of(procfs: str, members: list[int]) -> int:
    """The member whose parent is not a member (the lowest such pid)."""
    group = set(members)
    roots = [pid for pid in members if _ppid(procfs, pid) not in group]
    return min(roots or members)


def find_target(
    procfs: str = "/proc", container_id: str | None = None, *, allow_pid1: bool = True
) -> Found:
    """The target container's init process; NotFound with the reason otherwise."""
    if container_id:
        cid = bare_container_id(container_id)
        members = container_members(procfs, cid)
        if members:
            return Found(init_of(procfs, members), "cgroup", tuple(members))
        if not allow_pid1:
            raise NotFound(
                f"no process visible in {procfs} belongs to container {cid[:12]} "
                "(has it exited or restarted?)"
            )
    if not allow_pid1:
        raise NotFound("no container ID given")
    own = cgroup_paths(_read(f"{procfs}/self/cgroup") or b"")
    one = _read(f"{procfs}/1/cgroup")
    if one is None:
        raise NotFound(f"PID 1 is not visible in {procfs}")
    if own and cgroup_paths(one) == own:
        raise NotFound(
            "PID 1 is this agent's own container: the agent does not share the target's "
            "PID namespace (was targetContainerName set?)"
        )
    comm = (_read(f"{procfs}/1/comm") or b"").strip()
    if comm == b"pause":
        raise NotFound(
            "PID 1 is the pod's pause process (shareProcessNamespace); "
            "the target's container ID is needed to tell its processes apart"
        )
    return Found(1, "pid1")
