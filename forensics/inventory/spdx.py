"""SPDX 2.3 JSON for an inventory.

The container is the described package; every package is a package with its
purl as an external reference; every executable with a SHA-1 is a file (SPDX
requires SHA-1 for files), one without is a package of purpose FILE. The
container CONTAINS packages and unclaimed files; a package CONTAINS the files
it claims; embedded dependency graphs are DEPENDS_ON. License strings that are
not SPDX expressions become LicenseRef- entries with the original text.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from forensics import __version__
from forensics.inventory.licenses import expression, is_compound
from forensics.inventory.model import Executable, Inventory, Package
from forensics.inventory.report import (
    coverage_status,
    elf_properties,
    exe_ref,
    sbom_timestamp,
    target_name,
)

_PURPOSE = {"application": "APPLICATION", "operating-system": "OPERATING-SYSTEM"}
_ALGOS = (("sha1", "SHA1"), ("sha256", "SHA256"), ("md5", "MD5"))


class _Ids:
    def __init__(self) -> None:
        self.used: set[str] = set()
        self.by_ref: dict[str, str] = {}

    def make(self, kind: str, ref: str, hint: str) -> str:
        base = f"SPDXRef-{kind}-" + (re.sub(r"[^A-Za-z0-9.-]+", "-", hint).strip("-")[:80] or "x")
        sid, n = base, 1
        while sid in self.used:
            n += 1
            sid = f"{base}-{n}"
        self.used.add(sid)
        self.by_ref[ref] = sid
        return sid


class _Licenses:
    def __init__(self) -> None:
        self.refs: dict[str, str] = {}

    def declared(self, texts: list[str]) -> str:
        if not texts:
            return "NOASSERTION"
        parts = []
        for text in texts:
            expr = expression(text)
            if expr is None:
                expr = self.refs.setdefault(text, f"LicenseRef-exuvia-{len(self.refs) + 1}")
            parts.append(f"({expr})" if is_compound(expr) and len(texts) > 1 else expr)
        return " AND ".join(dict.fromkeys(parts))

    def extracted(self) -> list[dict[str, str]]:
        return [
            {"licenseId": lid, "extractedText": text, "name": text[:200]}
            for text, lid in self.refs.items()
        ]


def _package(pkg: Package, sid: str, lic: _Licenses) -> dict[str, Any]:
    d: dict[str, Any] = {
        "SPDXID": sid,
        "name": pkg.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": lic.declared(pkg.licenses),
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": _PURPOSE.get(pkg.kind, "LIBRARY"),
    }
    if pkg.version:
        d["versionInfo"] = pkg.version
    if pkg.description:
        d["summary"] = pkg.description[:1000]
    if pkg.homepage and re.fullmatch(r"https?://[^\s]+", pkg.homepage):
        d["homepage"] = pkg.homepage
    if pkg.purl:
        d["externalRefs"] = [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": pkg.purl,
            }
        ]
    where = "; ".join(pkg.locations[:20])
    d["sourceInfo"] = f"found in {where}" if where else f"found in {pkg.source}"
    return d


def _comment(exe: Executable) -> str:
    return "; ".join(f"{k.removeprefix('exuvia:')}={v}" for k, v in elf_properties(exe))[:8000]


def _file(exe: Executable, sid: str) -> dict[str, Any]:
    name = exe.path if exe.path.startswith("/") else "/" + exe.path
    return {
        "SPDXID": sid,
        "fileName": "." + name,
        "fileTypes": ["BINARY"],
        "checksums": [
            {"algorithm": alg, "checksumValue": getattr(exe, attr)}
            for attr, alg in _ALGOS
            if getattr(exe, attr)
        ],
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": _comment(exe),
    }


def _file_package(exe: Executable, sid: str) -> dict[str, Any]:
    d: dict[str, Any] = {
        "SPDXID": sid,
        "name": exe.path,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "FILE",
        "comment": _comment(exe),
    }
    sums = [
        {"algorithm": alg, "checksumValue": getattr(exe, attr)}
        for attr, alg in _ALGOS
        if getattr(exe, attr)
    ]
    if sums:
        d["checksums"] = sums
    return d


def to_spdx(inv: Inventory) -> dict[str, Any]:
    """The inventory as an SPDX 2.3 document (a JSON-ready dict)."""
    ids = _Ids()
    lic = _Licenses()
    name = target_name(inv)
    ns_uuid = uuid.uuid5(
        uuid.NAMESPACE_URL, f"exuvia-spdx:{inv.manifest.get('sealed_ns')}:{inv.bundle}"
    )
    root = ids.make("Container", "target", name)
    packages: list[dict[str, Any]] = [
        {
            "SPDXID": root,
            "name": name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "CONTAINER",
            "comment": f"captured target {inv.target.get('uri') or '-'}; executables "
            f"accounted for: {inv.coverage.accounted} of {inv.coverage.total}",
        }
    ]
    rels: list[dict[str, str]] = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": root,
        }
    ]

    def rel(a: str, kind: str, b: str) -> None:
        rels.append({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b})

    for pkg in inv.packages:
        sid = ids.make("Package", pkg.ref, f"{pkg.ecosystem}-{pkg.name}-{pkg.version}")
        packages.append(_package(pkg, sid, lic))
        rel(root, "CONTAINS", sid)
    for pkg in inv.packages:
        for dep in dict.fromkeys(pkg.depends):
            if dep in ids.by_ref and dep != pkg.ref:
                rel(ids.by_ref[pkg.ref], "DEPENDS_ON", ids.by_ref[dep])
    files: list[dict[str, Any]] = []
    for exe in inv.executables:
        ref = exe_ref(exe)
        if exe.sha1:
            sid = ids.make("File", ref, exe.path)
            files.append(_file(exe, sid))
        else:
            sid = ids.make("Package", ref, "file-" + exe.path)
            packages.append(_file_package(exe, sid))
        owners = [ids.by_ref[c.ref] for c in exe.claims if c.ref in ids.by_ref]
        for owner in dict.fromkeys(owners):
            rel(owner, "CONTAINS", sid)
        if not owners:
            rel(root, "CONTAINS", sid)
    # a package that CONTAINS files must say its files were analysed (SPDX 2.3 7.8):
    # they were, each listed one with its checksums and ELF analysis
    holders = {r["spdxElementId"] for r in rels if r["relationshipType"] == "CONTAINS"}
    file_ids = {f["SPDXID"] for f in files}
    holders = {
        r["spdxElementId"]
        for r in rels
        if r["relationshipType"] == "CONTAINS" and r["relatedSpdxElement"] in file_ids
    } & holders
    for p in packages:
        if p["SPDXID"] in holders:
            p["filesAnalyzed"] = True
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"exuvia-sbom-{name}"[:200],
        "documentNamespace": f"https://exuvia.invalid/spdx/{ns_uuid}",
        "creationInfo": {
            "created": sbom_timestamp(inv),
            "creators": [f"Tool: exuvia-{__version__}"],
            "comment": "Software inventory of a captured container: what is actually there, "
            f"with coverage ({_coverage_line(inv)}).",
        },
        "packages": packages,
        "files": files,
        "relationships": rels,
    }
    extracted = lic.extracted()
    if extracted:
        doc["hasExtractedLicensingInfos"] = extracted
    return doc


def _coverage_line(inv: Inventory) -> str:
    cov = inv.coverage
    pct = "n/a" if cov.percent is None else f"{cov.percent}%"
    statuses = [coverage_status(e) for e in inv.executables if e.counted]
    return (
        f"{pct}; {statuses.count('unaccounted')} unaccounted, {statuses.count('modified')} modified"
    )
