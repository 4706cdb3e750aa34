"""CycloneDX 1.6 JSON for an inventory.

Packages become components (library, application, operating-system) with purls,
licenses and where they were found (evidence.occurrences); every executable and
shared object becomes a ``file`` component with its hashes and the ELF analysis
and coverage as ``exuvia:*`` properties. The container is metadata.component;
embedded dependency graphs (Go modules, crates) go into ``dependencies``.
"""

from __future__ import annotations

import uuid
from typing import Any

from forensics import __version__
from forensics.inventory.licenses import expression, is_compound
from forensics.inventory.model import Executable, Inventory, Package
from forensics.inventory.report import elf_properties, exe_ref, sbom_timestamp, target_name

SPEC = "1.6"
_TYPES = {"application": "application", "operating-system": "operating-system"}
_HASHES = (("sha256", "SHA-256"), ("sha1", "SHA-1"), ("md5", "MD5"))


def _props(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs if v != ""]


def _licenses(pkg: Package) -> list[dict[str, Any]]:
    if len(pkg.licenses) == 1:
        expr = expression(pkg.licenses[0])
        if expr is not None and is_compound(expr):
            return [{"expression": expr}]
    out: list[dict[str, Any]] = []
    for text in pkg.licenses:
        expr = expression(text)
        if expr is not None and not is_compound(expr):
            out.append({"license": {"id": expr}})
        else:
            out.append({"license": {"name": text[:1000]}})
    return out


def component(pkg: Package) -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": _TYPES.get(pkg.kind, "library"),
        "bom-ref": pkg.ref,
        "name": pkg.name,
    }
    if pkg.ecosystem == "maven" and ":" in pkg.name:
        c["group"], c["name"] = pkg.name.split(":", 1)
    if pkg.version:
        c["version"] = pkg.version
    if pkg.description:
        c["description"] = pkg.description[:2000]
    if pkg.supplier:
        c["supplier"] = {"name": pkg.supplier[:500]}
    if pkg.purl:
        c["purl"] = pkg.purl
    lic = _licenses(pkg)
    if lic:
        c["licenses"] = lic
    if (
        pkg.homepage
        and pkg.homepage.startswith(("https://", "http://"))
        and " " not in pkg.homepage
    ):
        c["externalReferences"] = [{"type": "website", "url": pkg.homepage}]
    if pkg.locations:
        c["evidence"] = {"occurrences": [{"location": loc} for loc in pkg.locations]}
    props = [("exuvia:ecosystem", pkg.ecosystem)]
    if pkg.arch:
        props.append(("exuvia:arch", pkg.arch))
    props += [(f"exuvia:{k}", v) for k, v in sorted(pkg.properties.items())]
    if pkg.files:
        props.append(("exuvia:files-claimed", str(len(pkg.files))))
    c["properties"] = _props(props)
    return c


def file_component(exe: Executable) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "file", "bom-ref": exe_ref(exe), "name": exe.path}
    hashes = [
        {"alg": alg, "content": getattr(exe, attr)} for attr, alg in _HASHES if getattr(exe, attr)
    ]
    if hashes:
        c["hashes"] = hashes
    c["properties"] = _props(elf_properties(exe))
    return c


def to_cyclonedx(inv: Inventory) -> dict[str, Any]:
    """The inventory as a CycloneDX 1.6 BOM (a JSON-ready dict)."""
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"exuvia:{inv.manifest.get('last_checkpoint_sha256')}:"
        f"{inv.manifest.get('sealed_ns')}:{inv.bundle}",
    )
    cov = inv.coverage
    target = {
        "type": "container",
        "bom-ref": "target",
        "name": target_name(inv),
        "properties": _props(
            [
                ("exuvia:target:uri", str(inv.target.get("uri") or "")),
                ("exuvia:target:runtime", str(inv.target.get("runtime") or "")),
                ("exuvia:target:container-id", str(inv.target.get("container_id") or "")),
                ("exuvia:target:image-digest", str(inv.target.get("image_digest") or "")),
            ]
        ),
    }
    meta_props = [
        ("exuvia:coverage:executables", str(cov.total)),
        ("exuvia:coverage:accounted", str(cov.accounted)),
        ("exuvia:coverage:percent", "" if cov.percent is None else f"{cov.percent}"),
        *[("exuvia:coverage:unaccounted", p) for p in cov.unaccounted],
        *[("exuvia:coverage:added-after-start", p) for p in cov.added_after_start],
        *[("exuvia:coverage:modified", p) for p in cov.modified],
        *[("exuvia:blind-spot", p) for p in inv.problems],
    ]
    refs = {p.ref for p in inv.packages}
    components = [component(p) for p in inv.packages] + [file_component(e) for e in inv.executables]
    deps: list[dict[str, Any]] = [
        {"ref": "target", "dependsOn": sorted(refs | {exe_ref(e) for e in inv.executables})}
    ]
    for p in inv.packages:
        good = [d for d in p.depends if d in refs and d != p.ref]
        if good:
            deps.append({"ref": p.ref, "dependsOn": sorted(set(good))})
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC,
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": sbom_timestamp(inv),
            "tools": {
                "components": [{"type": "application", "name": "exuvia", "version": __version__}]
            },
            "component": target,
            "properties": _props(meta_props),
        },
        "components": components,
        "dependencies": deps,
    }
