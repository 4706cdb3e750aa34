"""Sibling comparison: among the replicas of one workload, what only some of them have.

Replicas of a Deployment run the same image with the same configuration, so
what one holds and the others do not is where to look first. For every group
of :meth:`Case.siblings` this compares, bundle by bundle:

* ``file``       entries changed, added or deleted since the container started (by
                 path; the value is the content's SHA-256, else type and size)
* ``executable`` what processes run (path without " (deleted)"; the value is the
                 SHA-256 of the captured binary when there is one) and executable
                 regular files added or changed since start
* ``process``    executable and command line (pids and times never differ usefully)
* ``listener``   listening sockets (protocol, address, port; a unix socket's path)
* ``outbound``   connections this replica opened (protocol, remote address, port);
                 connections accepted on one of its own listeners are left out
* ``env``        environment variables of its processes: names and a SHA-256 of
                 each value (never the value itself; a value the capture redacted
                 stays ``redacted``)

A difference is a key (a path, an address...) that only a minority of the
group holds (``only``), that a minority lacks (``missing``), or whose value a
minority holds differently from a clear majority (``differs``). A key whose
value is different in every replica (a log file, a per-pod id) is noise and is
counted, not listed. Each bundle scores the sum over the differences it is odd
in of the kind's weight times the difference's rarity, so the replica that
differs most, and in what matters most, comes first.

Pure: it reads captured bundles (through the findings' one-pass loader) and
never a live system.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.case.model import Case, CaseBundle, load_case
from forensics.errors import ExuviaError
from forensics.findings.facts import Facts, Rec, argv, environ, exe_path
from forensics.findings.load import load_facts

DIFF_SCHEMA = "exuvia-case-diff"
DIFF_VERSION = 1
KINDS = ("executable", "listener", "outbound", "process", "file", "env")
#: how much a difference of each kind says about a compromise ("severity-ish")
WEIGHT = {
    "executable": 5.0,
    "listener": 4.0,
    "outbound": 4.0,
    "process": 3.0,
    "file": 2.0,
    "env": 1.0,
}
#: lacking what the others have says less than having what they do not
MISSING_FACTOR = 0.5
REDACTED = "redacted"


def ref_of(rec: Rec) -> str:
    """``member:line``, the form findings and the timeline use to open a raw record."""
    return f"{rec.member}:{rec.line}"


@dataclass
class Traits:
    """One bundle's comparable facts: kind -> key -> value -> record refs."""

    by_kind: dict[str, dict[str, dict[str, list[str]]]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )

    def add(self, kind: str, key: str, value: str, ref: str | None) -> None:
        refs = self.by_kind[kind].setdefault(key, {}).setdefault(value, [])
        if ref is not None and ref not in refs and len(refs) < 20:
            refs.append(ref)


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _mode(rec: Rec) -> int:
    try:
        return int(str(rec.get("mode") or "0"), 8)
    except ValueError:
        return 0


def traits_of(facts: Facts) -> Traits:
    """What of one bundle's facts is compared with its siblings'."""
    t = Traits()
    capture = facts.capture_pids()
    # files added, changed or deleted since start
    for f in facts.changed:
        path = f.get("path")
        if not isinstance(path, str):
            continue
        ftype = str(f.get("type") or "?")
        if ftype == "whiteout" or f.get("deleted") is True:
            value = "deleted"
        elif isinstance(f.get("sha256"), str):
            value = "sha256:" + str(f.get("sha256"))
        else:
            value = f"{ftype}, {_int(f.get('size')) or 0} bytes"
        t.add("file", path, value, ref_of(f))
        if ftype == "file" and _mode(f) & 0o111 and value.startswith("sha256:"):
            t.add("executable", path, value, ref_of(f))
    # executables that run, with the captured binary's hash when there is one
    binary_by_pid: dict[int, Rec] = {}
    for b in facts.binaries:
        pid = _int(b.get("pid"))
        if pid is not None:
            binary_by_pid[pid] = b
    for p in facts.processes:
        pid = _int(p.get("pid"))
        if pid in capture:
            continue
        exe = exe_path(p)
        cmd = " ".join(argv(p))
        if exe is not None:
            binary = binary_by_pid.get(pid) if pid is not None else None
            sha = binary.get("sha256") if binary is not None else None
            if isinstance(sha, str) and binary is not None:
                t.add("executable", exe, "sha256:" + sha, ref_of(binary))
            else:
                on_disk = facts.files.get(exe)
                disk_sha = on_disk.get("sha256") if on_disk is not None else None
                value = "sha256:" + disk_sha if isinstance(disk_sha, str) else "running"
                t.add("executable", exe, value, ref_of(p))
        t.add("process", f"{exe or '?'}  {cmd}".rstrip(), "running", ref_of(p))
        env = environ(p)
        redacted = p.get("environ_redacted")
        hidden = set(redacted) if isinstance(redacted, list) else set()
        for name, value in (env or {}).items():
            shown = REDACTED if name in hidden or value == "<redacted>" else _sha(value)
            t.add("env", name, shown, ref_of(p))
    # sockets
    listening: set[tuple[str, int]] = set()
    for s in facts.sockets:
        port = _int(s.get("local_port"))
        if s.get("state") == "LISTEN" and port is not None:
            listening.add((str(s.get("proto")), port))
    for s in facts.sockets:
        proto = str(s.get("proto") or "?")
        state = s.get("state")
        lport, rport = _int(s.get("local_port")), _int(s.get("remote_port"))
        if s.get("family") == "unix":
            if state == "LISTEN" and isinstance(s.get("path"), str) and s.get("path"):
                t.add("listener", f"unix {s.get('path')}", "listening", ref_of(s))
            continue
        if state == "LISTEN" or (proto == "udp" and not rport and lport):
            t.add("listener", f"{proto} {s.get('local_addr')}:{lport}", "listening", ref_of(s))
        elif rport and lport is not None and (proto, lport) not in listening:
            t.add("outbound", f"{proto} {s.get('remote_addr')}:{rport}", "connected", ref_of(s))
    return t


