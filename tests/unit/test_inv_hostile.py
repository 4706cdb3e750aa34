"""Bad input never crashes or hangs the ELF layer: it is reported, bounded in time and memory.

The tests marked "found by the fuzzer" are what bench/fuzz_elf.py found.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

import pytest

from forensics.inventory.elf import Unparseable, analyze
from forensics.inventory.elfblob import BlobError, ElfBlob, NotCaptured, decode_blob, encode_blob
from forensics.inventory.elfscan import extract
from tests.support.elfbuild import SHT_DYNAMIC, SHT_NOTE, Elf, Section, build, note
from tests.support.elfx import blob_of, blob_of_bytes

BASE = build(
    Elf(
        sections=[
            Section(".interp", data=b"/lib/ld.so\0"),
            Section(
                ".note.gnu.build-id", SHT_NOTE, data=note(b"GNU", 3, bytes(range(20))), align=4
            ),
            Section(".dynstr", 3, data=b"\0libc.so.6\0"),
            Section(
                ".dynamic", SHT_DYNAMIC, data=struct.pack("<qQqQ", 1, 1, 0, 0), link=3, align=8
            ),
        ],
        phdrs=[(3, 4, ".interp"), (4, 4, ".note.gnu.build-id"), (2, 6, ".dynamic")],
    )
)


def _check(data: bytes, seconds: float = 2.0) -> tuple[object, float]:
    """Extract and analyse; returns (ElfInfo or the Unparseable reason, seconds)."""
    t0 = time.monotonic()
    blob = blob_of_bytes(data)
    try:
        out: object = analyze(blob, seconds=seconds)
    except Unparseable as err:
        out = f"unparseable: {err}"
    return out, time.monotonic() - t0


def test_the_base_fixture_is_good() -> None:
    info, _ = _check(BASE)
    assert not isinstance(info, str)
    assert info.needed == ["libc.so.6"] and info.interpreter == "/lib/ld.so"  # type: ignore[attr-defined]
    assert info.build_id == bytes(range(20)).hex()  # type: ignore[attr-defined]


@pytest.mark.parametrize("cut", [0, 3, 4, 15, 16, 40, 63, 64, 100, 120, 200, 300, len(BASE) - 1])
def test_truncated_files(cut: int) -> None:
    out, secs = _check(BASE[:cut])
    assert secs < 2
    if cut < 64:
        assert isinstance(out, str) and out.startswith("unparseable")


def _patched(**fields: int) -> bytes:
    """BASE with ELF header fields overwritten."""
    layout = {
        "e_phoff": (0x20, "<Q"),
        "e_shoff": (0x28, "<Q"),
        "e_phentsize": (0x36, "<H"),
        "e_phnum": (0x38, "<H"),
        "e_shentsize": (0x3A, "<H"),
        "e_shnum": (0x3C, "<H"),
        "e_shstrndx": (0x3E, "<H"),
        "ei_class": (4, "<B"),
        "ei_data": (5, "<B"),
    }
    data = bytearray(BASE)
    for k, v in fields.items():
        off, fmt = layout[k]
        struct.pack_into(fmt, data, off, v)
    return bytes(data)


@pytest.mark.parametrize(
    "fields",
    [
        {"e_shoff": 2**63},
        {"e_shoff": len(BASE) - 10},
        {"e_shnum": 0xFFFF},
        {"e_shnum": 0, "e_shstrndx": 0xFFFF},
        {"e_shentsize": 0},
        {"e_shentsize": 0xFFFF},
        {"e_shstrndx": 0xFFFE},
        {"e_phoff": 2**64 - 1},
        {"e_phnum": 0xFFFF},
        {"e_phentsize": 1},
        {"e_phnum": 0xFFFF, "e_phentsize": 0xFFFF},
        {"ei_class": 7},
        {"ei_data": 0},
        {"ei_class": 1},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_hostile_header_fields(fields: dict[str, int]) -> None:
    out, secs = _check(_patched(**fields))
    assert secs < 2
    if "ei_class" in fields and fields["ei_class"] == 7:
        assert out == "unparseable: bad ELF class 7"


def _section_patched(index: int, **fields: int) -> bytes:
    """BASE with one section header's fields overwritten (index 1..)."""
    data = bytearray(BASE)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    at = shoff + 64 * index
    layout = {
        "sh_type": (4, "<I"),
        "sh_flags": (8, "<Q"),
        "sh_offset": (24, "<Q"),
        "sh_size": (32, "<Q"),
        "sh_link": (40, "<I"),
        "sh_name": (0, "<I"),
    }
    for k, v in fields.items():
        off, fmt = layout[k]
        struct.pack_into(fmt, data, at + off, v)
    return bytes(data)


