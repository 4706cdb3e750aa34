"""Extract-and-analyse helpers for the inventory tests."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from forensics.inventory.elf import analyze
from forensics.inventory.elfblob import ElfBlob, decode_blob
from forensics.inventory.elfscan import DEFAULT_LIMITS, Limits, extract
from forensics.inventory.model import ElfInfo


def blob_of(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> ElfBlob:
    """The extract the capture would store for ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return decode_blob(extract(lambda off, n: os.pread(fd, n, off), size, limits=limits))
    finally:
        os.close(fd)


def blob_of_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ElfBlob:
    return decode_blob(
        extract(lambda off, n: data[off : off + n] if off >= 0 else b"", len(data), limits=limits)
    )


def analyze_path(path: str | Path) -> ElfInfo:
    return analyze(blob_of(path))


def readelf(path: str | Path) -> dict[str, object]:
    """What readelf says: NEEDED, SONAME, RPATH/RUNPATH (-d) and the GNU build-id (-n)."""
    d = subprocess.run(
        ["readelf", "-dW", str(path)], capture_output=True, text=True, check=False
    ).stdout
    n = subprocess.run(
        ["readelf", "-nW", str(path)], capture_output=True, text=True, check=False
    ).stdout
    split = lambda xs: [p for x in xs for p in x.split(":") if p]  # noqa: E731
    soname = re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", d)
    build_id = re.findall(r"Build ID: ([0-9a-f]+)", n)
    return {
        "needed": re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", d),
        "soname": soname[0] if soname else None,
        "rpath": split(re.findall(r"\(RPATH\)\s+Library rpath: \[(.*)\]", d)),
        "runpath": split(re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", d)),
        "build_id": build_id[0] if build_id else None,
    }


def ours(info: ElfInfo) -> dict[str, object]:
    return {
        "needed": info.needed,
        "soname": info.soname,
        "rpath": info.rpath,
        "runpath": info.runpath,
        "build_id": info.build_id,
    }
