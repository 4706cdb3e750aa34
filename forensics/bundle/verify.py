"""Verify a bundle against its manifest, or, without one, against its checkpoints.

Member hashes cover member contents; :mod:`forensics.bundle.seal` covers every
other byte of the file (format 1.1). An optional Ed25519 signature after the
manifest is checked against the key it names and, with ``public_key``, against
the examiner's key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from forensics.bundle import seal
from forensics.bundle.format import (
    CHECKPOINT_DIR,
    CUSTODY_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    check_version,
    is_record_member,
    record_collector,
)
from forensics.bundle.reader import (
    Member,
    StreamBroken,
    iter_members,
    load_json,
    open_stream,
    unsafe_name,
)
from forensics.errors import BundleError

#: at most this many names per problem list are kept in memory for the report
MAX_LISTED = 10_000
#: the custody log and signature members are held for cross-checks up to this size
MAX_KEPT = 64 << 20
#: `exuvia verify`'s exit status for a cut-off bundle (docs/bundle-format.md)
EXIT_CUT_OFF = 3
#: what a stream that was merely cut short (not corrupted) breaks with
_CUT_REASONS = ("truncated", "unexpected end of data", "ends inside a member", "empty file")


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
    #: the signing key's fingerprint when the signature verifies for the key it names
    signed_by: str | None = None
    sidecar_checked: bool = False
    notes: list[str] = field(default_factory=list)
    #: checkpoints read whose chain holds and whose every entry matches, in order
    checkpoints_valid: int = 0
    #: ``seq`` of the last of those (0: none)
    last_checkpoint: int = 0
    #: records (lines of artifacts/*.jsonl members) in the members vouched for:
    #: by the manifest when there is one, else by the checkpoints
    records_vouched: int = 0
    #: the stream ended cleanly (no decoding error) before a manifest was read
    ends_early: bool = False
    #: without a manifest: the members the checkpoints vouch for, in stream order
    vouched_names: list[str] = field(default_factory=list)
    #: records per collector in the members vouched for
    records_by_collector: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every member the bundle claims is present and matches."""
        return self.has_manifest and not (
            self.missing or self.extra or self.altered or self.truncated or self.problems
        )

    @property
    def cut_off(self) -> bool:
        """A killed capture: no manifest, the stream simply ends, and every member
        a checkpoint lists matches it (nothing altered, nothing else wrong)."""
        return (
            not self.has_manifest
            and self.ends_early
            # nothing read: a capture killed before its first member leaves that only
            # under the writer's in-progress name; anywhere else it is no bundle at all
            and (self.members_read > 0 or self.path.endswith(".partial"))
            and not (self.missing or self.extra or self.altered)
            and all(p.startswith("stream broken") for p in self.problems)
        )

    @property
    def exit_status(self) -> int:
        """0 verified, 3 cut off (what the checkpoints vouch for matches), 1 failed."""
        if self.ok:
            return 0
        return EXIT_CUT_OFF if self.cut_off else 1

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


