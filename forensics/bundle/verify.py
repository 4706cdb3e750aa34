"""Verify a bundle against its manifest, or, without one, against its checkpoints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.bundle.format import (
    CHECKPOINT_DIR,
    MANIFEST_NAME,
    check_version,
)
from forensics.bundle.reader import Member, StreamBroken, iter_members, load_json, open_stream
from forensics.errors import BundleError

#: at most this many names per problem list are kept in memory for the report
MAX_LISTED = 10_000


@dataclass
class VerifyReport:
    """What `exuvia verify` found. ``ok`` only when nothing is wrong."""

    path: str
    file_sha256: str = ""
    has_manifest: bool = False
    manifest_sha256: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    incomplete_reason: str = ""
    members_read: int = 0
    members_verified: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every member the bundle claims is present and matches."""
        return self.has_manifest and not (
            self.missing or self.extra or self.altered or self.truncated or self.problems
        )

    def failures(self) -> list[str]:
        lines = [f"missing: {n}" for n in self.missing]
        lines += [f"extra: {n}" for n in self.extra]
        lines += [f"altered: {n}" for n in self.altered]
        lines += [f"truncated: {n}" for n in self.truncated]
        lines += self.problems
        return lines


def _add(lst: list[str], name: str) -> None:
    if len(lst) < MAX_LISTED:
        lst.append(name)
    elif len(lst) == MAX_LISTED:
        lst.append("… (more not listed)")


def verify_bundle(path: str | Path) -> VerifyReport:
    """Read the whole bundle once and check every member's size and SHA-256."""
    report = VerifyReport(str(path))
    observed: dict[str, tuple[int, str]] = {}
    order: list[str] = []
    checkpoints: list[tuple[Member, Any]] = []
    manifest_member: Member | None = None
    after_manifest: list[str] = []
    broken: StreamBroken | None = None
    file_digest = hashlib.sha256()

    raw, stream = open_stream(path)
    try:

        def keep(name: str) -> bool:
            return name == MANIFEST_NAME or name.startswith(CHECKPOINT_DIR)

        try:
            for m in iter_members(stream, keep):
                report.members_read += 1
                if not m.regular:
                    report.problems.append(f"member {m.name!r} is a {m.type_name}, not a file")
                    continue
                if m.name in observed:
                    report.problems.append(f"duplicate member {m.name!r}")
                    continue
                if manifest_member is not None:
                    after_manifest.append(m.name)
                observed[m.name] = (m.read_bytes, m.sha256)
                order.append(m.name)
                if m.name == MANIFEST_NAME:
                    manifest_member = m
                elif m.name.startswith(CHECKPOINT_DIR) and m.content is not None:
                    try:
                        checkpoints.append((m, load_json(m.content, m.name)))
                    except BundleError as err:
                        report.problems.append(str(err))
        except StreamBroken as err:
            broken = err
    finally:
        raw.seek(0)
        while chunk := raw.read(1 << 20):
            file_digest.update(chunk)
        raw.close()
    report.file_sha256 = file_digest.hexdigest()

    if broken is not None:
        if broken.member is not None:
            _add(report.truncated, broken.member.name)
        report.problems.append(f"stream broken: {broken.reason}")

    cp_listed, cp_mismatched = _check_checkpoints(report, checkpoints, observed)

    if manifest_member is None or manifest_member.content is None:
        report.incomplete_reason = "no manifest: the capture was cut off before it finished"
        if broken is None:
            report.problems.append("stream broken: it ends before the manifest (truncated)")
        for name in cp_mismatched:
            _add(report.altered, name)
        verified = 0
        for name in order:
            if name in cp_listed or name.startswith(CHECKPOINT_DIR):
                verified += 1
            else:
                _add(report.unverifiable, name)
        report.members_verified = verified
        return report

    report.has_manifest = True
    report.manifest_sha256 = manifest_member.sha256
    for name in after_manifest:
        _add(report.extra, name)
    try:
        manifest = load_json(manifest_member.content, "manifest")
        if not isinstance(manifest, dict):
            raise BundleError("manifest is not a JSON object")
        check_version(manifest.get("version"))
    except BundleError as err:
        report.problems.append(str(err))
        return report
    report.manifest = {k: v for k, v in manifest.items() if k != "members"}
    report.complete = bool(manifest.get("complete"))
    report.incomplete_reason = str(manifest.get("incomplete_reason") or "")
    members = manifest.get("members")
    if not isinstance(members, list):
        report.problems.append("manifest has no member list")
        return report
    listed: set[str] = set()
    for entry in members:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            report.problems.append("manifest has a malformed member entry")
            continue
        name = entry["name"]
        listed.add(name)
        got = observed.get(name)
        if got is None:
            _add(report.missing, name)
        elif got[0] != entry.get("size"):
            _add(report.truncated if got[0] < int(entry.get("size") or 0) else report.altered, name)
        elif got[1] != entry.get("sha256"):
            _add(report.altered, name)
        else:
            report.members_verified += 1
    for name in order:
        if name not in listed and name != MANIFEST_NAME and name not in after_manifest:
            _add(report.extra, name)
    return report


def _check_checkpoints(
    report: VerifyReport,
    checkpoints: list[tuple[Member, Any]],
    observed: dict[str, tuple[int, str]],
) -> tuple[set[str], list[str]]:
    """Check the checkpoint chain; return the names it vouches for and those it contradicts."""
    vouched: set[str] = set()
    mismatched: list[str] = []
    prev = ""
    for member, body in checkpoints:
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            report.problems.append(f"checkpoint {member.name} is malformed")
            continue
        if body.get("prev_sha256", "") != prev:
            report.problems.append(f"checkpoint {member.name} does not chain to the previous one")
        prev = member.sha256
        for entry in body["members"]:
            if not isinstance(entry, dict):
                continue
            name = entry.get("name")
            got = observed.get(name) if isinstance(name, str) else None
            if got is None or not isinstance(name, str):
                continue
            if got == (entry.get("size"), entry.get("sha256")):
                vouched.add(name)
            else:
                mismatched.append(name)
    return vouched, mismatched
