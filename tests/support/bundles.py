"""Reading a bundle in tests: artifacts as lists of dicts, members as bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.bundle.format import ARTIFACT_DIR, record_collector
from forensics.bundle.reader import BundleReader


def joined_records(members: dict[str, bytes]) -> dict[str, bytes]:
    """``members`` plus, for each collector written in chunks (format 2.0,
    ``artifacts/<c>/NNNNNN.jsonl``), their concatenation in bundle order under the
    1.x name ``artifacts/<c>.jsonl``, so a test can read either layout alike."""
    out = dict(members)
    for name, data in members.items():
        c = record_collector(name)
        whole = f"{ARTIFACT_DIR}{c}.jsonl"
        if c is not None and name != whole and whole not in members:
            out[whole] = out.get(whole, b"") + data
    return out


def artifacts(bundle: Path) -> dict[str, list[dict[str, Any]]]:
    members = BundleReader(bundle).read_members(lambda n: n.startswith("artifacts/"))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, data in members.items():
        # artifacts/<c>.jsonl (1.x) or its chunks artifacts/<c>/NNNNNN.jsonl (2.0) -> "<c>"
        key = record_collector(name) or name.removeprefix("artifacts/").removesuffix(".jsonl")
        key = key.removesuffix(".json")
        out.setdefault(key, []).extend(json.loads(ln) for ln in data.splitlines() if ln.strip())
    return out


def member(bundle: Path, name: str) -> bytes:
    """A member's bytes; ``artifacts/<c>.jsonl`` also when it was written in chunks."""
    wanted = record_collector(name)

    def pick(n: str) -> bool:
        return n == name or (wanted is not None and record_collector(n) == wanted)

    return joined_records(BundleReader(bundle).read_members(pick))[name]


def member_names(bundle: Path) -> list[str]:
    return [m.name for m in BundleReader(bundle).members()]
