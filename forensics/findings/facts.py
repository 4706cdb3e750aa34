"""The captured facts the rules read, each record with where it is in the bundle.

:func:`forensics.findings.load.load_facts` fills a :class:`Facts` in one pass
over a bundle; rules only read it (they never open the bundle), so a rule's
test can build the facts it needs from records written by the real writer.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from forensics.findings.model import Evidence
from forensics.inventory.model import Inventory
from forensics.inventory.paths import PathResolver

PROCESSES = "artifacts/processes.jsonl"


@dataclass(frozen=True, slots=True)
class Rec:
    """A record and where it is: member name and 1-based line."""

    member: str
    line: int
    data: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True, slots=True)
class LogHit:
    """A log line that matched a log rule's pattern."""

    member: str
    line: int
    pattern: str  # the pattern's id
    text: str  # the line (cut to a few hundred characters)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def ids(value: Any) -> tuple[int | None, int | None]:
    """(real, effective) from a {real, effective, ...} mapping or a plain integer."""
    if isinstance(value, dict):
        return _int(value.get("real")), _int(value.get("effective"))
    v = _int(value)
    return v, v


def exe_path(proc: Rec) -> str | None:
    """The process's executable path without the kernel's " (deleted)" suffix."""
    exe = proc.get("exe")
    if not isinstance(exe, str) or not exe:
        return None
    return exe.removesuffix(" (deleted)")


def environ(proc: Rec) -> dict[str, str] | None:
    """The process's environment as a mapping (records hold a mapping; a list of
    ``NAME=value`` strings is read too); None when it could not be read."""
    env = proc.get("environ")
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    if isinstance(env, list):
        return dict(str(e).partition("=")[::2] for e in env)
    return None


def argv(proc: Rec) -> list[str]:
    cmd = proc.get("cmdline")
    return [str(a) for a in cmd] if isinstance(cmd, list) else []


@dataclass
class Facts:
    """Everything the rules look at, from one bundle."""

    bundle: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str | None = None
    header: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    processes: list[Rec] = field(default_factory=list)
    sockets: list[Rec] = field(default_factory=list)
    binaries: list[Rec] = field(default_factory=list)
    #: filesystem entries changed or deleted since the container started (not dirs)
    changed: list[Rec] = field(default_factory=list)
    #: filesystem entries kept by path: every executable file, symlink and
    #: world-writable directory, and every entry a rule names (``WATCHED``)
    files: dict[str, Rec] = field(default_factory=dict)
    #: True when some entry says whether it changed (an upper layer was visible)
    upper_known: bool = False
    #: basename -> paths of executable regular files in the image
    executables: dict[str, list[str]] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    writable_dirs: set[str] = field(default_factory=set)
    log_hits: list[LogHit] = field(default_factory=list)
    #: records of the collectors families name in ``RECORD_COLLECTORS`` (e.g. memory)
    records: dict[str, list[Rec]] = field(default_factory=dict)
    logs_scanned: list[str] = field(default_factory=list)
    skips: list[dict[str, Any]] = field(default_factory=list)
    #: the custody log inside the bundle (custody.jsonl), in order
    custody: list[dict[str, Any]] = field(default_factory=list)
    inventory: Inventory | None = None
    #: what could not be read, one line each (malformed records, a cut stream)
    problems: list[str] = field(default_factory=list)
    #: why the stream ended early, when it did
    cut: str | None = None
    #: a bundle with no manifest: the one line saying what its checkpoints vouch for
    cut_off_banner: str | None = None
    _resolver: PathResolver | None = field(default=None, repr=False)

    # -- processes ---------------------------------------------------------------
    def init_process(self) -> Rec | None:
        """The container's main process: the target's pid, else pid 1 of its namespace."""
        pid = _int(self.target.get("pid"))
        for p in self.processes:
            if pid is not None and p.get("pid") == pid:
                return p
        for p in self.processes:
            if p.get("nspid") == 1:
                return p
        return None

    def process(self, pid: int) -> Rec | None:
        for p in self.processes:
            if p.get("pid") == pid:
                return p
        return None

    def capture_pids(self) -> set[int]:
        """The capture's own processes (the in-pod agent shares the target's PID
        namespace), as the agent recorded them in the target facts."""
        facts = self.target.get("runtime_facts")
        agent = facts.get("agent") if isinstance(facts, dict) else None
        if not isinstance(agent, dict):
            return set()
        own = agent.get("container_processes")
        pids = {p for p in own if isinstance(p, int)} if isinstance(own, list) else set()
        if isinstance(agent.get("pid"), int):
            pids.add(agent["pid"])
        return pids

    def user_processes(self) -> Iterator[Rec]:
        """The target's processes: not kernel threads, not the capture's own agent."""
        own = self.capture_pids()
        for p in self.processes:
            if p.get("kernel_thread") is not True and p.get("pid") not in own:
                yield p

    def container_start_ns(self) -> int | None:
        """When the workload started: its main process's start, else the runtime's."""
        init = self.init_process()
        start = _int(init.get("start_ns")) if init is not None else None
        return start if start is not None else _int(self.target.get("started_ns"))

    # -- paths --------------------------------------------------------------------
    def resolve(self, path: str) -> str:
        """``path`` with every symlink of the target followed (its last component too)."""
        if self._resolver is None:
            self._resolver = PathResolver(self.symlinks)
        seen = 0
        cur = self._resolver.resolve(path)
        while cur in self.symlinks and seen < PathResolver.MAX_HOPS:
            seen += 1
            link = self.symlinks[cur]
            nxt = link if link.startswith("/") else posixpath.join(posixpath.dirname(cur), link)
            cur = self._resolver.resolve(posixpath.normpath(nxt))
        return cur

    def in_writable_dir(self, path: str, prefixes: tuple[str, ...]) -> str | None:
        """The writable place ``path`` is under: one of ``prefixes`` (well-known
        writable mounts such as /tmp/), else a world-writable directory of the image."""
        for prefix in prefixes:
            if path.startswith(prefix):
                return prefix.rstrip("/")
        d = posixpath.dirname(path)
        while d and d != "/":
            if d in self.writable_dirs:
                return d
            d = posixpath.dirname(d)
        return None


