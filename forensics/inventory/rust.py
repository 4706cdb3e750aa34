"""Rust dependency lists embedded by cargo-auditable (the .dep-v0 section).

The section holds zlib-compressed JSON: ``{"format": 1, "packages": [{"name",
"version", "source" ("crates.io", "local", "git", "registry", "builtin"),
"kind" ("runtime" or "build"), "dependencies": [indexes], "root": bool}]}``.
Decompression is capped, so a hostile section cannot exhaust memory.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

MAX_JSON = 16 << 20


class AuditableError(ValueError):
    """The .dep-v0 data cannot be read (with the reason)."""


@dataclass(slots=True)
class RustPackage:
    name: str
    version: str
    source: str = "crates.io"
    kind: str = "runtime"
    root: bool = False
    dependencies: list[int] = field(default_factory=list)


def parse_dep_v0(data: bytes) -> list[RustPackage]:
    """The packages of a cargo-auditable section, root first as written."""
    d = zlib.decompressobj()
    try:
        raw = d.decompress(data, MAX_JSON)
    except zlib.error as err:
        raise AuditableError(f"not zlib data ({err})") from None
    if d.unconsumed_tail:
        raise AuditableError(f"decompresses to more than {MAX_JSON} bytes")
    if not d.eof:
        raise AuditableError("compressed stream is truncated")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise AuditableError(f"not JSON ({err})") from None
    pkgs = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(pkgs, list):
        raise AuditableError("no package list")
    out: list[RustPackage] = []
    for n, p in enumerate(pkgs):
        name = p.get("name") if isinstance(p, dict) else None
        version = p.get("version") if isinstance(p, dict) else None
        if not isinstance(p, dict) or not isinstance(name, str) or not isinstance(version, str):
            raise AuditableError(f"package {n} has no name or version")
        deps = p.get("dependencies")
        out.append(
            RustPackage(
                name=name,
                version=version,
                source=str(p.get("source") or "crates.io"),
                kind=str(p.get("kind") or "runtime"),
                root=p.get("root") is True,
                dependencies=[
                    i
                    for i in (deps if isinstance(deps, list) else [])
                    if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(pkgs)
                ],
            )
        )
    return out