@dataclass
class Difference:
    """One key that some replicas of a group hold differently from the rest."""

    group: str
    kind: str
    key: str
    change: str  # only (a minority has it), missing (a minority lacks it), differs
    bundles: list[str]  # the odd ones' labels
    of: int  # the group's size
    values: dict[str, list[str]]  # label -> its values (hashes, never secrets)
    #: label -> member:line of the records (for ``missing``: of those that have it)
    refs: dict[str, list[str]]
    usual: list[str] = field(default_factory=list)  # the majority's value(s), for differs

    @property
    def rarity(self) -> float:
        return 1.0 - len(self.bundles) / self.of

    @property
    def weight(self) -> float:
        w = WEIGHT[self.kind] * self.rarity
        return w * MISSING_FACTOR if self.change == "missing" else w

    def title(self) -> str:
        what = {"only": "only in", "missing": "missing in", "differs": "different in"}
        return f"{self.kind} {self.key}: {what[self.change]} {len(self.bundles)} of {self.of}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "kind": self.kind,
            "key": self.key,
            "change": self.change,
            "bundles": self.bundles,
            "of": self.of,
            "weight": round(self.weight, 3),
            "values": self.values,
            "usual": self.usual,
            "refs": self.refs,
        }


@dataclass
class GroupDiff:
    """The comparison of one group of replicas."""

    name: str
    labels: list[str]
    differences: list[Difference] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    #: keys whose value differs in every replica (not listed: per-replica noise)
    varying: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # label -> why not compared

    @property
    def ranking(self) -> list[tuple[str, float]]:
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))

    def of_bundle(self, label: str) -> list[Difference]:
        return [d for d in self.differences if label in d.bundles]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.name,
            "bundles": self.labels,
            "ranking": [
                {"bundle": lab, "score": round(s, 3), "differences": len(self.of_bundle(lab))}
                for lab, s in self.ranking
            ],
            "differences": [d.to_dict() for d in self.differences],
            "varying_everywhere": self.varying,
            "not_compared": self.errors,
        }


def coarse_key(kind: str, key: str) -> str | None:
    """What a key is *about*, when part of it is expected to differ per replica: a
    listener or a connection without its address (a pod binds its own IP, replicas
    reach different backends), a process without its arguments (a pod's name in
    them). None: the whole key matters."""
    if kind in ("listener", "outbound"):
        proto, _, addr = key.partition(" ")
        return f"{kind} {proto} :{addr.rpartition(':')[2]}" if proto != "unix" else None
    if kind == "process":
        return f"process {key.partition('  ')[0]}"
    return None


def _drop_per_replica(diffs: list[Difference], n: int) -> tuple[list[Difference], int]:
    """Leave out ``only`` differences that are one thing with a per-replica value:
    when every replica of the group has its own variant of the same coarse key
    (each pod listening on its own IP, every worker given its pod's name), no
    replica is odd in it. Returns the kept ones and how many keys were dropped."""
    groups: dict[str, list[Difference]] = {}
    for d in diffs:
        ck = coarse_key(d.kind, d.key) if d.change == "only" else None
        if ck is not None:
            groups.setdefault(ck, []).append(d)
    drop: set[int] = set()
    for members in groups.values():
        covered = {lab for d in members for lab in d.bundles}
        if len(members) > 1 and len(covered) == n:
            drop |= {id(d) for d in members}
    return [d for d in diffs if id(d) not in drop], len(
        {coarse_key(d.kind, d.key) for d in diffs if id(d) in drop}
    )


