"""Debian packages: /var/lib/dpkg/status, distroless's status.d/, and file lists.

Read: ``status`` paragraphs (installed ones), every ``status.d/<name>`` (the
one-paragraph-per-file layout of distroless images, which keep no ``status``),
``info/<pkg>[:arch].list`` (the paths a package installed) and the
``*.md5sums`` files of both layouts (path and MD5 of each regular file).
"""

from __future__ import annotations

from forensics.inventory.control import paragraphs
from forensics.inventory.model import FileClaim, Package
from forensics.inventory.purl import purl

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO = "/var/lib/dpkg/info/"


def _installed(p: dict[str, str]) -> bool:
    status = p.get("Status")
    if status is None:  # distroless status.d entries carry no Status field
        return True
    words = status.split()
    return len(words) == 3 and words[2] == "installed"


def package_of(p: dict[str, str], source: str, distro: tuple[str, str | None]) -> Package | None:
    name, version = p.get("Package"), p.get("Version")
    if not name or not version or not _installed(p):
        return None
    arch = p.get("Architecture")
    ns, release = distro
    qual = {"arch": arch, "distro": f"{ns}-{release}" if release else None}
    src = p.get("Source", "").split(" ")[0] or None
    if src and src != name:
        qual["upstream"] = src
    pkg = Package(
        ecosystem="deb",
        name=name,
        version=version,
        purl=purl("deb", name, version, ns, qual),
        source=source,
        arch=arch,
        supplier=p.get("Maintainer"),
        description=(p.get("Description") or "").split("\n", 1)[0] or None,
        homepage=p.get("Homepage"),
    )
    if src:
        pkg.properties["deb:source"] = p.get("Source", "")
    return pkg


def parse_md5sums(text: str) -> list[FileClaim]:
    out: list[FileClaim] = []
    for line in text.splitlines():
        digest, sep, path = line.partition("  ")
        if not sep:
            digest, sep, path = line.partition(" ")
        digest = digest.strip().lower()
        if sep and len(digest) == 32 and all(c in "0123456789abcdef" for c in digest):
            out.append(FileClaim("/" + path.strip().lstrip("/"), "md5", digest))
    return out


def parse_list(text: str) -> list[FileClaim]:
    return [FileClaim(line.strip()) for line in text.splitlines() if line.startswith("/")]


def collect(
    files: dict[str, str], distro: tuple[str, str | None]
) -> tuple[list[Package], list[str]]:
    """Packages from the dpkg files among ``files`` (target path -> text)."""
    pkgs: list[Package] = []
    problems: list[str] = []
    by_key: dict[str, Package] = {}
    if STATUS in files:
        for p in paragraphs(files[STATUS]):
            pkg = package_of(p, STATUS, distro)
            if pkg is not None:
                pkgs.append(pkg)
                by_key.setdefault(pkg.name, pkg)
                if pkg.arch:
                    by_key[f"{pkg.name}:{pkg.arch}"] = pkg
    for path in sorted(files):
        if not path.startswith(STATUS_D) or path.endswith(".md5sums"):
            continue
        found = False
        for p in paragraphs(files[path]):
            pkg = package_of(p, path, distro)
            if pkg is None:
                continue
            found = True
            pkgs.append(pkg)
            sums = files.get(path + ".md5sums")
            if sums is not None:
                pkg.files.extend(parse_md5sums(sums))
        if not found:
            problems.append(f"{path}: no installed package paragraph")
    for path, text in files.items():
        if not path.startswith(INFO):
            continue
        stem, _, ext = path[len(INFO) :].rpartition(".")
        pkg = by_key.get(stem)
        if pkg is None:
            continue
        if ext == "list":
            pkg.files.extend(parse_list(text))
        elif ext == "md5sums":
            pkg.files.extend(parse_md5sums(text))
    return pkgs, problems
