"""Verify a case: case.json, its seal and signature, and every bundle it names.

A case verifies when case.json is sealed in its custody log (the SHA-256 the
``case.sealed`` entry names is the file's), its signature (if any) holds,
and every bundle it lists as captured is there, verifies on its own
(:func:`forensics.bundle.verify_bundle`), and *is the bundle case.json names*:
the same manifest and file SHA-256, the same target, the same completeness.
Failed bundles have no file to check; bundles still pending or capturing
(a case whose writer died) are reported, as an incomplete bundle is.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics.bundle.reader import load_json
from forensics.bundle.verify import VerifyReport, verify_bundle
from forensics.case.format import (
    BUNDLE_SUFFIX,
    CAPTURING,
    CASE_CAPTURING,
    COMPLETE,
    CUSTODY_FILE,
    INCOMPLETE,
    PENDING,
    SIGNATURE_FILE,
)
from forensics.case.model import Case, CaseBundle, parse_case, read_case_bytes
from forensics.errors import BundleError

MAX_CUSTODY = 64 << 20


@dataclass
class BundleCheck:
    bundle: CaseBundle
    report: VerifyReport | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and (self.report is None or self.report.ok)

    def failures(self) -> list[str]:
        return self.problems + (self.report.failures() if self.report is not None else [])


@dataclass
class CaseReport:
    path: Path
    case: Case | None = None
    case_sha256: str = ""
    sealed: bool = False
    signed_by: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bundles: list[BundleCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.case is not None and not self.problems and all(b.ok for b in self.bundles)

    @property
    def verified(self) -> int:
        """Bundles that were checked and verify."""
        return sum(1 for b in self.bundles if b.report is not None and b.ok)


def verify_case(
    path: str | Path,
    public_key: bytes | None = None,
    progress: Callable[[CaseBundle], None] | None = None,
) -> CaseReport:
    """Check the case directory ``path``. ``public_key`` (raw Ed25519): case.json
    and every bundle must be signed by it."""
    directory = Path(path)
    report = CaseReport(directory)
    try:
        data = read_case_bytes(directory)
        report.case_sha256 = hashlib.sha256(data).hexdigest()
        case = parse_case(directory, data)
    except BundleError as err:
        report.problems.append(str(err))
        return report
    report.case = case
    _check_signature(report, public_key)
    _check_custody(report)
    for b in case.bundles:
        if progress is not None:
            progress(b)
        report.bundles.append(_check_bundle(b, public_key))
    waiting = [b.label for b in case.bundles if b.status in (PENDING, CAPTURING)]
    if waiting:
        report.notes.append(
            f"{len(waiting)} bundle(s) were not finished when case.json was last written "
            f"(the capture was cut off?): {', '.join(waiting[:5])}"
        )
    named = {b.file for b in case.bundles if b.file}
    strays = sorted(
        n
        for n in _names(directory)
        if BUNDLE_SUFFIX in n
        and not n.endswith(".custody.jsonl")
        and n not in named
        and not (n.endswith(SCAN_SIDECAR) and n[: -len(SCAN_SIDECAR)] in named)
    )
    if strays:
        report.notes.append(
            f"not part of the case (case.json does not name them): {', '.join(strays[:10])}"
        )
    return report


#: a bundle's scan results beside it (forensics/scan/sidecar.py): part of the case
SCAN_SIDECAR = ".yara.json"


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _check_bundle(b: CaseBundle, public_key: bytes | None) -> BundleCheck:
    check = BundleCheck(b)
    if b.path is None:
        if b.status in (COMPLETE, INCOMPLETE):
            check.problems.append(f"{b.label}: case.json says {b.status} but names no file")
        return check
    try:
        st = os.lstat(b.path)
    except OSError as err:
        if b.status in (COMPLETE, INCOMPLETE):
            check.problems.append(f"missing: {b.file} ({err.strerror})")
        return check
    if not stat.S_ISREG(st.st_mode):
        check.problems.append(f"{b.file} is not a regular file")
        return check
    rep = verify_bundle(b.path, public_key=public_key)
    check.report = rep
    if not rep.has_manifest:
        return check
    if b.manifest_sha256 != rep.manifest_sha256:
        check.problems.append(
            f"{b.file} is not the bundle case.json names: its manifest SHA-256 is "
            f"{rep.manifest_sha256[:16]}…, case.json says {str(b.manifest_sha256)[:16]}…"
        )
    if b.file_sha256 is not None and b.file_sha256 != rep.file_sha256:
        check.problems.append(f"{b.file}: the file's SHA-256 is not the one case.json names")
    if (b.status == COMPLETE) != rep.complete:
        actual = "complete" if rep.complete else "incomplete"
        check.problems.append(f"{b.file}: case.json says {b.status}, the bundle is {actual}")
    target = rep.manifest.get("target")
    uri = target.get("uri") if isinstance(target, dict) else None
    if b.uri is not None and uri != b.uri:
        check.problems.append(f"{b.file}: its target is {uri!r}, case.json names {b.uri!r}")
    k8s = rep.manifest.get("kubernetes")
    if isinstance(k8s, dict) and b.pod_uid and k8s.get("pod_uid") != b.pod_uid:
        check.problems.append(f"{b.file}: its pod uid is not the one case.json names")
    return check


def _check_signature(report: CaseReport, public_key: bytes | None) -> None:
    assert report.case is not None
    sig_path = report.path / SIGNATURE_FILE
    claimed = report.case.raw.get("signature")
    try:
        with sig_path.open("rb") as f:
            content = f.read(1 << 16)
    except FileNotFoundError:
        if isinstance(claimed, dict):
            report.problems.append(f"case.json says it is signed, but {SIGNATURE_FILE} is missing")
        elif public_key is not None:
            report.problems.append(f"no signature: the case is not signed ({SIGNATURE_FILE})")
        return
    except OSError as err:
        report.problems.append(f"cannot read {SIGNATURE_FILE}: {err.strerror}")
        return
    from forensics import signing  # noqa: PLC0415 - cryptography only when signed

    try:
        doc = load_json(content, SIGNATURE_FILE)
    except BundleError as err:
        report.problems.append(f"altered: {err}")
        return
    if not isinstance(doc, dict) or signing.dumps(doc) != content:
        report.problems.append(f"altered: {SIGNATURE_FILE} is not in its canonical form")
        return
    problem, pub = signing.check_signature(doc, report.case_sha256, signing.CASE)
    if problem:
        report.problems.append(f"{SIGNATURE_FILE}: {problem}")
        return
    assert pub is not None
    report.signed_by = signing.fingerprint(pub)
    if public_key is not None and pub != public_key:
        report.problems.append(
            f"case.json is signed by another key ({report.signed_by}), not by the given key"
        )


def _check_custody(report: CaseReport) -> None:
    assert report.case is not None
    path = report.path / CUSTODY_FILE
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CUSTODY + 1)
    except OSError as err:
        report.problems.append(f"the case custody log {CUSTODY_FILE} is unreadable: {err.strerror}")
        return
    if len(data) > MAX_CUSTODY:
        report.problems.append(f"{CUSTODY_FILE} is larger than {MAX_CUSTODY} bytes; not read")
        return
    sealed: dict[str, Any] | None = None
    finished: dict[tuple[Any, Any, Any], Any] = {}
    for n, line in enumerate(data.splitlines(), 1):
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            report.problems.append(f"{CUSTODY_FILE} line {n} is not JSON")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("details"), dict):
            continue
        d = entry["details"]
        if entry.get("action") == "case.sealed":
            sealed = d
        elif entry.get("action") == "bundle.finished":
            finished[(d.get("namespace"), d.get("pod"), d.get("container"))] = d.get(
                "manifest_sha256"
            )
    for b in report.case.bundles:
        key = (b.namespace, b.pod, b.container)
        if key in finished and finished[key] != b.manifest_sha256:
            report.problems.append(
                f"{b.label}: the manifest SHA-256 in case.json is not the one the custody log "
                "recorded when its capture finished"
            )
    if sealed is None:
        if report.case.state != CASE_CAPTURING or report.case.sealed_ns is not None:
            report.problems.append(f"case.json says it was sealed; {CUSTODY_FILE} does not")
        else:
            report.problems.append(
                "not sealed: the case's capture was cut off before it finished; case.json is "
                "as last written and its own bytes are under no seal (each bundle is checked "
                "on its own)"
            )
        return
    report.sealed = True
    if sealed.get("case_sha256") != report.case_sha256:
        report.problems.append(
            f"altered: case.json's SHA-256 is not the one sealed in {CUSTODY_FILE}"
        )
