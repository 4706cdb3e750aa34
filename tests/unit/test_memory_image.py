"""forensics.memory.image: the memfd image a core maps, read from the core's head and
the mapping's first page (a core laid out by forensics.memory.core, a real ELF)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from forensics.memory.core import FileMapping, ProcessFacts, Segment, layout
from forensics.memory.image import memfd_images

EXE = os.path.realpath(sys.executable)


def _core(image: bytes, path: bytes = b"/memfd:implant (deleted)") -> bytes:
    segs = [
        Segment(0x10000, 0x11000, "rw-p", 4096),
        Segment(0x400000, 0x400000 + len(image), "r--p", len(image)),
    ]
    files = [FileMapping(0x400000, 0x400000 + len(image), 0, path)]
    lay = layout(segs, ProcessFacts(pid=7), files=files)
    return lay.head + b"\xaa" * 4096 + image


def test_the_mapped_image_gives_machine_type_and_the_build_id_readelf_gives() -> None:
    with open(EXE, "rb") as fh:
        image = fh.read(64 << 10)
    core = _core(image)
    (img,) = memfd_images(io.BytesIO(core).read)
    assert img.path == "/memfd:implant (deleted)" and img.start == 0x400000
    assert core[img.core_offset : img.core_offset + 4] == b"\x7fELF"
    assert img.machine == "x86_64" and img.e_type in ("ET_DYN", "ET_EXEC")
    # golden reference: binutils (dev.sh installs it); this interpreter has a build-id
    notes = subprocess.run(["readelf", "-n", EXE], check=True, capture_output=True, text=True)
    assert img.build_id == notes.stdout.split("Build ID:")[1].split()[0]


def test_not_an_elf_or_not_a_memfd_or_cut_short_is_said_or_skipped_never_raised() -> None:
    (junk,) = memfd_images(io.BytesIO(_core(b"\x1b[31m" * 1000)).read)
    assert junk.problem == "the mapping does not start with an ELF header"
    assert memfd_images(io.BytesIO(_core(b"\x7fELF" * 1024, b"/usr/bin/app")).read) == []
    core = _core(b"\x7fELF" + bytes(4092))
    for cut in (0, 10, 64, 200, len(core) - 4096, len(core) - 10):
        out = memfd_images(io.BytesIO(core[:cut]).read)
        assert all(i.problem or i.machine for i in out)
    assert memfd_images(io.BytesIO(b"not a core").read) == []


@pytest.mark.parametrize("count", [2**63, 10**6])
def test_a_hostile_nt_file_count_is_ignored(count: int) -> None:
    core = bytearray(_core(b"\x7fELF" + bytes(4092)))
    # the NT_FILE note is the last one: its count is the first 8 bytes of its desc
    i = core.rfind(b"CORE\0\0\0\0") + 8
    core[i : i + 8] = count.to_bytes(8, "little")
    assert memfd_images(io.BytesIO(bytes(core)).read) == []
