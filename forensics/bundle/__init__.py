"""The evidence bundle: one streamable tar file with hashes, manifest and custody."""

from __future__ import annotations

from forensics.bundle.format import FORMAT_VERSION, MANIFEST_NAME
from forensics.bundle.reader import BundleReader
from forensics.bundle.verify import VerifyReport, verify_bundle
from forensics.bundle.writer import BundleWriter, MemberEntry

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "BundleReader",
    "BundleWriter",
    "MemberEntry",
    "VerifyReport",
    "verify_bundle",
]
