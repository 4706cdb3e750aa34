"""Rust dependency lists (cargo-auditable's .dep-v0) in real and hand-made binaries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from forensics.inventory.elf import analyze
from forensics.inventory.elfblob import blob_from_bytes
from forensics.inventory.rust import AuditableError, parse_dep_v0
from tests.support.elfbuild import Elf, Section, build
from tests.support.elfx import analyze_path, blob_of_bytes

DOC = {
    "format": 1,
    "packages": [
        {
            "name": "app",
            "version": "0.1.0",
            "source": "local",
            "dependencies": [1, 2],
            "root": True,
        },
        {"name": "itoa", "version": "1.0.11", "source": "crates.io"},
        {"name": "cc", "version": "1.0.0", "source": "crates.io", "kind": "build"},
    ],
}


def _with_dep_v0(data: bytes) -> bytes:
    return build(Elf(sections=[Section(".dep-v0", flags=0, data=data, align=1)]))


def test_hand_made_dep_v0_section() -> None:
    info = analyze(blob_of_bytes(_with_dep_v0(zlib.compress(json.dumps(DOC).encode()))))
    assert info.rust is not None and info.language == "Rust"
    root = info.rust[0]
    assert (root.name, root.version, root.root, root.dependencies) == ("app", "0.1.0", True, [1, 2])
    assert info.rust[2].kind == "build" and info.rust[1].source == "crates.io"


def test_bad_dep_v0_is_reported_not_raised() -> None:
    for payload, why in [
        (b"not zlib", "not zlib"),
        (zlib.compress(b"{not json"), "not JSON"),
        (zlib.compress(json.dumps({"packages": [{"name": 1}]}).encode()), "no name"),
        (zlib.compress(json.dumps(DOC).encode())[:-6], "truncated"),
    ]:
        info = analyze(blob_of_bytes(_with_dep_v0(payload)))
        assert info.rust is None and info.rust_error and why in info.rust_error


def test_decompression_is_capped() -> None:
    bomb = zlib.compress(b"[" * (64 << 20), 9)  # 64 MiB of '[' in ~64 KiB
    assert len(bomb) < 1 << 20
    with pytest.raises(AuditableError, match="more than"):
        parse_dep_v0(bomb)


def test_out_of_range_dependency_indexes_are_dropped() -> None:
    doc = {"packages": [{"name": "a", "version": "1", "dependencies": [5, -1, True, 0]}]}
    assert parse_dep_v0(zlib.compress(json.dumps(doc).encode()))[0].dependencies == [0]


def test_blob_of_whole_file_helper() -> None:
    data = _with_dep_v0(zlib.compress(json.dumps(DOC).encode()))
    assert blob_from_bytes(data).image().pread(0, 4) == b"\x7fELF"


@pytest.mark.skipif(
    shutil.which("cargo") is None
    or subprocess.run(
        ["cargo", "auditable", "--version"], capture_output=True, check=False
    ).returncode
    != 0,
    reason="cargo-auditable not installed (cargo install cargo-auditable)",
)
def test_real_cargo_auditable_binary(tmp_path: Path) -> None:
    crate = tmp_path / "hello"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "hello"\nversion = "0.3.0"\nedition = "2021"\n\n'
        '[dependencies]\nitoa = "=1.0.11"\n'
    )
    (crate / "src" / "main.rs").write_text(
        'fn main() { let mut b = itoa::Buffer::new(); println!("{}", b.format(42)); }\n'
    )
    env = dict(os.environ, CARGO_TARGET_DIR=str(tmp_path / "target"))
    proc = subprocess.run(
        ["cargo", "auditable", "build", "--release", "--quiet"],
        cwd=crate,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cargo build failed here (no crates.io?): {proc.stderr.strip()[-300:]}")
    info = analyze_path(tmp_path / "target" / "release" / "hello")
    assert info.language == "Rust" and info.rust is not None
    got = {(p.name, p.version, p.root) for p in info.rust}
    assert got == {("hello", "0.3.0", True), ("itoa", "1.0.11", False)}
    assert any("rustc version" in c for c in info.comment)
