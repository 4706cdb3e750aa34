"""What can be triaged on this host: running containers of every runtime present.

``list_containers()`` asks each runtime (podman, docker, containerd, runc, in
that order) for its running containers and merges them: a container that two
runtimes report (podman and docker share a store; podman and containerd start
runc) is listed once, by the first runtime that reports its init pid. A runtime
that is missing or fails adds a one-line note instead of an error, so one broken
runtime never hides the others. Each row says whether the container's root holds
a shell (collectors.fs.shellcheck: read-only, no symlink is ever followed).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from collectors.fs.shellcheck import shell_in
from collectors.targets import containerd, docker, podman, runc
from collectors.targets.base import LocalContainer
from forensics.errors import ExuviaError

Lister = Callable[[str], list[LocalContainer]]

#: runtime name -> (tool that must be installed or None, lister)
RUNTIMES: dict[str, tuple[str | None, Lister]] = {
    "podman": ("podman", podman.list_local),
    "docker": (None, docker.list_local),
    "containerd": ("ctr", containerd.list_local),
    "runc": ("runc", runc.list_local),
}


@dataclass
class Inventory:
    containers: list[LocalContainer] = field(default_factory=list)
    #: one line per runtime that could not be asked, e.g. "containerd: not running"
    notes: list[str] = field(default_factory=list)


def list_containers(procfs: str = "/proc", *, check_shell: bool = True) -> Inventory:
    inv = Inventory()
    seen: set[int] = set()
    for name, (tool, lister) in RUNTIMES.items():
        if tool is not None and shutil.which(tool) is None:
            inv.notes.append(f"{name}: {tool} is not installed")
            continue
        try:
            rows = lister(procfs)
        except ExuviaError as err:
            inv.notes.append(f"{name}: {err}")
            continue
        for row in rows:
            if row.pid in seen:
                continue
            seen.add(row.pid)
            if check_shell:
                row.shell, row.shell_basis = shell_in(procfs, row.pid)
            inv.containers.append(row)
    inv.containers.sort(key=lambda c: (c.runtime, c.name))
    return inv
