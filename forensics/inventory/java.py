"""Java archives: META-INF/MANIFEST.MF and META-INF/maven/*/*/pom.properties.

A JAR (or WAR/EAR) is a zip file. Each pom.properties (groupId, artifactId,
version) is a Maven package; a JAR with none is described by its manifest
(Implementation-Title/-Version/-Vendor-Id, or Bundle-SymbolicName/-Version).
JARs nested one level deep (Spring Boot's BOOT-INF/lib, a WAR's WEB-INF/lib)
are read too. Reads are capped per entry and in total: a zip bomb is a
problem reported, never memory spent.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import IO

from forensics.inventory.model import FileClaim, Package
from forensics.inventory.purl import purl

MAX_ENTRY = 1 << 20
MAX_NESTED = 32 << 20
MAX_NESTED_TOTAL = 256 << 20
MAX_POMS = 256
NESTED_DIRS = ("BOOT-INF/lib/", "WEB-INF/lib/", "lib/")


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a manifest (continuation lines start with one space)."""
    out: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            break  # end of the main section
        if line.startswith(" ") and last is not None:
            out[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            out[last] = value.strip()
    return out


def parse_properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        for sep in ("=", ":"):
            if sep in line:
                key, _, value = line.partition(sep)
                out[key.strip()] = value.strip()
                break
    return out


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    if info.file_size > cap:
        return None
    with zf.open(info) as f:
        data = f.read(cap + 1)
    return data if len(data) <= cap else None


def _maven(props: dict[str, str], source: str) -> Package | None:
    g, a, v = props.get("groupId"), props.get("artifactId"), props.get("version")
    if not a or not v:
        return None
    return Package(
        ecosystem="maven",
        name=f"{g}:{a}" if g else a,
        version=v,
        purl=purl("maven", a, v, g),
        source=source,
        files=[FileClaim(source.split("!", 1)[0])],
    )


def _from_manifest(man: dict[str, str], source: str) -> Package | None:
    name = man.get("Implementation-Title") or man.get("Bundle-SymbolicName", "").split(";")[0]
    version = man.get("Implementation-Version") or man.get("Bundle-Version")
    if not name or not version:
        return None
    group = man.get("Implementation-Vendor-Id") or None
    pkg = Package(
        ecosystem="maven",
        name=f"{group}:{name}" if group else name,
        version=version,
        purl=purl("maven", name, version, group),
        source=source,
        supplier=man.get("Implementation-Vendor") or man.get("Bundle-Vendor"),
        files=[FileClaim(source.split("!", 1)[0])],
    )
    lic = man.get("Bundle-License")
    if lic and len(lic) < 100:
        pkg.licenses = [lic]
    pkg.properties["java:described-by"] = "MANIFEST.MF"
    return pkg


def inspect_jar(f: IO[bytes], source: str, depth: int = 0) -> tuple[list[Package], list[str]]:
    """Packages in one archive (``source`` names it: a path, or path!/entry)."""
    pkgs: list[Package] = []
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        return [], [f"{source}: not a readable zip archive ({err})"]
    nested_total = 0
    with zf:
        try:
            infos = zf.infolist()
            manifest: dict[str, str] = {}
            poms = 0
            for info in infos:
                if info.filename == "META-INF/MANIFEST.MF":
                    data = _read(zf, info, MAX_ENTRY)
                    if data is not None:
                        manifest = parse_manifest(data.decode("utf-8", "replace"))
                elif info.filename.startswith("META-INF/maven/") and info.filename.endswith(
                    "/pom.properties"
                ):
                    poms += 1
                    if poms > MAX_POMS:
                        continue
                    data = _read(zf, info, MAX_ENTRY)
                    pkg = (
                        _maven(parse_properties(data.decode("utf-8", "replace")), source)
                        if data
                        else None
                    )
                    if pkg is not None:
                        pkgs.append(pkg)
                elif (
                    depth == 0
                    and info.filename.startswith(NESTED_DIRS)
                    and info.filename.endswith(".jar")
                ):
                    inner = f"{source}!/{info.filename}"
                    if (
                        info.file_size > MAX_NESTED
                        or nested_total + info.file_size > MAX_NESTED_TOTAL
                    ):
                        problems.append(f"{inner}: nested archive too large to inspect")
                        continue
                    data = _read(zf, info, MAX_NESTED)
                    if data is None:
                        problems.append(f"{inner}: nested archive too large to inspect")
                        continue
                    nested_total += len(data)
                    more, probs = inspect_jar(io.BytesIO(data), inner, depth + 1)
                    pkgs.extend(more)
                    problems.extend(probs)
            if not any(p.source == source for p in pkgs):
                pkg = _from_manifest(manifest, source)
                if pkg is not None:
                    pkgs.append(pkg)
                elif depth == 0:
                    problems.append(f"{source}: no pom.properties and no versioned manifest")
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            ValueError,
            EOFError,
            NotImplementedError,
            RuntimeError,
            zlib.error,
        ) as err:
            problems.append(f"{source}: archive unreadable ({type(err).__name__}: {err})")
    return pkgs, problems