class _Counting:
    """Counts the decompressed bytes the tar reader takes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._s = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._s.read(n)
        self.count += len(data)
        return data


@dataclass
class _Pass:
    """What one read of the stream collected."""

    observed: dict[str, tuple[int, str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # records per record member
    checkpoints: list[tuple[Member, Any]] = field(default_factory=list)
    manifest: Member | None = None
    signature: Member | None = None
    custody: bytes | None = None
    after_manifest: list[str] = field(default_factory=list)
    broken: StreamBroken | None = None
    tar_total: int = 0
    last_end: int = 0  # where the last member read ends in the tar stream


def _keep(name: str) -> bool:
    return name in (MANIFEST_NAME, SIGNATURE_NAME, CUSTODY_NAME) or name.startswith(CHECKPOINT_DIR)


def _read(report: VerifyReport, stream: IO[bytes]) -> _Pass:
    got = _Pass()
    counted = _Counting(stream)
    try:
        for m in iter_members(counted, _keep, is_record_member):  # type: ignore[arg-type]
            report.members_read += 1
            why = unsafe_name(m.name)
            if why:
                _add(report.problems, f"member {m.name!r} has {why} (never used as a path)")
            if not m.regular:
                report.problems.append(f"member {m.name!r} is a {m.type_name}, not a file")
                continue
            if m.name in got.observed:
                report.problems.append(f"duplicate member {m.name!r}")
                continue
            if got.manifest is not None:
                if m.name == SIGNATURE_NAME and not got.after_manifest and m.content is not None:
                    got.signature = m
                got.after_manifest.append(m.name)
            got.observed[m.name] = (m.read_bytes, m.sha256)
            got.order.append(m.name)
            if m.lines:
                got.lines[m.name] = m.lines
            got.last_end = m.end
            if m.name == MANIFEST_NAME:
                got.manifest = m
                if m.content is None and m.regular:
                    report.problems.append(
                        f"manifest.json is {m.size} bytes, more than a reader holds; not read"
                    )
            elif m.name == CUSTODY_NAME and m.size <= MAX_KEPT:
                got.custody = m.content
            elif m.name.startswith(CHECKPOINT_DIR) and m.content is not None:
                try:
                    got.checkpoints.append((m, load_json(m.content, m.name)))
                except BundleError as err:
                    report.problems.append(str(err))
        while counted.read(1 << 20):  # whatever follows the end of the archive
            pass
    except StreamBroken as err:
        got.broken = err
    except BundleError as err:  # raised while reading past the end of the archive
        got.broken = StreamBroken(str(err), None)
    got.tar_total = counted.count
    return got


def verify_bundle(path: str | Path, public_key: bytes | None = None) -> VerifyReport:
    """Read the whole bundle once and check every member's size and SHA-256, and
    every other byte of the file. ``public_key`` (raw Ed25519): the bundle must
    be signed by that key."""
    path = Path(path)
    report = VerifyReport(str(path))
    raw, stream = open_stream(path)
    try:
        got = _read(report, stream)
        claims = _prefix_claims(report, got)
        report.file_sha256, _size, prefix_problems = seal.hash_file(raw, claims)
        report.problems += prefix_problems
        compressed = stream is not raw
        if got.manifest is not None and got.manifest.content is not None and got.broken is None:
            _check_tail(report, got, raw, compressed)
    finally:
        raw.close()

    if got.broken is not None:
        if got.broken.member is not None:
            _add(report.truncated, got.broken.member.name)
        report.problems.append(f"stream broken: {got.broken.reason}")
        report.ends_early = any(r in got.broken.reason for r in _CUT_REASONS)

    cp_listed, cp_mismatched = _check_checkpoints(report, got.checkpoints, got.observed)

    if got.manifest is None or got.manifest.content is None:
        report.incomplete_reason = "no manifest: the capture was cut off before it finished"
        report.vouched_names = [n for n in got.order if n in cp_listed]
        for name in report.vouched_names:
            _count_records(report, name, got.lines.get(name, 0))
        if got.broken is None:
            report.problems.append("stream broken: it ends before the manifest (truncated)")
            # cut at a member's end, not closed by the two end-of-archive blocks
            report.ends_early = got.manifest is None and got.tar_total < got.last_end + 1024
        for name in cp_mismatched:
            _add(report.altered, name)
        verified = 0
        for name in got.order:
            if name in cp_listed or name.startswith(CHECKPOINT_DIR):
                verified += 1
            else:
                _add(report.unverifiable, name)
        report.members_verified = verified
        if public_key is not None:
            report.problems.append("no signature: the bundle has no manifest to sign")
        return report

    report.has_manifest = True
    report.manifest_sha256 = got.manifest.sha256
    for name in got.after_manifest:
        if got.signature is None or name != SIGNATURE_NAME:
            _add(report.extra, name)
    try:
        manifest = load_json(got.manifest.content, "manifest")
        if not isinstance(manifest, dict):
            raise BundleError("manifest is not a JSON object")
        check_version(manifest.get("version"))
    except BundleError as err:
        report.problems.append(str(err))
        return report
    report.manifest = {k: v for k, v in manifest.items() if k != "members"}
    report.complete = manifest.get("complete") is True
    report.incomplete_reason = str(manifest.get("incomplete_reason") or "")
    # a manifest that carries the 1.1 fields is checked whatever version it claims:
    # one flipped bit must not turn "1.1" into a lenient "1.0"
    if _newer_than_1_0(manifest) or seal.has_self_check(got.manifest.content):
        problem = seal.check_self(got.manifest.content)
        if problem:
            report.problems.append(problem)
    else:
        report.notes.append(
            "format 1.0: padding, header and manifest bytes outside member hashes are not covered"
        )
    _check_members(report, manifest, got)
    if got.custody is not None:
        report.problems += seal.custody_bindings(got.custody, got.observed)
    _check_signature(report, got, public_key)
    report.sidecar_checked, side = seal.check_sidecar(
        path, got.custody, report.file_sha256, report.manifest_sha256, report.signed_by
    )
    report.problems += side
    return report


def _count_records(report: VerifyReport, name: str, lines: int) -> None:
    if not lines:
        return
    report.records_vouched += lines
    collector = record_collector(name) or name
    report.records_by_collector[collector] = report.records_by_collector.get(collector, 0) + lines


def cut_off_banner(r: VerifyReport) -> str:
    """The one line every reader of a cut-off bundle shows."""
    if r.checkpoints_valid == 0:
        return (
            "CUT OFF: this capture was interrupted before its first checkpoint: nothing in it "
            "is vouched for; what precedes the cut is read unverified"
        )
    if r.cut_off:
        return (
            f"CUT OFF: this capture was interrupted; read up to checkpoint {r.last_checkpoint}: "
            f"{r.members_verified} members, {r.records_vouched} records"
        )
    return (
        f"DAMAGED: no manifest and the bundle does not verify; read only what its "
        f"checkpoints vouch for (up to checkpoint {r.last_checkpoint}: "
        f"{r.members_verified} members, {r.records_vouched} records)"
    )


def _newer_than_1_0(manifest: dict[str, Any]) -> bool:
    return str(manifest.get("version")) != "1.0"


def _prefix_claims(report: VerifyReport, got: _Pass) -> list[tuple[int, str, str]]:
    claims: list[tuple[int, str, str]] = []
    for member, body in got.checkpoints:
        claim = seal.prefix_claim(body)
        if claim is not None:
            claims.append((claim[0], claim[1], member.name))
    if got.manifest is not None and got.manifest.content is not None:
        try:
            claim = seal.prefix_claim(load_json(got.manifest.content, "manifest"))
        except BundleError:
            claim = None
        if claim is not None:
            claims.append((claim[0], claim[1], MANIFEST_NAME))
    return claims


def _check_tail(report: VerifyReport, got: _Pass, raw: Any, compressed: bool) -> None:
    """Everything from the manifest's header to the end is what the writer wrote."""
    assert got.manifest is not None and got.manifest.content is not None
    try:
        claim = seal.prefix_claim(load_json(got.manifest.content, "manifest"))
    except BundleError:
        return  # reported with the manifest
    if claim is None:
        return  # a 1.0 bundle (or a broken manifest, reported as such)
    file_bytes, _sha, tar_bytes = claim
    if got.manifest.offset != tar_bytes:
        report.problems.append("altered: the manifest is not where its file_prefix says it starts")
        return
    sig = got.signature.content if got.signature is not None else None
    parts = seal.expected_tail(got.manifest.content, got.manifest.mtime, sig)
    length = sum(len(p) for p in parts)
    if got.tar_total != tar_bytes + length:
        report.problems.append("altered: the archive does not end where the writer ended it")
        return
    if compressed:
        # the writer stores the tail in one frame of raw blocks: it has one encoding only
        parts = seal.stored(parts)
    problem = seal.check_raw_tail(raw, file_bytes, parts)
    if problem:
        report.problems.append(problem)