def _majority(sigs: dict[str, frozenset[str]]) -> frozenset[str] | None:
    """The value set more than half of these bundles share (and at least two)."""
    counts: dict[frozenset[str], int] = {}
    for s in sigs.values():
        counts[s] = counts.get(s, 0) + 1
    best, n = max(counts.items(), key=lambda kv: kv[1])
    return best if n * 2 > len(sigs) and n >= 2 else None


def compare(name: str, traits: dict[str, Traits]) -> GroupDiff:
    """Compare the traits of one group's bundles (label -> Traits)."""
    labels = list(traits)
    g = GroupDiff(name, labels, scores=dict.fromkeys(labels, 0.0))
    n = len(labels)
    if n < 2:
        return g
    for kind in KINDS:
        keys = sorted({k for t in traits.values() for k in t.by_kind[kind]})
        for key in keys:
            held = {
                lab: t.by_kind[kind][key] for lab, t in traits.items() if key in t.by_kind[kind]
            }
            sigs = {lab: frozenset(v) for lab, v in held.items()}

            def values(labs: Iterable[str], h: dict[str, dict[str, list[str]]] = held) -> Any:
                return {lab: sorted(h[lab]) for lab in labs if lab in h}

            def refs(labs: Iterable[str], h: dict[str, dict[str, list[str]]] = held) -> Any:
                return {
                    lab: sorted({r for rs in h[lab].values() for r in rs})
                    for lab in labs
                    if lab in h
                }

            if len(held) < n:
                if len(held) * 2 <= n:  # a minority has it
                    odd = [lab for lab in labels if lab in held]
                    g.differences.append(
                        Difference(name, kind, key, "only", odd, n, values(odd), refs(odd))
                    )
                    continue
                odd = [lab for lab in labels if lab not in held]
                usual = _majority(sigs)
                g.differences.append(  # refs: the records of those that have it
                    Difference(
                        name,
                        kind,
                        key,
                        "missing",
                        odd,
                        n,
                        {},
                        refs(held),
                        sorted(usual) if usual else [],
                    )
                )
            if len(held) < 2 or len(set(sigs.values())) == 1:
                continue
            usual = _majority(sigs)
            if usual is None:
                if len(set(sigs.values())) == len(sigs):
                    g.varying += 1
                continue
            odd = [lab for lab in labels if lab in sigs and sigs[lab] != usual]
            g.differences.append(
                Difference(
                    name, kind, key, "differs", odd, n, values(odd), refs(odd), sorted(usual)
                )
            )
    g.differences, dropped = _drop_per_replica(g.differences, n)
    g.varying += dropped
    for d in g.differences:
        for lab in d.bundles:
            g.scores[lab] += d.weight
    g.differences.sort(key=lambda d: (-d.weight, KINDS.index(d.kind), d.key))
    return g


@dataclass
class CaseDiff:
    case: Case
    groups: list[GroupDiff]
    #: captured bundles in no group of two or more (nothing to compare them with)
    alone: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DIFF_SCHEMA,
            "version": DIFF_VERSION,
            "case": {
                "id": self.case.case_id,
                "directory": str(self.case.path),
                "target": self.case.target,
                "state": self.case.state,
            },
            "groups": [g.to_dict() for g in self.groups],
            "not_compared": self.alone,
        }


Loader = Callable[[Path], Facts]


def _load(path: Path) -> Facts:
    return load_facts(path, inventory=False)


def diff_case(
    path: str | Path,
    *,
    load: Loader = _load,
    progress: Callable[[str], None] | None = None,
) -> CaseDiff:
    """Compare the replicas of every workload of the case at ``path``."""
    case = load_case(path)
    note = progress or (lambda _m: None)
    groups: list[GroupDiff] = []
    grouped: set[str] = set()
    for name, members in sorted(case.siblings().items()):
        if len(members) < 2:
            continue
        traits: dict[str, Traits] = {}
        errors: dict[str, str] = {}
        for b in members:
            grouped.add(b.label)
            note(f"reading {b.label}")
            try:
                traits[b.label] = traits_of(load(_path(b)))
            except ExuviaError as err:
                errors[b.label] = str(err)
        g = compare(name, traits)
        g.errors = errors
        groups.append(g)
    alone = [b.label for b in case.captured if b.label not in grouped]
    return CaseDiff(case, groups, alone)


def _path(b: CaseBundle) -> Path:
    assert b.path is not None  # captured bundles have one
    return b.path


__all__ = [
    "DIFF_SCHEMA",
    "KINDS",
    "WEIGHT",
    "CaseDiff",
    "Difference",
    "GroupDiff",
    "Traits",
    "compare",
    "diff_case",
    "traits_of",
]
