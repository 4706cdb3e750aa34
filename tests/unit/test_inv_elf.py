"""ELF analysis against the real readelf, on this system's binaries and ones built here."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from forensics.inventory.elf import analyze
from forensics.inventory.elfblob import decode_blob
from forensics.inventory.elfscan import Limits, extract
from tests.support.elfx import analyze_path, blob_of, ours, readelf

pytestmark = pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf not installed")


def _system_elves(limit: int = 60) -> list[str]:
    """A deterministic spread of this system's executables and shared objects."""
    found: list[str] = []
    for d in ("/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode) or st.st_size < 64:
                    continue
                with open(p, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        found.append(p)
            except OSError:
                continue
    step = max(1, len(found) // limit)
    return found[::step][:limit]


SYSTEM = _system_elves()


@pytest.mark.parametrize("path", SYSTEM, ids=[os.path.basename(p) for p in SYSTEM])
def test_needed_soname_runpath_and_build_id_equal_readelf(path: str) -> None:
    info = analyze_path(path)
    assert ours(info) == readelf(path)


def test_the_system_sample_is_meaningful() -> None:
    assert len(SYSTEM) >= 20
    infos = [analyze_path(p) for p in SYSTEM]
    assert sum(1 for i in infos if i.needed) >= 10
    assert sum(1 for i in infos if i.build_id) >= 10


@pytest.fixture(scope="module")
def cbuilds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("cbuild")
    (d / "lib.c").write_text("int answer(void) { return 42; }\n")
    (d / "main.c").write_text(
        "#include <stdio.h>\nint answer(void);\n"
        'int main(void){printf("%d\\n", answer());return 0;}\n'
    )
    (d / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    (d / "hello.cc").write_text('#include <iostream>\nint main(){std::cout << "hi\\n";}\n')

    def cc(*args: str) -> None:
        subprocess.run(["gcc", *args], cwd=d, check=True, capture_output=True)

    cc("-shared", "-fPIC", "-Wl,-soname,libanswer.so.1", "-o", "libanswer.so.1", "lib.c")
    cc(
        "-o",
        "runpath",
        "main.c",
        "-L.",
        "-l:libanswer.so.1",
        "-Wl,-rpath,/opt/a:/opt/b",
        "-Wl,--enable-new-dtags",
    )
    cc(
        "-o",
        "rpath",
        "main.c",
        "-L.",
        "-l:libanswer.so.1",
        "-Wl,-rpath,/opt/old",
        "-Wl,--disable-new-dtags",
    )
    cc("-static", "-O1", "-o", "static", "hello.c")
    cc("-static-pie", "-O1", "-o", "static-pie", "hello.c")
    cc("-O1", "-g", "-o", "debug", "hello.c")
    cc("-O1", "-s", "-o", "stripped", "hello.c")
    if shutil.which("g++"):
        subprocess.run(
            ["g++", "-O1", "-o", "cxx", "hello.cc"], cwd=d, check=True, capture_output=True
        )
    return {p.name: p for p in d.iterdir() if p.suffix not in (".c", ".cc")}


@pytest.mark.parametrize(
    "name", ["libanswer.so.1", "runpath", "rpath", "static", "static-pie", "debug"]
)
def test_built_binaries_equal_readelf(cbuilds: dict[str, Path], name: str) -> None:
    assert ours(analyze_path(cbuilds[name])) == readelf(cbuilds[name])


def test_kinds_linking_and_symbols(cbuilds: dict[str, Path]) -> None:
    lib = analyze_path(cbuilds["libanswer.so.1"])
    assert (lib.kind, lib.soname, lib.linking) == ("shared object", "libanswer.so.1", "dynamic")
    run = analyze_path(cbuilds["runpath"])
    assert run.kind == "executable" and run.linking == "dynamic" and run.pie
    assert run.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert run.runpath == ["/opt/a", "/opt/b"] and run.rpath == []
    assert analyze_path(cbuilds["rpath"]).rpath == ["/opt/old"]
    st = analyze_path(cbuilds["static"])
    assert (st.kind, st.linking, st.interpreter, st.needed) == ("executable", "static", None, [])
    spie = analyze_path(cbuilds["static-pie"])
    assert (spie.kind, spie.linking) == ("executable", "static-pie")
    assert analyze_path(cbuilds["debug"]).debug_info is True
    assert analyze_path(cbuilds["debug"]).stripped is False
    assert analyze_path(cbuilds["stripped"]).stripped is True
    assert st.language == "C/C++" and "GCC" in " ".join(st.comment)
    if "cxx" in cbuilds:
        cxx = analyze_path(cbuilds["cxx"])
        assert cxx.language == "C/C++" and "libstdc++.so.6" in cxx.needed
    assert st.machine == "X86_64" and st.elf_class == 64 and st.endian == "little"


def test_note_package_is_read(cbuilds: dict[str, Path], tmp_path: Path) -> None:
    """systemd's .note.package (FDO packaging metadata), added with objcopy."""
    if shutil.which("objcopy") is None:
        pytest.skip("objcopy not installed")
    meta = {
        "type": "deb",
        "os": "debian",
        "osVersion": "12",
        "name": "hello",
        "version": "1.2-3",
        "architecture": "amd64",
    }
    desc = json.dumps(meta).encode() + b"\0"
    desc += b"\0" * (-len(desc) % 4)
    note = struct.pack("<III", 4, len(desc), 0xCAFE1A7E) + b"FDO\0" + desc
    (tmp_path / "note.bin").write_bytes(note)
    out = tmp_path / "noted"
    subprocess.run(
        [
            "objcopy",
            "--add-section",
            f".note.package={tmp_path / 'note.bin'}",
            "--set-section-flags",
            ".note.package=alloc,readonly",
            str(cbuilds["static"]),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        ["readelf", "-nW", str(out)], capture_output=True, text=True, check=False
    ).stdout
    assert "FDO" in shown
    info = analyze_path(out)
    assert info.package_note == meta
    assert info.build_id == readelf(out)["build_id"]


def test_entropy_and_packing_hint(tmp_path: Path, cbuilds: dict[str, Path]) -> None:
    normal = analyze_path(cbuilds["static"])
    assert normal.entropy is not None and 3.0 < normal.entropy < 7.0
    assert normal.packing is None
    # a "packed" file: valid ELF header, then random bytes, no section headers
    data = bytearray(cbuilds["static"].read_bytes()[:64])
    struct.pack_into("<QHH", data, 0x28, 0, 0, 0)  # e_shoff=0 ... (e_flags,e_ehsize untouched)
    struct.pack_into("<HHH", data, 0x3A, 64, 0, 0)  # shentsize, shnum=0, shstrndx=0
    struct.pack_into("<H", data, 0x38, 0)  # no program headers either
    packed = tmp_path / "packed"
    packed.write_bytes(bytes(data) + os.urandom(512 << 10))
    info = analyze_path(packed)
    assert info.entropy is not None and info.entropy > 7.5
    assert info.packing is not None and "packed" in info.packing
    upx = tmp_path / "upx"
    upx.write_bytes(bytes(data) + b"\0" * 100 + b"UPX!" + os.urandom(4096))
    assert "UPX" in (analyze_path(upx).packing or "")


def test_digests_are_of_the_whole_file(cbuilds: dict[str, Path]) -> None:
    raw = cbuilds["static"].read_bytes()
    blob = blob_of(cbuilds["static"])
    assert blob.digests == {
        "md5": hashlib.md5(raw).hexdigest(),
        "sha1": hashlib.sha1(raw).hexdigest(),
    }
    assert len(blob.data) < len(raw) // 10  # an extract, not a copy


def test_extract_limits_are_honoured(cbuilds: dict[str, Path]) -> None:
    tiny = Limits(max_payload=2048, digest_max=0)
    blob = blob_of(cbuilds["static"], tiny)
    assert len(blob.data) <= 2048
    assert "digests" not in blob.header
    assert any("cap" in n for n in blob.notes)
    info = analyze(blob)  # what was not captured is noted, the rest still reported
    assert info.kind == "executable"


def test_sectionless_binary_still_gives_dynamic_facts(
    cbuilds: dict[str, Path], tmp_path: Path
) -> None:
    """Section headers removed (as sstrip does): NEEDED comes from PT_DYNAMIC."""
    data = bytearray(cbuilds["runpath"].read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", data, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    p = tmp_path / "sstripped"
    p.write_bytes(bytes(data))
    info = analyze_path(p)
    ref = readelf(cbuilds["runpath"])
    assert info.needed == ref["needed"] and info.runpath == ref["runpath"]
    assert info.build_id == ref["build_id"]  # from the PT_NOTE segment
    assert info.section_headers is False and info.interpreter == "/lib64/ld-linux-x86-64.so.2"


def test_blob_roundtrip_from_a_real_file(cbuilds: dict[str, Path]) -> None:
    path = cbuilds["libanswer.so.1"]
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = extract(lambda off, n: os.pread(fd, n, off), os.fstat(fd).st_size)
    finally:
        os.close(fd)
    blob = decode_blob(raw)
    whole = path.read_bytes()
    for off, n in blob.ranges:  # every captured byte is the file's byte at that offset
        assert blob.image().pread(off, n) == whole[off : off + n]
