"""What a finding is: a ranked, explained statement with the records that prove it.

A :class:`Finding` says *what* (a one-line title), *why it matters* (the
rationale), *how sure* (severity, and the strength of its evidence) and *where
the proof is*: :class:`Evidence` entries naming the bundle member and the
1-based line of each record (the same ``member``/``line`` a timeline event's
``ref`` carries, so any UI can pivot from a finding to the raw record, its
timeline row, its process or its file).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How much a finding should worry a responder (higher first)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class Strength(enum.IntEnum):
    """How directly the evidence shows what the title says (higher first).

    ``DIRECT``: a fact the kernel reported at capture (an ``exe`` link, an open
    descriptor, a status field). ``DERIVED``: a comparison of captured records
    (the overlay's upper layer, a package digest against the file's). ``HEURISTIC``:
    a pattern or a threshold (a name that looks like a kernel thread, a log line
    that mentions a tool, a start time past a grace period).
    """

    HEURISTIC = 1
    DERIVED = 2
    DIRECT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


#: what a UI should open for a piece of evidence
PIVOTS = ("process", "file", "socket", "log", "record")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One record that supports a finding.

    ``member``/``line``: where the record is (line 0: the whole member).
    ``pivot``: what it is about (one of :data:`PIVOTS`), ``key`` the thing to
    open (a host pid for a process or socket, a path for a file, None for a
    log line or a plain record). ``role`` says what it proves, ``text`` is a
    short description (both from the bundle: escape before showing).
    """

    member: str
    line: int
    pivot: str
    role: str
    text: str = ""
    key: int | str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "line": self.line,
            "pivot": self.pivot,
            "key": self.key,
            "role": self.role,
            "text": self.text,
        }


def finding_id(rule: str, subject: str) -> str:
    """A stable id: the rule and a short hash of what the finding is about.

    The same bundle always gives the same ids (subjects are built from host
    pids with their start ticks, paths, addresses), so a note or a ticket can
    name a finding."""
    digest = hashlib.sha256(f"{rule}\0{subject}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{rule}:{digest[:12]}"


@dataclass(frozen=True, slots=True)
class Finding:
    """A ranked statement about the capture, with its evidence."""

    id: str
    rule: str
    family: str
    severity: Severity
    strength: Strength
    title: str
    rationale: str
    subject: str
    evidence: tuple[Evidence, ...]
    #: when it happened (UTC ns), if the evidence says (a process start, a file's ctime)
    ts: int | None = None
    #: machine-readable details (pid, path, address, pattern...)
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: for a case: which bundle (namespace/pod/container) it comes from
    where: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def rank_key(self) -> tuple[int, int, str, str]:
        """Severity, then evidence strength, then rule and subject (stable)."""
        return (-int(self.severity), -int(self.strength), self.rule, self.subject)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "rule": self.rule,
            "family": self.family,
            "severity": self.severity.label,
            "strength": self.strength.label,
            "title": self.title,
            "rationale": self.rationale,
            "subject": self.subject,
            "ts": self.ts,
            "evidence": [e.to_dict() for e in self.evidence],
            "attrs": self.attrs,
        }
        if self.where:
            out["where"] = self.where
        return out


def rank(findings: list[Finding]) -> list[Finding]:
    """Most severe first; among equals, the strongest evidence first."""
    return sorted(findings, key=Finding.rank_key)


__all__ = ["PIVOTS", "Evidence", "Finding", "Severity", "Strength", "finding_id", "rank"]
