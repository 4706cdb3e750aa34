"""Scanning while capturing (``capture --scan``): the per-file hook the walk calls.

The filesystem acquirer reads every regular file once for its SHA-256, copied
or not; with ``--scan`` it hands each chunk it read to this hook in the same
pass (:meth:`CaptureScan.begin`, :meth:`feed`, :meth:`end`). The matches travel
with the file's record and the capture writes them to ``artifacts/yara/NNNNNN.jsonl``
inside the bundle, so evidence of a match exists even for a file that was not
copied (``--files changed``). Pure: it only sees bytes it is given.
"""

from __future__ import annotations

import time
from typing import Any

from forensics.scan.engine import ChunkScanner, ScanLimits
from forensics.scan.rules import CompiledRules
from forensics.textsafe import bytes_field

COLLECTOR = "yara"


class CaptureScan:
    """One per capture. The engine's scanner is made on first use, so a forked reader
    process makes its own (with its own timeout thread)."""

    def __init__(self, rules: CompiledRules, limits: ScanLimits | None = None) -> None:
        self.rules = rules
        self.limits = limits or ScanLimits()
        self._scanner: ChunkScanner | None = None
        self.files = 0

    @property
    def scanner(self) -> ChunkScanner:
        if self._scanner is None:
            self._scanner = ChunkScanner(self.rules.rules, self.limits)
        return self._scanner

    def header(self) -> dict[str, Any]:
        """The first yara record: which rules, which limits."""
        return {"kind": "yara_rules", **self.rules.describe(), "limits": self.limits.to_dict()}

    def begin(self, path: bytes, member: str | None = None) -> None:
        self.files += 1
        self.scanner.begin(member or "", None)
        self._path = path

    def feed(self, chunk: bytes | memoryview) -> None:
        self.scanner.feed(bytes(chunk))

    def end(self, sha256: str, member: str | None = None) -> list[dict[str, Any]]:
        """The file's match and skip records (``yara_match``, ``yara_skip``)."""
        matches, skips = self.scanner.end(sha256)
        now = time.time_ns()
        where = bytes_field("path", self._path)
        out: list[dict[str, Any]] = []
        for m in matches:
            rec = m.to_dict()
            rec.update(where, member=member, copied=member is not None, ts_ns=now)
            out.append(rec)
        for s in skips:
            out.append({**s.to_dict(), **where, "member": member, "ts_ns": now})
        return out
