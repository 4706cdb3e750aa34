"""Python distributions: *.dist-info (METADATA, RECORD) and *.egg-info.

Read from site-packages/dist-packages directories: METADATA / PKG-INFO headers
(Name, Version, License-Expression or License or the license classifiers,
Home-page, Summary, Author), RECORD (each installed path, relative to the
site directory, with its sha256 in urlsafe base64) and the egg-info
installed-files.txt (paths relative to the egg-info directory).
"""

from __future__ import annotations

import base64
import binascii
import csv
import posixpath
from email.parser import HeaderParser

from forensics.inventory.model import FileClaim, Package
from forensics.inventory.purl import purl

MAX_RECORD_ROWS = 500_000


def parse_metadata(text: str, source: str) -> Package | None:
    msg = HeaderParser().parsestr(text, headersonly=True)
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version:
        return None
    name, version = str(name).strip(), str(version).strip()
    lic = msg.get("License-Expression")
    licenses: list[str] = []
    if lic:
        licenses.append(str(lic).strip())
    else:
        classifiers = [
            str(c).rsplit("::", 1)[-1].strip()
            for c in msg.get_all("Classifier") or []
            if str(c).startswith("License ::")
        ]
        plain = str(msg.get("License") or "").strip()
        if plain and "\n" not in plain and len(plain) < 100 and plain.upper() != "UNKNOWN":
            licenses.append(plain)
        elif classifiers:
            licenses.extend(classifiers)
    home = msg.get("Home-page") or next(
        (
            str(u).split(",", 1)[-1].strip()
            for u in msg.get_all("Project-URL") or []
            if str(u).lower().startswith(("homepage", "home"))
        ),
        None,
    )
    return Package(
        ecosystem="pypi",
        name=name,
        version=version,
        purl=purl("pypi", name, version),
        source=source,
        licenses=licenses,
        supplier=str(msg.get("Author") or "") or None,
        description=str(msg.get("Summary") or "") or None,
        homepage=str(home) if home else None,
    )


def _sha256(field: str) -> str | None:
    algo, _, b64 = field.partition("=")
    if algo != "sha256" or not b64:
        return None
    try:
        raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def parse_record(text: str, site_dir: str) -> list[FileClaim]:
    """RECORD rows as claims on absolute paths (relative paths resolved from the site dir)."""
    out: list[FileClaim] = []
    try:
        for n, row in enumerate(csv.reader(text.splitlines())):
            if n >= MAX_RECORD_ROWS or not row:
                break
            rel = row[0]
            path = posixpath.normpath(posixpath.join(site_dir, rel))
            digest = _sha256(row[1]) if len(row) > 1 else None
            out.append(FileClaim(path, "sha256" if digest else None, digest))
    except csv.Error:
        pass
    return out


def parse_installed_files(text: str, egg_dir: str) -> list[FileClaim]:
    return [
        FileClaim(posixpath.normpath(posixpath.join(egg_dir, line.strip())))
        for line in text.splitlines()[:MAX_RECORD_ROWS]
        if line.strip()
    ]


def collect(files: dict[str, str], kinds: dict[str, str]) -> tuple[list[Package], list[str]]:
    """Packages from the Python metadata among ``files`` (path -> text; kinds by path)."""
    pkgs: list[Package] = []
    problems: list[str] = []
    for path in sorted(files):
        kind = kinds.get(path)
        if kind not in ("python-metadata", "python-pkginfo"):
            continue
        pkg = parse_metadata(files[path], path)
        if pkg is None:
            problems.append(f"{path}: no Name/Version")
            continue
        meta_dir = path if path.endswith(".egg-info") else posixpath.dirname(path)
        site_dir = posixpath.dirname(meta_dir)
        if kind == "python-metadata":
            record = files.get(meta_dir + "/RECORD")
            if record is not None:
                pkg.files = parse_record(record, site_dir)
        else:
            listing = files.get(meta_dir + "/installed-files.txt")
            if listing is not None:
                pkg.files = parse_installed_files(listing, meta_dir)
        pkgs.append(pkg)
    return pkgs, problems
