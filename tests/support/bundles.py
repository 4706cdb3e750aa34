"""Reading a bundle in tests: artifacts as lists of dicts, members as bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.bundle.reader import BundleReader


def artifacts(bundle: Path) -> dict[str, list[dict[str, Any]]]:
    members = BundleReader(bundle).read_members(lambda n: n.startswith("artifacts/"))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, data in members.items():
        key = name.removeprefix("artifacts/").removesuffix(".jsonl").removesuffix(".json")
        out[key] = [json.loads(line) for line in data.splitlines() if line.strip()]
    return out


def member(bundle: Path, name: str) -> bytes:
    return BundleReader(bundle).read_members(lambda n: n == name)[name]


def member_names(bundle: Path) -> list[str]:
    return [m.name for m in BundleReader(bundle).members()]
