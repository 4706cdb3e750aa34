"""Scanning a captured bundle: the members that hold evidence bytes, streamed.

Which members are scanned is a documented list of name prefixes,
:data:`SCAN_PREFIXES`: copied file contents, recovered deleted/memfd
executables, ELF extracts and process memory cores (``memory/*.core``, scanned
as soon as a bundle carries them). Records, logs and the manifest are not.

The bundle is read once, as a stream, one chunk at a time (never extracted,
never held whole); each scanned member's SHA-256 is computed in the same read
and checked against the manifest at the end, so a match names exactly the
bytes it was found in.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from forensics.bundle.format import MANIFEST_NAME, decode_path
from forensics.bundle.reader import CHUNK, load_json
from forensics.errors import BundleError
from forensics.memory.view import stored_regions
from forensics.scan.engine import ChunkScanner, ScanLimits
from forensics.scan.model import ScanResult, ScanSkip
from forensics.scan.rules import CompiledRules
from forensics.textsafe import fsdecode_safe
from forensics.timeline.member_pass import each_member

#: the members a scan reads (docs/scan.md): name prefix -> what they hold
SCAN_PREFIXES: dict[str, str] = {
    "files/": "copied file contents",
    "binaries/": "recovered deleted or memfd executables",
    "elf/": "ELF extracts of executables not copied whole",
    "memory/": "process memory cores (capture --memory)",
}
_PATH_PREFIXES = ("files/", "elf/")
#: the memory collector's records (where each core's regions are), read whole
MEMORY_RECORDS = "artifacts/memory"
MAX_RECORDS = 64 << 20


def scanned_member(name: str) -> bool:
    return name.startswith(tuple(SCAN_PREFIXES))


def target_path(member: str) -> str | None:
    """The target's path a ``files/`` or ``elf/`` member mirrors (escaped text), else None."""
    for prefix in _PATH_PREFIXES:
        if member.startswith(prefix):
            return fsdecode_safe(decode_path(member[len(prefix) - 1 :]))
    return None


def _reference_ns(manifest: object) -> int | None:
    if isinstance(manifest, dict):
        acq = manifest.get("acquisition")
        if isinstance(acq, dict):
            for key in ("end_ns", "start_ns"):
                val = acq.get(key)
                if isinstance(val, int) and not isinstance(val, bool) and val > 0:
                    return val
    return None


def scan_bundle(
    bundle: Path | BinaryIO,
    rules: CompiledRules,
    limits: ScanLimits | None = None,
    progress: Callable[[str], None] | None = None,
    name: str | None = None,
) -> ScanResult:
    """Scan every member of ``bundle`` named by :data:`SCAN_PREFIXES` with ``rules``.

    ``bundle`` may be an open stream read once from where it is (an object read
    back from the evidence store), then ``name`` is the bundle's file name."""
    limits = limits or ScanLimits()
    label = name or (bundle.name if isinstance(bundle, Path) else "bundle")
    result = ScanResult(bundle=label, rules=rules.describe(), limits=limits.to_dict())
    result.started_ns = time.time_ns()
    scanner = ChunkScanner(rules.rules, limits)
    note = progress or (lambda _m: None)
    hashes: dict[str, str] = {}
    manifest_bytes: bytes | None = None
    current: str | None = None  # the scanned member being read

    cores: dict[str, tuple[int | None, list[dict[str, Any]]]] = {}  # memory records

    def visit(info: tarfile.TarInfo, f: IO[bytes]) -> None:
        nonlocal manifest_bytes, current
        name = info.name
        if name == MANIFEST_NAME:
            if info.size <= 256 << 20:
                manifest_bytes = f.read()
            return
        if name.startswith(MEMORY_RECORDS) and info.size <= MAX_RECORDS:
            cores.update(_core_regions(f.read()))
            return
        if not scanned_member(name):
            return
        note(f"scanning {name}")
        current = name
        digest = hashlib.sha256()
        scanner.begin(name, target_path(name))
        read = 0
        # a member within one window in one read (one buffer, no joins); a
        # larger one chunk by chunk, so memory stays bounded
        step = info.size if info.size <= limits.window else CHUNK
        while chunk := f.read(step):
            digest.update(chunk)
            scanner.feed(chunk)
            read += len(chunk)
        if read < info.size:
            raise BundleError("the stream ends inside a member")
        sha = digest.hexdigest()
        hashes[name] = sha
        matches, skips = scanner.end(sha)
        current = None
        result.members_scanned += 1
        if scanner.windows > 1:
            result.windowed_members += 1
        result.matches.extend(matches)
        result.skips.extend(skips)

    done = each_member(bundle, visit)
    if done.cut is not None:
        result.complete = False
        if current is not None:
            result.skips.append(ScanSkip(current, "the bundle's stream ends inside it; "
                                         "not scanned"))  # fmt: skip
        result.warnings.append(
            f"the bundle's stream ends early or is corrupt after {done.members} members "
            f"({done.cut}); the scan covers what came before"
        )
    for m in result.matches:  # a core's: where in the process (its memory record)
        if m.member in cores:
            m.pid, m.regions = cores[m.member]
    result.bytes_scanned = scanner.bytes_scanned
    _check_manifest(result, manifest_bytes, hashes)
    result.finished_ns = time.time_ns()
    return result


def _core_regions(data: bytes) -> Iterator[tuple[str, tuple[int | None, list[dict[str, Any]]]]]:
    """(core member, (pid, stored regions)) for each ``memory`` record of a records
    member; lines that are not such a record are left (the timeline reports them)."""
    for raw in data.splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("kind") == "memory":
            member, pid = rec.get("member"), rec.get("pid")
            if isinstance(member, str):
                pid = pid if type(pid) is int else None
                yield member, (pid, stored_regions(rec))


def _check_manifest(result: ScanResult, data: bytes | None, hashes: dict[str, str]) -> None:
    if data is None:
        result.complete = False
        result.warnings.append("the bundle has no manifest (cut off): scanned members unverified")
        return
    result.manifest_sha256 = hashlib.sha256(data).hexdigest()
    manifest = load_json(data, "manifest")
    result.reference_ns = _reference_ns(manifest)
    listed = manifest.get("members") if isinstance(manifest, dict) else None
    expected = {
        m.get("name"): m.get("sha256")
        for m in (listed if isinstance(listed, list) else [])
        if isinstance(m, dict)
    }
    for name, sha in hashes.items():
        want = expected.get(name)
        if want is None:
            result.skips.append(ScanSkip(name, "not listed in the manifest (matches unverified)"))
        elif want != sha:
            result.warnings.append(
                f"integrity: {name} does not match its manifest hash (run `exuvia verify`)"
            )
