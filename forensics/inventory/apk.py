"""Alpine (and Wolfi/Chainguard) packages: the apk installed database.

``/lib/apk/db/installed`` is a list of paragraphs of ``X:value`` lines:
P name, V version, A arch, L license, o origin, m maintainer, U url, T
description, F a directory, R a file in the last F, Z the file's checksum
("Q1" + base64 SHA-1). Each R (with its Z when present) becomes a file claim.
"""

from __future__ import annotations

import base64
import binascii

from forensics.inventory.model import FileClaim, Package
from forensics.inventory.purl import purl


def _sha1(z: str) -> str | None:
    if not z.startswith("Q1"):
        return None
    try:
        raw = base64.b64decode(z[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 20 else None


def parse_installed(text: str, source: str, distro: tuple[str, str | None]) -> list[Package]:
    pkgs: list[Package] = []
    fields: dict[str, str] = {}
    files: list[FileClaim] = []
    cur_dir = ""
    last_file: FileClaim | None = None

    def flush() -> None:
        name, version = fields.get("P"), fields.get("V")
        if name and version:
            ns, release = distro
            arch = fields.get("A")
            qual = {"arch": arch, "distro": f"{ns}-{release}" if release else None}
            pkg = Package(
                ecosystem="apk",
                name=name,
                version=version,
                purl=purl("apk", name, version, ns, qual),
                source=source,
                arch=arch,
                licenses=[fields["L"]] if fields.get("L") else [],
                supplier=fields.get("m"),
                description=fields.get("T"),
                homepage=fields.get("U"),
                files=list(files),
            )
            if fields.get("o"):
                pkg.properties["apk:origin"] = fields["o"]
            pkgs.append(pkg)

    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields or files:
                flush()
            fields, files, cur_dir, last_file = {}, [], "", None
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "F":
            cur_dir, last_file = value.strip("/"), None
        elif key == "R":
            last_file = FileClaim("/" + "/".join(p for p in (cur_dir, value) if p))
            files.append(last_file)
        elif key == "Z" and last_file is not None:
            sha1 = _sha1(value)
            if sha1:
                last_file.algo, last_file.digest = "sha1", sha1
        else:
            fields.setdefault(key, value)
    return pkgs
