"""Read what the rules need from a bundle, in one pass over its stream.

Records are kept with their member and 1-based line (the timeline's ``ref``).
Processes, sockets and binaries are kept whole (hundreds); of the filesystem
(maybe millions of entries) only what a rule can name: entries changed or
deleted since start, executables, symlinks, world-writable directories and the
paths rule families list in ``KEEP_PATHS``. Log lines are matched against every
family's ``LOG_PATTERNS`` as they stream by; only matching lines are kept.
The same pass feeds the software inventory (forensics/inventory) the members it
reads (ELF extracts, copied executables, package metadata), so the inventory
rules need no second pass.

The bundle is untrusted: lines are cut at a limit, the number of kept log hits
and skips is capped (and the excess counted), and a stream that ends early
keeps what came before it, with the reason in ``Facts.cut``.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from forensics.bundle.format import (
    CUSTODY_NAME,
    HEADER_NAME,
    MANIFEST_NAME,
    SKIPS_NAME,
    check_version,
    decode_path,
)
from forensics.bundle.reader import load_json
from forensics.errors import BundleError
from forensics.findings.facts import Facts, LogHit, Rec
from forensics.findings.rules import families, log_patterns
from forensics.inventory import load as inv_load
from forensics.inventory.analyze import inventory_from_snapshot
from forensics.textsafe import no_surrogates
from forensics.timeline.bundleio import MemberStream, iter_lines
from forensics.timeline.fs import parse_json_line
from forensics.timeline.member_pass import each_member

MAX_RECORD = 16 << 20
MAX_LOG_LINE = 1 << 20
MAX_JSON = 64 << 20
MAX_LOG_HITS = 10_000
MAX_SKIPS = 10_000
HIT_TEXT = 300
#: copied files scanned as logs (besides the runtime's logs under logs/)
LOG_DIRS = (b"/var/log/",)
LOG_SUFFIXES = (b".log", b".out", b".err")
_ARTIFACT = re.compile(r"artifacts/([a-z_]+)(?:\.jsonl|/[^/]+\.jsonl|\.\d+\.jsonl)")


def collector_of(member: str) -> str | None:
    """The collector whose records a member holds (``artifacts/processes.jsonl`` ->
    processes; chunked layouts ``artifacts/processes/000001.jsonl`` too)."""
    m = _ARTIFACT.fullmatch(member)
    return m.group(1) if m else None


def is_log_file(raw_path: bytes) -> bool:
    return raw_path.startswith(LOG_DIRS) or raw_path.endswith(LOG_SUFFIXES)


class _Pass:
    def __init__(self, facts: Facts, inventory: bool) -> None:
        self.facts = facts
        self.inv_snap = inv_load.Snapshot(bundle=facts.bundle) if inventory else None
        self.inv = inv_load.MemberLoader(self.inv_snap) if self.inv_snap is not None else None
        self.keep_paths = {p for m in families() for p in getattr(m, "KEEP_PATHS", ())}
        #: collectors whose records a family asks for (``RECORD_COLLECTORS``), kept whole
        self.extra = {c for m in families() for c in getattr(m, "RECORD_COLLECTORS", ())}
        self.patterns = log_patterns()
        self.any_pattern = (
            re.compile("|".join(f"(?:{p.pattern})" for _, p in self.patterns), re.IGNORECASE)
            if self.patterns
            else None
        )
        self.hits_dropped = 0
        self.skips_dropped = 0
        self.bad_lines: dict[str, int] = {}

    # -- members ------------------------------------------------------------------
    def member(self, info: tarfile.TarInfo, f: IO[bytes]) -> None:
        name = info.name
        if name in (HEADER_NAME, MANIFEST_NAME, "artifacts/target.json"):
            self._json(name, f)
            return
        collector = {SKIPS_NAME: "skips", CUSTODY_NAME: "custody"}.get(name) or collector_of(name)
        if collector is not None:
            self._records(name, info.size, f, collector)
        elif name.startswith("logs/") or (
            name.startswith("files/") and is_log_file(decode_path(name[5:]))
        ):
            self._log(name, info.size, f)
        elif self.inv is not None:
            self.inv.member(info, f)

    def _json(self, name: str, f: IO[bytes]) -> None:
        data = f.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            self.facts.problems.append(f"{name}: larger than {MAX_JSON} bytes; not read")
            return
        try:
            doc = no_surrogates(load_json(data, name))
        except BundleError as err:
            self.facts.problems.append(str(err))
            return
        if not isinstance(doc, dict):
            self.facts.problems.append(f"{name}: not a JSON object")
            return
        if name == HEADER_NAME:
            check_version(doc.get("version"))
            self.facts.header = doc
        elif name == MANIFEST_NAME:
            check_version(doc.get("version"))
            self.facts.manifest = doc
            self.facts.manifest_sha256 = hashlib.sha256(data).hexdigest()
            if self.inv_snap is not None:
                self.inv_snap.manifest = doc
        else:
            self.facts.target = doc
            if self.inv_snap is not None:
                self.inv_snap.artifacts["target"] = [doc]

    def _records(self, name: str, size: int, f: IO[bytes], collector: str) -> None:
        facts = self.facts
        keep_inv = self.inv_snap is not None and collector in inv_load.ARTIFACTS
        inv_list = (
            self.inv_snap.artifacts.setdefault(collector, [])
            if self.inv_snap is not None and keep_inv
            else None
        )
        for lineno, raw in enumerate(iter_lines(MemberStream(name, size, f), MAX_RECORD), 1):
            if not raw or raw.isspace():
                continue
            rec, _why = parse_json_line(raw) if type(raw) is bytes else (None, "too long")
            if not isinstance(rec, dict):
                self.bad_lines[name] = self.bad_lines.get(name, 0) + 1
                continue
            if inv_list is not None:
                inv_list.append(rec)
            kind = rec.get("kind")
            if collector == "processes" and kind == "process":
                facts.processes.append(Rec(name, lineno, rec))
            elif collector == "network" and kind == "socket":
                facts.sockets.append(Rec(name, lineno, rec))
            elif collector == "binaries" and kind == "binary":
                facts.binaries.append(Rec(name, lineno, rec))
            elif collector == "filesystem":
                self._fs(Rec(name, lineno, rec))
            elif collector in self.extra:
                facts.records.setdefault(collector, []).append(Rec(name, lineno, rec))
            elif collector in ("skips", "custody"):
                kept = facts.skips if collector == "skips" else facts.custody
                if len(kept) < MAX_SKIPS:
                    kept.append(rec)
                else:
                    self.skips_dropped += 1

    def _fs(self, rec: Rec) -> None:
        facts = self.facts
        path = rec.get("path")
        if not isinstance(path, str):
            return
        ftype = rec.get("type")
        changed = rec.get("changed")
        if changed is not None:
            facts.upper_known = True
        keep = path in self.keep_paths
        if (
            changed is True or ftype == "whiteout" or rec.get("deleted") is True
        ) and ftype != "dir":
            facts.changed.append(rec)
            keep = True
        try:
            mode = int(str(rec.get("mode") or "0"), 8)
        except ValueError:
            mode = 0
        if ftype == "file" and mode & 0o111:
            facts.executables.setdefault(path.rsplit("/", 1)[-1], []).append(path)
            keep = True
        elif ftype == "symlink" and isinstance(rec.get("link_target"), str):
            facts.symlinks[path] = rec.get("link_target")
            keep = True
        elif ftype == "dir" and mode & 0o002:
            facts.writable_dirs.add(path)
        if keep:
            facts.files[path] = rec

    def _log(self, name: str, size: int, f: IO[bytes]) -> None:
        self.facts.logs_scanned.append(name)
        if self.any_pattern is None:
            return
        hits = self.facts.log_hits
        for lineno, raw in enumerate(iter_lines(MemberStream(name, size, f), MAX_LOG_LINE), 1):
            text = raw.decode("utf-8", "replace")
            if not self.any_pattern.search(text):
                continue
            for pid, pattern in self.patterns:
                if pattern.search(text):
                    if len(hits) < MAX_LOG_HITS:
                        hits.append(LogHit(name, lineno, pid, text.strip()[:HIT_TEXT]))
                    else:
                        self.hits_dropped += 1

    # -- the end ------------------------------------------------------------------
    def finish(self) -> None:
        facts = self.facts
        for name, n in sorted(self.bad_lines.items()):
            facts.problems.append(f"{name}: {n} malformed record(s) skipped")
        if self.hits_dropped:
            facts.problems.append(
                f"{self.hits_dropped} more matching log lines past {MAX_LOG_HITS} not kept"
            )
        if self.skips_dropped:
            facts.problems.append(f"{self.skips_dropped} more skips past {MAX_SKIPS} not kept")
        if not facts.manifest:
            facts.problems.append(
                "no manifest: the capture was cut off; what its records say is not verified"
            )
        if self.inv_snap is not None:
            inv_load.finish(self.inv_snap)
            facts.inventory = inventory_from_snapshot(self.inv_snap)


def load_facts(
    bundle: str | Path,
    *,
    inventory: bool = True,
    progress: Callable[[str], None] | None = None,
    only: set[str] | None = None,
) -> Facts:
    """Everything the rules read from ``bundle``. BundleError when it is not a bundle.

    A bundle with no manifest (a killed capture) is read again, only the members
    its checkpoints vouch for (``only``), when it has any."""
    facts = Facts(bundle=str(bundle))
    p = _Pass(facts, inventory)
    note = progress or (lambda _m: None)
    note("reading the bundle")
    done = each_member(bundle, p.member, only)
    if done.cut is not None:
        facts.cut = f"the stream ends early or is corrupt after {done.members} members ({done.cut})"
        facts.problems.append(facts.cut + "; the findings cover what came before")
    if not facts.header:
        raise BundleError(f"{bundle}: not an exuvia bundle (no {HEADER_NAME} header)")
    if not facts.manifest and only is None:
        from forensics.bundle.verify import cut_off_banner, verify_bundle  # noqa: PLC0415

        report = verify_bundle(bundle)
        if report.checkpoints_valid:
            vouched = load_facts(
                bundle, inventory=inventory, progress=progress, only=set(report.vouched_names)
            )
            vouched.cut = vouched.cut or facts.cut
            vouched.cut_off_banner = cut_off_banner(report)
            return vouched
        facts.cut_off_banner = cut_off_banner(report)
    note("analysing executables")
    p.finish()
    return facts


__all__ = ["collector_of", "is_log_file", "load_facts"]