# -- evidence helpers shared by the rules ----------------------------------------------


def proc_label(p: Rec) -> str:
    """'implant' (pid 5, host 4242): the name, the pid inside and the host pid."""
    name = p.get("name") or "?"
    pid, nspid = p.get("pid"), p.get("nspid")
    inside = f"pid {nspid}, host {pid}" if nspid not in (None, pid) else f"pid {pid}"
    return f"{name!s} ({inside})"


def proc_subject(p: Rec) -> str:
    """What identifies a process for a stable finding id: host pid and start ticks."""
    return f"pid:{p.get('pid')}:{p.get('start_ticks', p.get('start_ns'))}"


def proc_evidence(p: Rec, role: str = "the process") -> Evidence:
    cmd = " ".join(argv(p))
    return Evidence(
        p.member, p.line, "process", role, f"{proc_label(p)}: {cmd}"[:300], p.get("pid")
    )


def file_evidence(f: Rec, role: str) -> Evidence:
    return Evidence(f.member, f.line, "file", role, str(f.get("path")), f.get("path"))


def socket_text(s: Rec) -> str:
    if s.get("family") == "unix":
        return f"unix {s.get('state')} {s.get('path') or ''}".strip()
    local = f"{s.get('local_addr')}:{s.get('local_port')}"
    remote = f"{s.get('remote_addr')}:{s.get('remote_port')}"
    return f"{s.get('proto')} {s.get('state')} {local} -> {remote}"


def socket_evidence(s: Rec, role: str = "the socket") -> Evidence:
    owners = s.get("owners") or []
    pid = owners[0].get("pid") if owners and isinstance(owners[0], dict) else None
    return Evidence(s.member, s.line, "socket", role, socket_text(s), pid)


__all__ = [
    "Facts",
    "LogHit",
    "Rec",
    "argv",
    "environ",
    "exe_path",
    "file_evidence",
    "ids",
    "proc_evidence",
    "proc_label",
    "proc_subject",
    "socket_evidence",
    "socket_text",
]
