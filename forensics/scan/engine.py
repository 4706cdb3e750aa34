"""Scanning one member's bytes as they stream by, with bounded memory.

YARA-X scans a whole buffer. A member up to ``window`` bytes is scanned whole;
a larger one (a memory core, a big file) is scanned in windows of ``window``
bytes, each starting ``overlap`` bytes before the previous one ended, so a
string shorter than the overlap is never missed at a boundary; matches seen
twice in the overlap are kept once. Conditions about the whole file
(``filesize``, a header at offset 0 of a later window) only hold per window:
a windowed member's matches say so (``windowed``).

The engine's own timeout bounds each scan: a rule too slow for the data is a
recorded skip of that member, never a hang.
"""

from __future__ import annotations

from dataclasses import dataclass

import yara_x

from forensics.scan.model import (
    MAX_DATA,
    MAX_STRINGS,
    Match,
    ScanSkip,
    StringHit,
    escape_bytes,
    meta_value,
)
from forensics.textsafe import printable

#: the scanner stops recording a pattern's matches past this many (per scan)
MAX_MATCHES_PER_PATTERN = 1000


@dataclass(frozen=True, slots=True)
class ScanLimits:
    window: int = 64 << 20
    overlap: int = 1 << 20
    timeout_s: int = 60

    def __post_init__(self) -> None:
        if self.window <= 0 or self.overlap < 0 or self.overlap >= self.window:
            raise ValueError("the scan window must be larger than its overlap")
        if self.timeout_s <= 0:
            raise ValueError("the scan timeout must be at least one second")

    def to_dict(self) -> dict[str, int]:
        return {"window": self.window, "overlap": self.overlap, "timeout_s": self.timeout_s}


class ChunkScanner:
    """Feed a member's bytes chunk by chunk; :meth:`end` gives its matches and skips.

    One instance scans many members, one after another (``begin`` … ``end``)."""

    def __init__(self, rules: yara_x.Rules, limits: ScanLimits | None = None) -> None:
        self.limits = limits or ScanLimits()
        self.scanner = yara_x.Scanner(rules)
        self.scanner.set_timeout(self.limits.timeout_s)
        self.scanner.max_matches_per_pattern(MAX_MATCHES_PER_PATTERN)
        self._member = ""
        self._path: str | None = None
        self._parts: list[bytes] = []
        self._held = 0
        self._base = 0  # absolute offset of the first held byte
        self._windows = 0
        self._failed: str | None = None
        self._matches: dict[tuple[str, str], Match] = {}
        self._seen: set[tuple[str, str, str, int]] = set()
        self.bytes_scanned = 0

    def begin(self, member: str, path: str | None = None) -> None:
        self._member, self._path = member, path
        self._parts, self._held, self._base, self._windows = [], 0, 0, 0
        self._failed = None
        self._matches, self._seen = {}, set()

    def feed(self, chunk: bytes) -> None:
        if self._failed is not None or not chunk:
            return
        self._parts.append(chunk)
        self._held += len(chunk)
        while self._held >= self.limits.window and self._failed is None:
            data = b"".join(self._parts)
            window, rest = data[: self.limits.window], data[self.limits.window :]
            self._scan(window)
            keep = window[-self.limits.overlap :] if self.limits.overlap else b""
            self._base += len(window) - len(keep)
            self._parts = [keep, rest] if rest else [keep]
            self._held = len(keep) + len(rest)

    def end(self, sha256: str = "") -> tuple[list[Match], list[ScanSkip]]:
        """Scan what is left; the member's matches (with its hash) and skips."""
        skips: list[ScanSkip] = []
        if self._failed is None and (self._held > self.limits.overlap or self._windows == 0):
            self._scan(b"".join(self._parts))
        if self._failed is not None:
            skips.append(ScanSkip(self._member, self._failed))
        matches = list(self._matches.values())
        for m in matches:
            m.member_sha256 = sha256
            m.windowed = self._windows > 1
            m.strings.sort(key=lambda s: (s.offset, s.id))
        self._parts, self._held = [], 0
        return matches, skips

    @property
    def windows(self) -> int:
        return self._windows

    def _scan(self, data: bytes) -> None:
        start = self._base
        self._windows += 1
        self.bytes_scanned += len(data)
        try:
            results = self.scanner.scan(data)
        except yara_x.TimeoutError:
            self._failed = (
                f"scan timed out after {self.limits.timeout_s} s at offset {start} "
                "(a rule too slow for this data); not scanned further"
            )
            return
        except yara_x.ScanError as err:
            self._failed = f"the engine could not scan it at offset {start}: {printable(str(err))}"
            return
        for rule in results.matching_rules:
            key = (rule.namespace, rule.identifier)
            m = self._matches.get(key)
            if m is None:
                m = Match(
                    rule=printable(rule.identifier),
                    namespace=printable(rule.namespace),
                    tags=[printable(t) for t in rule.tags],
                    meta={printable(k): meta_value(v) for k, v in rule.metadata},
                    member=self._member,
                    path=self._path,
                )
                self._matches[key] = m
            for pattern in rule.patterns:
                for hit in pattern.matches:
                    seen = (rule.namespace, rule.identifier, pattern.identifier, start + hit.offset)
                    if seen in self._seen:
                        continue
                    self._seen.add(seen)
                    m.string_count += 1
                    if len(m.strings) < MAX_STRINGS:
                        raw = data[hit.offset : hit.offset + min(hit.length, MAX_DATA)]
                        m.strings.append(
                            StringHit(
                                printable(pattern.identifier),
                                start + hit.offset,
                                hit.length,
                                escape_data(raw, hit.length),
                            )
                        )


def escape_data(raw: bytes, length: int) -> str:
    text = escape_bytes(raw)
    return text + "…" if length > len(raw) else text