@pytest.mark.parametrize(
    ("index", "fields"),
    [
        (4, {"sh_size": 2**63}),
        (4, {"sh_offset": 2**64 - 8}),
        (4, {"sh_link": 999}),
        (3, {"sh_size": 2**40}),
        (2, {"sh_size": 2**62}),
        (2, {"sh_offset": 3}),
        (1, {"sh_name": 2**31}),
        (5, {"sh_size": 2**60}),  # the section name table
        (1, {"sh_flags": 0x802}),  # SHF_COMPRESSED on .interp
        (4, {"sh_type": 0x6FFFFFF6}),  # "GNU hash" where the dynamic table is
    ],
)
def test_hostile_section_sizes_and_offsets(index: int, fields: dict[str, int]) -> None:
    out, secs = _check(_section_patched(index, **fields))
    assert secs < 2
    assert isinstance(out, str) or out is not None


def test_hostile_notes_and_dynamic() -> None:
    huge_note = struct.pack("<III", 0xFFFFFFF0, 0xFFFFFFF0, 3) + b"GNU\0"
    no_null = struct.pack("<qQ", 1, 1) * 64  # DT_NEEDED forever, no DT_NULL
    past = struct.pack("<qQqQ", 1, 10**9, 0, 0)  # a string far past the table
    for n, d in [(huge_note, no_null), (note(b"GNU", 3, b""), past)]:
        elf = build(
            Elf(
                sections=[
                    Section(".note.x", SHT_NOTE, data=n, align=4),
                    Section(".dynstr", 3, data=b"\0libc.so.6\0"),
                    Section(".dynamic", SHT_DYNAMIC, data=d, link=2, align=8),
                ]
            )
        )
        out, secs = _check(elf)
        assert secs < 2 and not isinstance(out, str)


def test_go_buildinfo_with_hostile_lengths() -> None:
    head = b"\xff Go buildinf:" + bytes([8, 2])
    for tail in [b"\xff" * 16, b"\x80" * 10, b"\x05go1.2\xff\xff\xff\xff\x0f", b"\x00"]:
        elf = build(
            Elf(sections=[Section(".go.buildinfo", flags=3, data=head + b"\0" * 16 + tail)])
        )
        out, secs = _check(elf)
        assert secs < 2 and not isinstance(out, str)
        assert out.go is None and out.go_error  # type: ignore[attr-defined]
    # a length that runs past the section but not past its segment reads on, as Go does
    elf = build(
        Elf(sections=[Section(".go.buildinfo", flags=3, data=head + b"\0" * 16 + b"\x7fgo1")])
    )
    out, secs = _check(elf)
    assert secs < 2 and out.go is not None and out.go.go_version.startswith("go1")  # type: ignore[attr-defined]


def test_time_limit_stops_analysis() -> None:
    blob = blob_of_bytes(BASE)
    info = analyze(blob, seconds=-1)  # already past the deadline
    assert any("time limit" in n for n in info.notes)


def test_huge_sparse_file_is_bounded(tmp_path: Path) -> None:
    """A 16 GiB file (sparse): the extract reads a bounded part, no digests."""
    p = tmp_path / "huge"
    with p.open("wb") as f:
        f.write(BASE)
        f.truncate(16 << 30)
    t0 = time.monotonic()
    blob = blob_of(p)
    assert time.monotonic() - t0 < 2
    assert blob.file_size == 16 << 30 and len(blob.data) < 64 << 10
    assert "digests" not in blob.header and any("no MD5/SHA-1" in n for n in blob.notes)
    assert analyze(blob).needed == ["libc.so.6"]


def test_not_elf_and_empty() -> None:
    for data in (b"", b"\x7fEL", b"MZ" + b"\0" * 100, b"\x7fELF"):
        with pytest.raises(Unparseable):
            analyze(blob_of_bytes(data))