def _check_members(report: VerifyReport, manifest: dict[str, Any], got: _Pass) -> None:
    members = manifest.get("members")
    if not isinstance(members, list):
        report.problems.append("manifest has no member list")
        return
    listed: set[str] = set()
    for entry in members:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            report.problems.append("manifest has a malformed member entry")
            continue
        name = entry["name"]
        listed.add(name)
        seen = got.observed.get(name)
        size = entry.get("size")
        if seen is None:
            _add(report.missing, name)
        elif seen[0] != size:
            short = isinstance(size, int) and seen[0] < size
            _add(report.truncated if short else report.altered, name)
        elif seen[1] != entry.get("sha256"):
            _add(report.altered, name)
        else:
            report.members_verified += 1
            _count_records(report, name, got.lines.get(name, 0))
    for name in got.order:
        if name not in listed and name != MANIFEST_NAME and name not in got.after_manifest:
            _add(report.extra, name)


def _check_signature(report: VerifyReport, got: _Pass, public_key: bytes | None) -> None:
    if got.signature is None:
        if public_key is not None:
            report.problems.append(
                f"no signature: the bundle is not signed ({SIGNATURE_NAME} is absent)"
            )
        return
    from forensics import signing  # noqa: PLC0415 - cryptography only when signed

    content = got.signature.content or b""
    try:
        doc = load_json(content, SIGNATURE_NAME)
    except BundleError as err:
        report.problems.append(f"altered: {err}")
        return
    if not isinstance(doc, dict) or signing.dumps(doc) != content:
        report.problems.append(f"altered: {SIGNATURE_NAME} is not in its canonical form")
        return
    problem, pub = signing.check_signature(doc, report.manifest_sha256)
    if problem:
        report.problems.append(problem)
        return
    assert pub is not None
    report.signed_by = signing.fingerprint(pub)
    if public_key is not None and pub != public_key:
        report.problems.append(
            f"signed by another key ({report.signed_by}), not by the given key "
            f"({signing.fingerprint(public_key)})"
        )


def _check_checkpoints(
    report: VerifyReport,
    checkpoints: list[tuple[Member, Any]],
    observed: dict[str, tuple[int, str]],
) -> tuple[set[str], list[str]]:
    """Check the checkpoint chain; return the names it vouches for and those it contradicts."""
    vouched: set[str] = set()
    mismatched: list[str] = []
    prev = ""
    intact = True  # every checkpoint so far chains and matches
    for member, body in checkpoints:
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            report.problems.append(f"checkpoint {member.name} is malformed")
            intact = False
            continue
        if body.get("prev_sha256", "") != prev:
            report.problems.append(f"checkpoint {member.name} does not chain to the previous one")
            intact = False
        prev = member.sha256
        before = len(mismatched)
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
        intact = intact and len(mismatched) == before
        if intact:
            report.checkpoints_valid += 1
            seq = body.get("seq")
            report.last_checkpoint = seq if isinstance(seq, int) else report.checkpoints_valid
    return vouched, mismatched
