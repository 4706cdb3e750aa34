"""The resolved identity of a capture target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class TargetInfo:
    """What a target URI resolved to, and what its runtime says about it.

    ``pid`` is the container's init process on this host. Times are UTC ns.
    ``log_paths`` are host paths of the stdout/stderr log the runtime keeps,
    with ``log_format`` one of "k8s-file", "json-file", "cri", "raw".
    ``runtime_facts`` keeps the relevant raw runtime answer (inspect/state).
    """

    uri: str
    runtime: str
    pid: int
    container_id: str | None = None
    name: str | None = None
    image: str | None = None
    image_id: str | None = None
    image_digest: str | None = None
    created_ns: int | None = None
    started_ns: int | None = None
    runtime_version: str | None = None
    status: str | None = None
    log_paths: list[str] = field(default_factory=list)
    log_format: str | None = None
    upperdir: str | None = None
    runtime_facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class LocalContainer:
    """One running container on this host, as a runtime lists it (for pickers).

    ``created_ns`` is the runtime's creation time when it reports one, else the
    init process's start time; ``restarts`` is None when the runtime keeps no count.
    ``shell`` is filled in by collectors.inventory (True, False, or None: unknown).
    """

    runtime: str
    container_id: str
    name: str
    image: str | None
    pid: int
    uri: str
    status: str | None = None
    created_ns: int | None = None
    restarts: int | None = None
    shell: bool | None = None
    shell_basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