# -- the blob format itself ----------------------------------------------------------
def test_blob_roundtrip_and_sparse_reads() -> None:
    raw = encode_blob(100, [(10, b"abcdef"), (12, b"cdefgh"), (50, b"xyz")], notes=["n"])
    blob = decode_blob(raw)
    assert blob.ranges == [(10, 8), (50, 3)] and blob.notes == ["n"]
    img = blob.image()
    assert img.pread(10, 8) == b"abcdefgh"
    assert img.pread(14, 100) == b"efgh"  # short at the end of a range
    assert img.read_filled(8, 4) == b"\0\0ab"
    assert img.pread(100, 5) == b""
    with pytest.raises(NotCaptured):
        img.pread(20, 1)
    img.seek(50)
    assert img.read(10) == b"xyz" and img.tell() == 53


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"no newline",
        b"[]\n",
        b'{"format":"other"}\n',
        b'{"format":"exuvia-elfx","version":99,"file_size":1,"ranges":[]}\n',
        b'{"format":"exuvia-elfx","version":1,"file_size":10,"ranges":[[5,10]]}\n' + b"x" * 10,
        b'{"format":"exuvia-elfx","version":1,"file_size":10,"ranges":[[5,2],[0,2]]}\n' + b"x" * 4,
        b'{"format":"exuvia-elfx","version":1,"file_size":10,"ranges":[[0,2]]}\n' + b"x" * 3,
        b'{"format":"exuvia-elfx","version":1,"file_size":10,"ranges":[[0,true]]}\n',
        b'{"format":"exuvia-elfx","version":1,"file_size":-1,"ranges":[]}\n',
    ],
)
def test_malformed_blobs_are_refused(raw: bytes) -> None:
    with pytest.raises(BlobError):
        decode_blob(raw)


def test_extract_survives_a_shrinking_file() -> None:
    """pread returning less than asked (a file that shrank) is no error."""
    data = BASE[:200]
    raw = extract(lambda off, n: data[off : off + n], len(BASE))
    assert isinstance(decode_blob(raw), ElfBlob)


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf not installed")
def test_every_system_binary_truncated_in_half(tmp_path: Path) -> None:
    """Real binaries cut at half their size: reported or analysed, in time."""
    for name in ("/usr/bin/true", "/usr/bin/ls", "/usr/bin/env"):
        if not os.path.isfile(name):
            continue
        data = Path(name).read_bytes()
        _out, secs = _check(data[: len(data) // 2])  # an exception here fails the test
        assert secs < 2


def _sectionless(data: bytes) -> bytes:
    out = bytearray(data)
    struct.pack_into("<Q", out, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", out, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    return bytes(out)


def test_non_utf8_interpreter_and_needed_are_decoded_with_replacement() -> None:
    """Found by the fuzzer: pyelftools decodes these strictly (UnicodeDecodeError)."""
    dynstr = b"\0lib\xff.so\0"
    elf = Elf(
        sections=[
            Section(".interp", data=b"/lib/\xfe.so\0"),
            Section(".dynstr", 3, data=dynstr),
            Section(".dynamic", SHT_DYNAMIC, data=b"\0" * 64, link=2, align=8),
        ],
        phdrs=[(3, 4, ".interp"), (2, 6, ".dynamic")],
    )
    build(elf)  # lay out once to learn .dynstr's address
    strtab = elf.section(".dynstr").addr
    elf.section(".dynamic").data = struct.pack("<qQqQqQqQ", 5, strtab, 10, len(dynstr), 1, 1, 0, 0)
    data = build(elf)
    for variant in (data, _sectionless(data)):  # via sh_link, and via DT_STRTAB
        info, secs = _check(variant)
        assert not isinstance(info, str) and secs < 2
        assert info.interpreter == "/lib/\ufffd.so"  # type: ignore[attr-defined]
        assert info.needed == ["lib\ufffd.so"], info.notes  # type: ignore[attr-defined]


def test_dynamic_linked_to_a_section_that_is_no_string_table() -> None:
    """Found by the fuzzer: pyelftools asserts on such a link (AssertionError)."""
    elf = build(
        Elf(
            sections=[
                Section(".text", data=b"\0libc.so.6\0"),
                Section(".dynamic", SHT_DYNAMIC, data=struct.pack("<qQqQ", 1, 1, 0, 0), link=1),
            ]
        )
    )
    info, _ = _check(elf)
    assert not isinstance(info, str)
    assert info.needed == ["libc.so.6"]  # type: ignore[attr-defined]


def test_blob_header_is_json_with_notes() -> None:
    raw = extract(lambda off, n: _patched(e_shoff=2**63)[off : off + n], len(BASE))
    head = json.loads(raw.split(b"\n", 1)[0])
    assert any("outside the file" in n for n in head["notes"])
