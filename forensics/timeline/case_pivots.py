"""Cross-pod pivots: from one event of a case, the same thing in the other pods.

* the same file content: another pod holds a file (added or changed since start,
  an executable, a captured binary) with the same SHA-256, at any path;
* the same executable: another pod runs a process from the same path (and
  whether its captured binary's SHA-256 matches);
* the same remote address: another pod's sockets talk to the same remote
  address (any port).

Each pod's index is built once, from its bundle's records in one pass (the
findings' loader), and every hit carries the record (``member:line``) it comes
from, so a UI can open that pod's event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.errors import ExuviaError
from forensics.findings.facts import Facts, Rec, argv, exe_path
from forensics.findings.load import load_facts
from forensics.timeline.case import CaseEvent, CaseTimeline, Where
from forensics.timeline.events import Event


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass
class PodIndex:
    """What pivots look up in one pod: content hashes, executables, remote addresses."""

    #: sha256 -> [(path, Rec)]
    hashes: dict[str, list[tuple[str, Rec]]] = field(default_factory=dict)
    #: executable path -> [(sha256 or None, command line, Rec)]
    exes: dict[str, list[tuple[str | None, str, Rec]]] = field(default_factory=dict)
    #: remote address -> [(proto port, Rec)]
    remotes: dict[str, list[tuple[str, Rec]]] = field(default_factory=dict)
    #: pid -> the remote addresses of its sockets
    pid_remotes: dict[int, set[str]] = field(default_factory=dict)
    #: pid -> the sha256 of its captured binary
    pid_sha: dict[int, str] = field(default_factory=dict)


def index_of(facts: Facts) -> PodIndex:
    ix = PodIndex()
    seen: set[tuple[str, str]] = set()
    for f in [*facts.changed, *facts.files.values()]:
        sha, path = f.get("sha256"), f.get("path")
        if isinstance(sha, str) and isinstance(path, str) and (sha, path) not in seen:
            seen.add((sha, path))
            ix.hashes.setdefault(sha, []).append((path, f))
    for b in facts.binaries:
        sha, pid = b.get("sha256"), _int(b.get("pid"))
        if isinstance(sha, str):
            bexe = str(b.get("exe") or "?").removesuffix(" (deleted)")
            ix.hashes.setdefault(sha, []).append((f"{bexe} (binary of pid {pid})", b))
            if pid is not None:
                ix.pid_sha[pid] = sha
    for p in facts.processes:
        exe, pid = exe_path(p), _int(p.get("pid"))
        if exe is None:
            continue
        known: Any = ix.pid_sha.get(pid) if pid is not None else None
        if known is None:
            disk = facts.files.get(exe)
            known = disk.get("sha256") if disk is not None else None
        ix.exes.setdefault(exe, []).append(
            (known if isinstance(known, str) else None, " ".join(argv(p)), p)
        )
    for s in facts.sockets:
        raddr, rport = s.get("remote_addr"), _int(s.get("remote_port"))
        if not isinstance(raddr, str) or not rport or s.get("state") == "LISTEN":
            continue
        ix.remotes.setdefault(raddr, []).append((f"{s.get('proto')} port {rport}", s))
        for o in s.get("owners") or []:
            pid = _int(o.get("pid")) if isinstance(o, dict) else None
            if pid is not None:
                ix.pid_remotes.setdefault(pid, set()).add(raddr)
    return ix


@dataclass(frozen=True)
class Pivot:
    """One match in another pod."""

    kind: str  # "same file", "same executable", "same remote address"
    key: str  # the hash, path or address matched
    where: Where
    detail: str  # what it is there (path, command line, port)
    member: str
    line: int


@dataclass(frozen=True)
class Keys:
    """What an event can be pivoted on."""

    hashes: tuple[str, ...] = ()
    exes: tuple[str, ...] = ()
    remotes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.hashes or self.exes or self.remotes)


def keys_of(ev: Event, own: PodIndex) -> Keys:
    a = ev.attrs
    hashes: list[str] = []
    exes: list[str] = []
    remotes: list[str] = []
    if isinstance(a.get("sha256"), str):
        hashes.append(a["sha256"])
    pid = _int(a.get("pid"))
    exe = a.get("exe")
    if isinstance(exe, str) and exe:
        exes.append(exe.removesuffix(" (deleted)"))
        if pid is not None and pid in own.pid_sha:
            hashes.append(own.pid_sha[pid])
    if ev.source == "fs" and ev.entity in own.exes:
        exes.append(ev.entity)
    if isinstance(a.get("remote_addr"), str) and _int(a.get("remote_port")):
        remotes.append(a["remote_addr"])
    if pid is not None:
        remotes += sorted(own.pid_remotes.get(pid, ()))
    return Keys(tuple(dict.fromkeys(hashes)), tuple(dict.fromkeys(exes)),
                tuple(dict.fromkeys(remotes)))  # fmt: skip


Loader = Callable[[Path], Facts]


class CasePivots:
    """Pivot from an event of a case to the other pods (indexes built on first use)."""

    def __init__(self, ct: CaseTimeline, load: Loader | None = None) -> None:
        self.ct = ct
        self._load = load or (lambda p: load_facts(p, inventory=False))
        self._index: dict[str, PodIndex] = {}
        self.errors: dict[str, str] = {}

    def index(self, w: Where) -> PodIndex:
        if w.label not in self._index:
            try:
                self._index[w.label] = index_of(self._load(self.ct.path / w.file))
            except ExuviaError as err:  # an unreadable bundle: no pivots there, said so
                self.errors[w.label] = str(err)
                self._index[w.label] = PodIndex()
        return self._index[w.label]

    def pivots(self, ce: CaseEvent) -> tuple[Keys, list[Pivot]]:
        keys = keys_of(ce.event, self.index(ce.where))
        out: list[Pivot] = []
        for w in self.ct.wheres:
            if w == ce.where:
                continue
            ix = self.index(w)
            for sha in keys.hashes:
                for path, rec in ix.hashes.get(sha, []):
                    out.append(Pivot("same file", sha, w, path, rec.member, rec.line))
            for exe in keys.exes:
                for exe_sha, cmd, rec in ix.exes.get(exe, []):
                    same = " (same sha256)" if exe_sha and exe_sha in keys.hashes else ""
                    out.append(Pivot("same executable", exe, w, f"{cmd}{same}", rec.member,
                                     rec.line))  # fmt: skip
            for addr in keys.remotes:
                for what, rec in ix.remotes.get(addr, []):
                    out.append(Pivot("same remote address", addr, w, what, rec.member, rec.line))
        return keys, out

    def event_of(self, p: Pivot) -> CaseEvent | None:
        """The other pod's first event of the record the pivot found."""
        tl = self.ct.timeline_of(p.where.label)
        ev = tl.event_at_ref(p.member, p.line) if tl is not None else None
        return CaseEvent(p.where, ev) if ev is not None else None


__all__ = ["CasePivots", "Keys", "Pivot", "PodIndex", "index_of", "keys_of"]
