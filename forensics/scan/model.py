"""What a scan found, as plain data: matches, skips, and the record of the scan.

Every string that came from the rules (identifiers, tags, metadata) or from the
evidence (matched bytes, member names) is kept as *escaped text*: bytes that
are not printable ASCII are ``\\xNN``, control and bidirectional characters in
text are visible escapes (forensics.textsafe.printable). A reader shows them
as they are and never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forensics.memory.core import locate
from forensics.textsafe import printable

#: matched bytes kept per string (the length is always the real one)
MAX_DATA = 64
#: strings kept per match (all are counted)
MAX_STRINGS = 50
#: metadata text kept per value
MAX_META = 1024


def escape_bytes(data: bytes) -> str:
    """``data`` as ASCII text: printable ASCII kept, ``\\`` doubled, the rest ``\\xNN``."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def safe_text(value: str, limit: int = MAX_META) -> str:
    text = printable(value)
    return text if len(text) <= limit else text[:limit] + "…"


def meta_value(value: object) -> str | int | float | bool:
    """A rule's metadata value, JSON-safe: text escaped and bounded, bytes escaped."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes):
        return safe_text(escape_bytes(value))
    return safe_text(str(value))


@dataclass(frozen=True, slots=True)
class StringHit:
    """One matched string: the pattern's identifier, where, how long, what (escaped)."""

    id: str
    offset: int
    length: int
    data: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "offset": self.offset, "length": self.length, "data": self.data}


@dataclass
class Match:
    """One rule matching one member."""

    rule: str
    namespace: str
    tags: list[str]
    meta: dict[str, str | int | float | bool]
    member: str
    path: str | None = None  # the target's path, for files/ and elf/ members
    member_sha256: str = ""
    strings: list[StringHit] = field(default_factory=list)
    string_count: int = 0  # every matched string, also those not kept
    windowed: bool = False  # found while scanning the member in windows
    #: a process memory core's: its pid and its ``memory`` record's regions, so the
    #: match and each string also say where they are in the process (address, region)
    pid: int | None = None
    regions: list[dict[str, Any]] | None = None

    @property
    def offset(self) -> int:
        return min((s.offset for s in self.strings), default=0)

    @property
    def family(self) -> str:
        """What a finding groups by: namespace and rule."""
        return f"{self.namespace}:{self.rule}"

    def to_dict(self) -> dict[str, Any]:
        d = self._fields()
        if self.regions is not None:
            d.update(pid=self.pid, **locate(self.regions, self.offset))
            for hit in d["strings"]:
                hit.update(locate(self.regions, hit["offset"]))
        return d

    def _fields(self) -> dict[str, Any]:
        return {
            "kind": "yara_match",
            "rule": self.rule,
            "namespace": self.namespace,
            "tags": self.tags,
            "meta": self.meta,
            "member": self.member,
            "path": self.path,
            "member_sha256": self.member_sha256,
            "offset": self.offset,
            "strings": [s.to_dict() for s in self.strings],
            "string_count": self.string_count,
            "windowed": self.windowed,
        }


@dataclass(frozen=True, slots=True)
class ScanSkip:
    """A member (or a window of one) that was not scanned, and why."""

    member: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "yara_skip", "member": self.member, "reason": self.reason}


@dataclass
class ScanResult:
    """One scan of one bundle with one rule set."""

    bundle: str
    rules: dict[str, Any]
    manifest_sha256: str | None = None
    started_ns: int = 0
    finished_ns: int = 0
    members_scanned: int = 0
    bytes_scanned: int = 0
    windowed_members: int = 0
    matches: list[Match] = field(default_factory=list)
    skips: list[ScanSkip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    complete: bool = True
    limits: dict[str, Any] = field(default_factory=dict)
    reference_ns: int | None = None  # the capture's time (end of acquisition)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "manifest_sha256": self.manifest_sha256,
            "rules": self.rules,
            "started_ns": self.started_ns,
            "finished_ns": self.finished_ns,
            "reference_ns": self.reference_ns,
            "complete": self.complete,
            "limits": self.limits,
            "members_scanned": self.members_scanned,
            "bytes_scanned": self.bytes_scanned,
            "windowed_members": self.windowed_members,
            "matches": [m.to_dict() for m in self.matches],
            "skips": [s.to_dict() for s in self.skips],
            "warnings": self.warnings,
        }
