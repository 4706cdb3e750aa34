"""`exuvia sbom BUNDLE --format cyclonedx-json|spdx-json|table [-o FILE]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from forensics.errors import OutputError
from forensics.inventory.analyze import build_inventory
from forensics.inventory.cyclonedx import to_cyclonedx
from forensics.inventory.report import table_lines
from forensics.inventory.spdx import to_spdx

FORMATS = ("cyclonedx-json", "spdx-json", "table")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sbom",
        help="software inventory of a captured target (CycloneDX, SPDX or a table)",
        description="List what is really inside the captured container: packages from "
        "dpkg (status and distroless status.d), apk, rpm (sqlite), Python, npm and Java "
        "metadata, modules embedded in Go and Rust (cargo-auditable) binaries, and every "
        "executable and shared object with its ELF facts. Each executable is matched to "
        "the package that claims it (by path, by hash, or by its own build information); "
        "the report lists those nothing accounts for, those added after the container "
        "started, and the coverage.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE")
    p.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here, not stdout")
    p.set_defaults(handler=run)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror}") from err


def run(args: argparse.Namespace) -> int:
    inv = build_inventory(args.bundle)
    if args.format == "table":
        text = "\n".join(table_lines(inv)) + "\n"
    elif args.format == "cyclonedx-json":
        text = json.dumps(to_cyclonedx(inv), indent=2, ensure_ascii=False) + "\n"
    else:
        text = json.dumps(to_spdx(inv), indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        _write(args.output, text)
        cov = inv.coverage
        pct = "n/a" if cov.percent is None else f"{cov.percent}%"
        print(
            f"{args.output}: {len(inv.packages)} packages, {cov.total} executables, "
            f"{cov.accounted} accounted for ({pct}), {len(cov.unaccounted)} unaccounted"
        )
    return 0
