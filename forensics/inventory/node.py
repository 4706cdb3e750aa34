"""npm packages: node_modules/<name>/package.json and node_modules/@scope/<name>/package.json.

Read: name, version, license (a string, or the legacy {"type"} object or
"licenses" list), description, homepage, author. A package claims every file
under its directory except those of nested node_modules (a native addon
``*.node`` is an ELF shared object: this is how it is accounted for).
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from forensics.inventory.model import FileClaim, Package
from forensics.inventory.purl import purl, split_path


def _licenses(doc: dict[str, Any]) -> list[str]:
    lic = doc.get("license")
    if isinstance(lic, str) and lic.strip():
        return [lic.strip()]
    if isinstance(lic, dict) and isinstance(lic.get("type"), str):
        return [lic["type"]]
    legacy = doc.get("licenses")
    if isinstance(legacy, list):
        return [x["type"] for x in legacy if isinstance(x, dict) and isinstance(x.get("type"), str)]
    return []


def parse_package_json(text: str, source: str) -> Package | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    ns, short = split_path(name) if name.startswith("@") else (None, name)
    author = doc.get("author")
    if isinstance(author, dict):
        author = author.get("name")
    home = doc.get("homepage")
    pkg = Package(
        ecosystem="npm",
        name=name,
        version=version,
        purl=purl("npm", short, version, ns),
        source=source,
        licenses=_licenses(doc),
        supplier=author if isinstance(author, str) and author else None,
        description=doc.get("description") if isinstance(doc.get("description"), str) else None,
        homepage=home if isinstance(home, str) else None,
    )
    pkg.files = [FileClaim(posixpath.dirname(source) + "/")]  # a directory claim
    return pkg


def collect(files: dict[str, str], kinds: dict[str, str]) -> tuple[list[Package], list[str]]:
    pkgs: list[Package] = []
    problems: list[str] = []
    for path in sorted(files):
        if kinds.get(path) != "npm-package":
            continue
        pkg = parse_package_json(files[path], path)
        if pkg is None:
            problems.append(f"{path}: not a package.json with a name and version")
        else:
            pkgs.append(pkg)
    return pkgs, problems
