"""Inventory of a real shell-less container: capture it, then `exuvia sbom` the bundle.

The lab image gets, besides the demo target (/app/target, static C, unclaimed):
a Go program with a module dependency (/app/goapp), a static C program claimed
by a distroless dpkg status.d entry with its md5sums (/usr/bin/hello), and a
Python dist-info outside /var (copied by the inventory metadata rule). The
target drops /tmp/.x, runs it and deletes it, and runs a memfd copy of itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.inventory.analyze import build_inventory
from forensics.inventory.cyclonedx import to_cyclonedx
from forensics.inventory.model import Inventory
from forensics.inventory.spdx import to_spdx
from tests.support.bundles import artifacts, member_names
from tests.support.elfx import readelf
from tests.support.gobuild import DEP, DEP_VERSION, build_go, go_version_m, have_go
from tui.commands import sbom_cmd
from tui.demo.launch import LabContainer, start_runc
from tui.demo.rootfs import build_rootfs, build_target_binary, find_compiler

SITE = "usr/lib/python3/dist-packages"


@pytest.fixture(scope="module")
def sbom_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabContainer, Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (containers, overlay mounts)")
    for tool in ("runc", "readelf"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not have_go():
        pytest.skip("Go toolchain not installed")
    wd = tmp_path_factory.mktemp("sbomlab")
    root = build_rootfs(wd / "rootfs", build_target_binary(wd / "build"))
    goapp = build_go(wd / "go")
    shutil.copyfile(goapp, root / "app/goapp")
    os.chmod(root / "app/goapp", 0o755)
    (wd / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello");return 0;}\n')
    (root / "usr/bin").mkdir(parents=True)
    hello = root / "usr/bin/hello"
    subprocess.run(
        [find_compiler(), "-static", "-O2", "-o", str(hello), str(wd / "hello.c")], check=True
    )
    status_d = root / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    (status_d / "hello").write_text(
        "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\n"
        "Maintainer: Santiago Vila <sanvila@debian.org>\nSource: hello\n"
        "Homepage: https://www.gnu.org/software/hello/\nDescription: example package\n"
    )
    md5 = hashlib.md5(hello.read_bytes()).hexdigest()
    (status_d / "hello.md5sums").write_text(f"{md5}  usr/bin/hello\n")
    dist = root / SITE / "requests-2.31.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n"
    )
    (dist / "RECORD").write_text("requests/__init__.py,,\n")
    handle = start_runc(root, wd / "bundles")
    try:
        yield handle, wd
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def captured(sbom_lab: tuple[LabContainer, Path]) -> tuple[Path, Inventory, Path]:
    handle, wd = sbom_lab
    out = wd / "sbom.exv"
    res = capture(resolve(handle.uri), CaptureOptions(output=out, examiner="tester"))
    assert res.complete, res.incomplete_reason
    return out, build_inventory(out), wd


def _exe(inv: Inventory, path: str) -> Any:
    return next(e for e in inv.executables if e.path == path)


def test_capture_keeps_extracts_not_copies(captured: tuple[Path, Inventory, Path]) -> None:
    bundle, _, _ = captured
    names = set(member_names(bundle))
    for path in ("/app/target", "/app/goapp", "/usr/bin/hello"):
        assert f"elf{path}" in names and f"files{path}" not in names
    recs = {r["path"]: r for r in artifacts(bundle)["elf"]}
    assert set(recs) >= {"/app/target", "/app/goapp", "/usr/bin/hello"}
    fs = {r["path"]: r for r in artifacts(bundle)["filesystem"]}
    assert recs["/app/goapp"]["sha256"] == fs["/app/goapp"]["sha256"]
    # the inventory metadata rule copied package metadata outside /var
    assert f"files/{SITE}/requests-2.31.0.dist-info/METADATA" in names
    assert "files/var/lib/dpkg/status.d/hello.md5sums" in names


def test_packages_and_go_build_info(captured: tuple[Path, Inventory, Path]) -> None:
    _, inv, wd = captured
    purls = {p.purl for p in inv.packages}
    assert "pkg:deb/debian/hello@2.10-3?arch=amd64&distro=distroless-12" not in purls
    assert "pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12" in purls
    assert f"pkg:golang/{DEP}@{DEP_VERSION}" in purls
    assert "pkg:pypi/requests@2.31.0" in purls
    goapp = _exe(inv, "/app/goapp")
    version, lines = go_version_m(wd / "go" / "goapp")
    assert goapp.elf.go.go_version == version and goapp.elf.go.render() == lines
    assert [c.how for c in goapp.claims] == ["embedded"]


def test_elf_facts_equal_readelf(
    captured: tuple[Path, Inventory, Path], sbom_lab: tuple[LabContainer, Path]
) -> None:
    _, inv, _ = captured
    _, wd = sbom_lab
    for path in ("/app/target", "/usr/bin/hello", "/app/goapp"):
        e = _exe(inv, path).elf
        ref = readelf(wd / "rootfs" / path.lstrip("/"))
        assert (e.build_id, e.needed) == (ref["build_id"], ref["needed"])
    target = _exe(inv, "/app/target")
    assert target.elf.linking == "static" and target.pids  # the init and its worker run it


def test_coverage_of_the_staged_incident(captured: tuple[Path, Inventory, Path]) -> None:
    _, inv, _ = captured
    cov = inv.coverage
    hello = _exe(inv, "/usr/bin/hello")
    assert [c.how for c in hello.claims] == ["path+hash"]
    dropped = next(p for p in cov.unaccounted if p.startswith("/tmp/.x"))
    assert dropped in cov.added_after_start
    memfd = next(p for p in cov.unaccounted if p.startswith("/memfd:"))
    assert memfd in cov.added_after_start
    assert "/app/target" in cov.unaccounted and "/app/target" not in cov.added_after_start
    x = _exe(inv, dropped)
    assert x.deleted and x.origin == "process" and x.elf is not None
    assert cov.total == 5 and cov.accounted == 2 and cov.percent == 40.0


def test_sboms_validate(captured: tuple[Path, Inventory, Path], tmp_path: Path) -> None:
    validation = pytest.importorskip("cyclonedx.validation.json")
    schema = pytest.importorskip("cyclonedx.schema")
    parse = pytest.importorskip("spdx_tools.spdx.parser.parse_anything")
    validate = pytest.importorskip("spdx_tools.spdx.validation.document_validator")
    bundle, inv, _ = captured
    parser = argparse.ArgumentParser()
    sbom_cmd.register(parser.add_subparsers())
    cdx, spdx = tmp_path / "bom.cdx.json", tmp_path / "bom.spdx.json"
    for fmt, out in (("cyclonedx-json", cdx), ("spdx-json", spdx)):
        args = parser.parse_args(["sbom", str(bundle), "--format", fmt, "-o", str(out)])
        assert args.handler(args) == 0
    err = validation.JsonStrictValidator(schema.SchemaVersion.V1_6).validate_str(cdx.read_text())
    assert err is None, err
    assert [
        m.validation_message
        for m in validate.validate_full_spdx_document(parse.parse_file(str(spdx)))
    ] == []
    assert json.loads(cdx.read_text()) == to_cyclonedx(inv)
    assert json.loads(spdx.read_text()) == to_spdx(inv)
