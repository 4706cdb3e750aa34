"""The capture side of the inventory: the acquirer's ELF hook and process executables."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from collectors.fs.acquire import FilesystemAcquirer
from collectors.fs.elf_extract import elf_member_name, extract_process_exe
from collectors.fs.policy import CopyPolicy
from forensics.bundle.writer import BundleWriter
from forensics.inventory.elf import analyze
from forensics.inventory.elfblob import decode_blob
from forensics.records import Record, Skip
from tests.support.bundles import member, member_names

TRUE = Path("/usr/bin/true")
pytestmark = pytest.mark.skipif(not TRUE.is_file(), reason="no /usr/bin/true")


def _acquire(root: Path, policy: str, out: Path) -> tuple[list[Record], list[Skip], list[Record]]:
    raw = out.open("wb")
    w = BundleWriter(raw, compress="none")
    acq = FilesystemAcquirer(w, CopyPolicy(policy))
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        items = list(acq.run(fd, frozenset(), None))
    finally:
        os.close(fd)
    elf_recs = list(acq.elf.records())
    w.finish({})
    raw.close()
    recs = [i for i in items if isinstance(i, Record)]
    skips = [i for i in items if isinstance(i, Skip)]
    return recs, skips, elf_recs


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "usr/bin").mkdir(parents=True)
    (r / "etc").mkdir()
    shutil.copyfile(TRUE, r / "usr/bin/true")
    (r / "usr/bin/script").write_text("#!/bin/sh\necho hi\n")
    (r / "usr/bin/tiny").write_bytes(b"\x7fELF" + b"\x09" * 16)  # ELF magic, then garbage
    (r / "etc/hosts").write_text("127.0.0.1 localhost\n")
    os.link(r / "usr/bin/true", r / "usr/bin/true-link")
    return r


def test_elf_files_not_copied_get_an_extract(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.exv"
    recs, skips, elf_recs = _acquire(root, "none", out)
    assert skips == []
    names = member_names(out)
    assert "elf/usr/bin/true" in names
    assert not any(n.startswith("elf/usr/bin/script") for n in names)
    assert not any(n.startswith("elf/etc") for n in names)
    fs = {r.data["path"]: r.data for r in recs}
    (rec,) = [r.data for r in elf_recs if r.data["path"] == "/usr/bin/true"]
    assert rec["member"] == "elf/usr/bin/true" == elf_member_name(b"/usr/bin/true")
    assert rec["sha256"] == fs["/usr/bin/true"]["sha256"] and rec["size"] == TRUE.stat().st_size
    # the hard link is not extracted twice: the inventory joins it by hardlink_of
    assert not any("true-link" in n for n in names)
    blob = decode_blob(member(out, "elf/usr/bin/true"))
    assert blob.file_size == TRUE.stat().st_size
    assert analyze(blob).needed  # a dynamically linked system binary
    tiny = decode_blob(member(out, "elf/usr/bin/tiny"))
    assert tiny.error == "bad ELF class 9"  # reported, not a crash


def test_files_copied_whole_get_no_extract(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.exv"
    _recs, _skips, elf_recs = _acquire(root, "all", out)
    names = member_names(out)
    assert "files/usr/bin/true" in names
    assert not any(n.startswith("elf/") for n in names)
    assert elf_recs == []


def test_process_exe_too_big_to_copy_gets_an_extract(tmp_path: Path) -> None:
    procfs = tmp_path / "proc"
    (procfs / "42").mkdir(parents=True)
    os.symlink(TRUE, procfs / "42" / "exe")
    buf = io.BytesIO()
    w = BundleWriter(buf, compress="none")
    items = list(
        extract_process_exe(w, str(procfs), 42, {"exe": "/tmp/.x (deleted)", "exe_memfd": False})
    )
    (rec,) = items
    assert isinstance(rec, Record) and rec.kind == "binary"
    assert rec.data == {
        "pid": 42,
        "exe": "/tmp/.x (deleted)",
        "reason": "deleted",
        "elf_member": "binaries/42/exe.elfx",
        "size": TRUE.stat().st_size,
        "copied": False,
    }
    missing = list(extract_process_exe(w, str(procfs), 43, {}))
    assert len(missing) == 1 and isinstance(missing[0], Skip)
