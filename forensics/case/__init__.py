"""Cases: many bundles of one incident in one directory, read as one.

The stable surface (docs/case-format.md)::

    is_case(path) -> bool
    load_case(path) -> Case            # .case_id .examiner .state .request .target
                                       # .pods (CasePod) .bundles (CaseBundle)
                                       # .captured .seen_not_captured .siblings()
    verify_case(path, public_key=None) -> CaseReport
    CaseWriter.create(directory, case_id=..., examiner=..., request=...)

A :class:`CaseBundle` carries ``path`` (None when no bundle was written),
``file``, ``namespace``, ``pod``, ``container``, ``node``, ``status``
(pending, capturing, complete, incomplete, failed), ``reason``,
``manifest_sha256``, ``file_sha256``, ``bytes``, ``start_ns``, ``end_ns``,
``pod_uid``, ``uri`` and ``captured`` (a sealed bundle holds its evidence).
"""

from __future__ import annotations

from forensics.case.format import (
    BUNDLE_STATES,
    CASE_FILE,
    CASE_VERSION,
    COMPLETE,
    CUSTODY_FILE,
    FAILED,
    INCOMPLETE,
    SIGNATURE_FILE,
    bundle_file_name,
)
from forensics.case.model import Case, CaseBundle, CasePod, Owner, SeenPod, is_case, load_case
from forensics.case.verify import BundleCheck, CaseReport, verify_case
from forensics.case.writer import CaseWriter

__all__ = [
    "BUNDLE_STATES",
    "CASE_FILE",
    "CASE_VERSION",
    "COMPLETE",
    "CUSTODY_FILE",
    "FAILED",
    "INCOMPLETE",
    "SIGNATURE_FILE",
    "BundleCheck",
    "Case",
    "CaseBundle",
    "CasePod",
    "CaseReport",
    "CaseWriter",
    "Owner",
    "SeenPod",
    "bundle_file_name",
    "is_case",
    "load_case",
    "verify_case",
]
