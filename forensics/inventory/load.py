"""Read what the inventory needs from a bundle, in one pass over its stream.

Kept: the manifest and the artifacts (filesystem, processes, binaries, elf,
target), every ELF extract (``elf/...``, ``binaries/<pid>/exe.elfx``), the
copied package metadata files (forensics/inventory/paths.py) and, for every
copied file or process executable that starts with the ELF magic, an extract
made here the way the capture makes one (so a copied binary is analysed exactly
like one that was not copied). JARs are opened from a temporary spool file.

The bundle is untrusted: sizes are capped, nothing is written outside a private
temporary file, and a stream that ends early keeps what was read before it.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from forensics.bundle.format import MANIFEST_NAME, decode_path, record_collector
from forensics.bundle.reader import open_stream
from forensics.errors import BundleError
from forensics.inventory import java
from forensics.inventory.elfblob import BlobError, ElfBlob, decode_blob
from forensics.inventory.elfscan import extract
from forensics.inventory.elftypes import ELF_MAGIC
from forensics.inventory.model import Package
from forensics.inventory.paths import LIMITS, metadata_kind
from forensics.memory.image import MemfdImage, memfd_images

MAX_JSON = 1 << 30
MAX_BLOB = 64 << 20
MAX_COPY_ANALYSED = 1 << 30
CHUNK = 1 << 20
_PROC_EXE = re.compile(r"binaries/(\d+)/exe(\.elfx)?")
_CORE = re.compile(r"memory/(\d+)\.core")
ARTIFACTS = ("filesystem", "processes", "binaries", "elf", "target")


@dataclass
class Snapshot:
    """What a bundle holds for the inventory, keyed by the target's paths."""

    bundle: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: target path -> extract (or the reason there is none) of a file
    file_blobs: dict[str, ElfBlob | str] = field(default_factory=dict)
    #: pid -> extract (or reason) of a process's executable copied by the capture
    proc_blobs: dict[int, ElfBlob | str] = field(default_factory=dict)
    #: target path -> content of a copied package metadata file
    metadata: dict[str, bytes] = field(default_factory=dict)
    jars: dict[str, tuple[list[Package], list[str]]] = field(default_factory=dict)
    #: pid -> the memfd-backed images found in its core (capture --memory)
    memory_images: dict[int, list[MemfdImage]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def records(self, name: str) -> list[dict[str, Any]]:
        return self.artifacts.get(name, [])


def _read_all(f: IO[bytes], cap: int) -> bytes:
    return f.read(cap)


def _blob(data: bytes) -> ElfBlob | str:
    try:
        return decode_blob(data)
    except BlobError as err:
        return f"extract unreadable: {err}"


def _spooled_extract(f: IO[bytes], size: int, head: bytes) -> ElfBlob | str:
    """Extract from a member copied whole (spooled to a private temporary file)."""
    if size > MAX_COPY_ANALYSED:
        return f"copy of {size} bytes is over the {MAX_COPY_ANALYSED}-byte analysis cap"
    with tempfile.TemporaryFile() as tmp:
        tmp.write(head)
        while chunk := f.read(CHUNK):
            tmp.write(chunk)
        tmp.flush()
        fd = tmp.fileno()
        return decode_blob(extract(lambda off, n: os.pread(fd, n, off), tmp.tell()))


def _jar(f: IO[bytes], size: int, path: str) -> tuple[list[Package], list[str]]:
    if size > LIMITS["jar"]:
        return [], [f"{path}: {size} bytes, over the {LIMITS['jar']}-byte cap: not inspected"]
    with tempfile.TemporaryFile() as tmp:
        while chunk := f.read(CHUNK):
            tmp.write(chunk)
        tmp.seek(0)
        return java.inspect_jar(tmp, path)


def _jsonl(data: bytes, name: str, problems: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            problems.append(f"{name}: line {n} is not JSON")
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


class MemberLoader:
    """Takes one member at a time into a :class:`Snapshot` (the findings engine
    feeds it the members it does not read itself, in the same pass)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def member(self, info: tarfile.TarInfo, f: IO[bytes]) -> None:
        name, size, snap = info.name, info.size, self.snap
        if name == MANIFEST_NAME:
            try:
                doc = json.loads(_read_all(f, MAX_JSON))
            except (ValueError, RecursionError):
                snap.problems.append("manifest is not JSON")
                return
            if isinstance(doc, dict):
                snap.manifest = doc
        elif name.startswith("artifacts/"):
            # artifacts/<c>.jsonl (1.x) or its chunks artifacts/<c>/NNNNNN.jsonl (2.0)
            key = record_collector(name) or name[10:].removesuffix(".json")
            if key in ARTIFACTS:
                records = _jsonl(_read_all(f, MAX_JSON), name, snap.problems)
                snap.artifacts.setdefault(key, []).extend(records)
        elif name.startswith("elf/"):
            path = decode_path(name[3:]).decode("utf-8", "replace")
            if size > MAX_BLOB:
                snap.file_blobs[path] = f"extract of {size} bytes is implausible"
            else:
                snap.file_blobs[path] = _blob(_read_all(f, MAX_BLOB))
        elif (m := _PROC_EXE.fullmatch(name)) is not None:
            pid = int(m.group(1))
            if m.group(2):
                snap.proc_blobs[pid] = (
                    _blob(_read_all(f, MAX_BLOB)) if size <= MAX_BLOB else "too big"
                )
            else:
                head = f.read(4)
                if head == ELF_MAGIC:
                    snap.proc_blobs[pid] = _spooled_extract(f, size, head)
        elif name.startswith("files/"):
            self.file(decode_path(name[5:]), size, f)
        elif (m := _CORE.fullmatch(name)) is not None:
            # the head and the memfd images' first pages only (forensics.memory.image)
            snap.memory_images[int(m.group(1))] = memfd_images(f.read)

    def file(self, raw_path: bytes, size: int, f: IO[bytes]) -> None:
        snap = self.snap
        path = raw_path.decode("utf-8", "replace")
        kind = metadata_kind(raw_path)
        if kind == "jar":
            snap.jars[path] = _jar(f, size, path)
            return
        if kind is not None and kind in LIMITS:
            if size > LIMITS[kind]:
                snap.problems.append(f"{path}: {size} bytes, over the {kind} cap: not read")
            else:
                snap.metadata[path] = _read_all(f, LIMITS[kind])
            return
        head = f.read(4)
        if head == ELF_MAGIC:
            snap.file_blobs[path] = _spooled_extract(f, size, head)


def load_bundle(path: str | Path) -> Snapshot:
    """The inventory's view of a bundle. BundleError when it cannot be read at all."""
    snap = Snapshot(bundle=str(path))
    loader = MemberLoader(snap)
    raw, stream = open_stream(path)
    try:
        try:
            tar = tarfile.open(
                fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape"
            )
        except (tarfile.TarError, OSError, EOFError, BundleError) as err:
            raise BundleError(f"{path}: not a readable bundle ({err})") from None
        members = 0
        try:
            for info in tar:
                members += 1
                if not info.isreg():
                    continue
                f = tar.extractfile(info)
                if f is not None:
                    loader.member(info, f)
        except (tarfile.TarError, OSError, EOFError, BundleError, ValueError) as err:
            if members == 0:
                raise BundleError(f"{path}: not a readable bundle ({err})") from None
            snap.problems.append(
                f"the bundle's stream ends early or is corrupt after {members} members ({err}); "
                "the inventory covers what came before"
            )
    finally:
        raw.close()
    finish(snap)
    return snap


def finish(snap: Snapshot) -> None:
    """What a loaded snapshot says about itself once the stream has ended."""
    if not snap.manifest:
        snap.problems.append("no manifest: the capture did not finish; run `exuvia verify`")
