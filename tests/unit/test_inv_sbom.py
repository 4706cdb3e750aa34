"""The whole inventory over a bundle written by the real writer: packages, coverage,
and SBOMs checked by the reference validators (cyclonedx-python-lib, spdx-tools)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import zstandard

from collectors.fs.elf_extract import ElfExtractor
from forensics.bundle.format import file_member_name
from forensics.bundle.writer import BundleWriter
from forensics.inventory.analyze import build_inventory
from forensics.inventory.cyclonedx import to_cyclonedx
from forensics.inventory.elfscan import extract
from forensics.inventory.model import Inventory
from forensics.inventory.report import table_lines
from forensics.inventory.spdx import to_spdx
from tests.support.elfbuild import Elf, Section, build, go_pointer_buildinfo
from tui.commands import sbom_cmd

TRUE = Path("/usr/bin/true")
FALSE = Path("/usr/bin/false")
pytestmark = pytest.mark.skipif(not (TRUE.is_file() and FALSE.is_file()), reason="no /usr/bin/true")


class FakeTarget:
    """Writes a bundle the way a capture lays it out."""

    def __init__(self, path: Path) -> None:
        self.raw = path.open("wb")
        self.w = BundleWriter(self.raw, compress="zstd", threads=0)
        self.fs: list[dict[str, Any]] = []
        self.procs: list[dict[str, Any]] = []
        self.bins: list[dict[str, Any]] = []
        self.elfx = ElfExtractor(self.w)
        self.tmp = path.parent

    def _rec(self, path: str, **kw: Any) -> dict[str, Any]:
        rec = {"kind": "fs_entry", "path": path, "type": "file", "mode": "0755", "changed": False}
        rec.update(kw)
        self.fs.append(rec)
        return rec

    def file(self, path: str, data: bytes, *, copy: bool = False, **kw: Any) -> None:
        rec = self._rec(path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), **kw)
        if copy:
            rec["member"] = file_member_name(path.encode())
            self.w.add_bytes(rec["member"], data)
            return
        real = self.tmp / "src.bin"
        real.write_bytes(data)
        fd = os.open(real, os.O_RDONLY)
        try:  # the capture's own extractor, over a real descriptor
            list(self.elfx.take(fd, path.encode(), len(data), rec["sha256"], None))
        finally:
            os.close(fd)

    def link(self, path: str, target: str) -> None:
        self._rec(path, type="symlink", link_target=target, mode="0777")

    def whiteout(self, path: str) -> None:
        self.fs.append({"kind": "fs_entry", "path": path, "type": "whiteout", "changed": True})

    def process(
        self, pid: int, exe: str, data: bytes | None = None, extract_only: bool = False
    ) -> None:
        rec = {
            "kind": "process",
            "pid": pid,
            "exe": exe,
            "maps": [{"path": exe, "deleted": False}],
            "exe_deleted": exe.endswith(" (deleted)") and not exe.startswith("/memfd:"),
            "exe_memfd": exe.startswith("/memfd:"),
        }
        self.procs.append(rec)
        if data is None:
            return
        sha = hashlib.sha256(data).hexdigest()
        if extract_only:
            member = f"binaries/{pid}/exe.elfx"
            self.w.add_bytes(member, extract(lambda o, n: data[o : o + n], len(data)))
            self.bins.append(
                {
                    "kind": "binary",
                    "pid": pid,
                    "exe": exe,
                    "elf_member": member,
                    "size": len(data),
                    "copied": False,
                }
            )
        else:
            member = f"binaries/{pid}/exe"
            self.w.add_bytes(member, data)
            self.bins.append(
                {
                    "kind": "binary",
                    "pid": pid,
                    "exe": exe,
                    "member": member,
                    "size": len(data),
                    "sha256": sha,
                }
            )

    def finish(self) -> None:
        def jsonl(rows: list[dict[str, Any]]) -> bytes:
            return b"".join(json.dumps(r).encode() + b"\n" for r in rows)

        self.w.add_bytes(
            "artifacts/target.json",
            json.dumps(
                {
                    "uri": "runc://fake",
                    "runtime": "runc",
                    "image": "example/app:1",
                    "container_id": "fake",
                }
            ).encode(),
        )
        self.w.add_bytes("artifacts/processes.jsonl", jsonl(self.procs))
        self.w.add_bytes("artifacts/binaries.jsonl", jsonl(self.bins))
        self.w.add_bytes("artifacts/filesystem.jsonl", jsonl(self.fs))
        self.w.add_bytes(
            "artifacts/elf.jsonl", jsonl([{"kind": r.kind, **r.data} for r in self.elfx.records()])
        )
        self.w.finish(
            {
                "acquisition": {"start_ns": 1_700_000_000 * 10**9, "end_ns": 1_700_000_001 * 10**9},
                "complete": True,
            }
        )
        self.raw.close()


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inventory, Path]:
    d = tmp_path_factory.mktemp("bundle")
    true, false = TRUE.read_bytes(), FALSE.read_bytes()
    goapp = go_pointer_buildinfo(
        "go1.17.13",
        "path\texample.com/app\nmod\texample.com/app\tv1.2.3\th1:m=\n"
        "dep\tgolang.org/x/text\tv0.3.7\th1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\n",
    )
    addon = build(Elf(sections=[Section(".text", data=b"\xc3" * 64)], e_type=3))
    pyext = build(Elf(sections=[Section(".text", data=b"\x90\xc3" * 40)], e_type=3))
    dropped = build(Elf(sections=[Section(".text", data=b"\xcc" * 99)]))
    t = FakeTarget(d / "fake.exv")
    t.link("/bin", "usr/bin")
    t.file(
        "/etc/os-release",
        b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n',
        copy=True,
        mode="0644",
    )
    t.file("/usr/bin/true", true)  # dpkg lists /bin/true: usrmerge
    t.file("/usr/bin/false", false, mode="4755")  # dpkg lists it with another md5: modified
    t.file("/usr/local/bin/true-copy", true)  # same bytes elsewhere: claimed by hash
    t.file("/usr/bin/copied-whole", false, copy=True)  # analysed from the copy
    t.file("/app/goapp", goapp)
    t.file("/app/node_modules/addon/build/Release/addon.node", addon)
    t.file(
        "/app/node_modules/addon/package.json",
        json.dumps({"name": "addon", "version": "0.0.1", "license": "MIT"}).encode(),
        copy=True,
        mode="0644",
    )
    site = "/usr/lib/python3/dist-packages"
    t.file(f"{site}/fast.cpython-311-x86_64-linux-gnu.so", pyext)
    rec_hash = base64.urlsafe_b64encode(hashlib.sha256(pyext).digest()).rstrip(b"=").decode()
    t.file(
        f"{site}/fast-2.0.dist-info/METADATA",
        b"Name: fast\nVersion: 2.0\nLicense: Custom Thing\n",
        copy=True,
    )
    t.file(
        f"{site}/fast-2.0.dist-info/RECORD",
        f"fast.cpython-311-x86_64-linux-gnu.so,sha256={rec_hash},{len(pyext)}\n".encode(),
        copy=True,
    )
    t._rec(f"{site}/lost-1.0.dist-info/METADATA", size=500, sha256="0" * 64)  # not copied
    t.file(
        "/var/lib/dpkg/status.d/coreutils",
        b"Package: coreutils\nVersion: 9.1-1\nArchitecture: amd64\nSource: coreutils\n",
        copy=True,
    )
    t.file(
        "/var/lib/dpkg/status.d/coreutils.md5sums",
        f"{_md5(true)}  bin/true\n{'0' * 32}  bin/false\n".encode(),
        copy=True,
    )
    t._rec("/var/lib/rpm/Packages", size=4096, sha256="0" * 64)
    t.file("/tmp/dropped", dropped, changed=True)
    t.file("/usr/bin/corrupt", b"\x7fELF\x09garbage" * 3)
    t.whiteout("/usr/bin/removed")
    t.process(1, "/app/goapp")
    t.process(7, "/tmp/.x (deleted)", true)  # a dropped copy of a packaged binary
    t.process(8, "/memfd:payload (deleted)", dropped, extract_only=True)
    t.process(9, "/usr/bin/removed (deleted)", false)
    t.finish()
    return build_inventory(d / "fake.exv"), d / "fake.exv"


def _exe(inv: Inventory, path: str) -> Any:
    return next(e for e in inv.executables if e.path == path)


def test_packages(inventory: tuple[Inventory, Path]) -> None:
    inv, _ = inventory
    purls = {p.purl for p in inv.packages}
    assert "pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-12" in purls
    assert "pkg:golang/example.com/app@v1.2.3" in purls
    assert "pkg:golang/golang.org/x/text@v0.3.7" in purls
    assert "pkg:golang/stdlib@1.17.13" in purls
    assert "pkg:npm/addon@0.0.1" in purls and "pkg:pypi/fast@2.0" in purls
    assert inv.os["ID"] == "debian"


def test_claims(inventory: tuple[Inventory, Path]) -> None:
    inv, _ = inventory
    how = lambda p: sorted(c.how for c in _exe(inv, p).claims)  # noqa: E731
    assert how("/usr/bin/true") == ["path+hash"]
    assert how("/usr/local/bin/true-copy") == ["hash"]
    assert how("/app/goapp") == ["embedded"]
    assert how("/app/node_modules/addon/build/Release/addon.node") == ["path"]
    assert how("/usr/lib/python3/dist-packages/fast.cpython-311-x86_64-linux-gnu.so") == [
        "path+hash"
    ]
    assert how("/tmp/.x (deleted)") == ["hash"]  # md5 of the copy matches dpkg's /bin/true
    false = _exe(inv, "/usr/bin/false")
    assert false.claims == [] and false.hash_mismatch and false.setuid
    assert _exe(inv, "/usr/bin/copied-whole").elf is not None
    assert _exe(inv, "/app/goapp").pids == [1]


def test_coverage(inventory: tuple[Inventory, Path]) -> None:
    inv, _ = inventory
    cov = inv.coverage
    assert set(cov.unaccounted) == {
        "/usr/bin/false",
        "/usr/bin/copied-whole",
        "/tmp/dropped",
        "/usr/bin/corrupt",
        "/memfd:payload (deleted)",
        "/usr/bin/removed (deleted)",
    }
    assert cov.total == 12 and cov.accounted == 6 and cov.percent == 50.0
    assert set(cov.added_after_start) == {
        "/tmp/dropped",
        "/tmp/.x (deleted)",
        "/memfd:payload (deleted)",
    }
    assert cov.modified == ["/usr/bin/false"]
    assert len(cov.unparseable) == 1 and cov.unparseable[0].startswith("/usr/bin/corrupt: ")
    probs = " | ".join(inv.problems)
    assert "/var/lib/rpm/Packages: Berkeley DB rpmdb present but not supported" in probs
    assert (
        "lost-1.0.dist-info/METADATA: package metadata (python-metadata) not in the bundle" in probs
    )


def test_cyclonedx_is_valid_1_6(inventory: tuple[Inventory, Path]) -> None:
    validation = pytest.importorskip("cyclonedx.validation.json")
    schema = pytest.importorskip("cyclonedx.schema")
    bom = to_cyclonedx(inventory[0])
    text = json.dumps(bom)
    err = validation.JsonStrictValidator(schema.SchemaVersion.V1_6).validate_str(text)
    assert err is None, err
    assert bom["specVersion"] == "1.6"
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(refs) == len(set(refs))
    fast = next(c for c in bom["components"] if c.get("purl") == "pkg:pypi/fast@2.0")
    assert fast["licenses"] == [{"license": {"name": "Custom Thing"}}]
    f = next(c for c in bom["components"] if c["bom-ref"] == "file:/usr/bin/true")
    assert {h["alg"] for h in f["hashes"]} == {"SHA-256", "SHA-1", "MD5"}
    # a bad document is rejected: the validator is really checking
    bom["components"][0]["type"] = "nonsense"
    assert validation.JsonStrictValidator(schema.SchemaVersion.V1_6).validate_str(json.dumps(bom))


def test_spdx_is_valid_2_3(inventory: tuple[Inventory, Path], tmp_path: Path) -> None:
    parse = pytest.importorskip("spdx_tools.spdx.parser.parse_anything")
    validate = pytest.importorskip("spdx_tools.spdx.validation.document_validator")
    doc = to_spdx(inventory[0])
    p = tmp_path / "sbom.spdx.json"
    p.write_text(json.dumps(doc))
    messages = validate.validate_full_spdx_document(parse.parse_file(str(p)))
    assert [m.validation_message for m in messages] == []
    assert any(x["licenseId"].startswith("LicenseRef-") for x in doc["hasExtractedLicensingInfos"])
    bad = dict(
        doc,
        relationships=[
            *doc["relationships"],
            {
                "spdxElementId": "SPDXRef-nope",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": "SPDXRef-DOCUMENT",
            },
        ],
    )
    p.write_text(json.dumps(bad))
    assert validate.validate_full_spdx_document(parse.parse_file(str(p)))


def test_table(inventory: tuple[Inventory, Path]) -> None:
    text = "\n".join(table_lines(inventory[0]))
    assert "COVERAGE: 6 of 12 executables accounted for (50.0%)" in text
    assert "/tmp/dropped" in text and "added-after-start" in text


def test_command_line(
    inventory: tuple[Inventory, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    sbom_cmd.register(parser.add_subparsers())
    bundle = str(inventory[1])
    for fmt, key in (("cyclonedx-json", "bomFormat"), ("spdx-json", "spdxVersion")):
        out = tmp_path / f"{fmt}.json"
        args = parser.parse_args(["sbom", bundle, "--format", fmt, "-o", str(out)])
        assert args.handler(args) == 0
        assert key in json.loads(out.read_text())
    args = parser.parse_args(["sbom", bundle])
    assert args.handler(args) == 0
    assert "EXECUTABLES (12)" in capsys.readouterr().out


def test_a_cut_bundle_still_gives_an_inventory(
    inventory: tuple[Inventory, Path], tmp_path: Path
) -> None:
    packed = io.BytesIO(inventory[1].read_bytes())
    raw = zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True).read()
    cut = tmp_path / "cut.exv"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    inv = build_inventory(cut)
    assert any("ends early" in p for p in inv.problems)
    assert any("no manifest" in p for p in inv.problems)
    # the extracts before the cut are still analysed, without their filesystem records
    true = next(e for e in inv.executables if e.path == "/usr/bin/true")
    assert true.elf is not None and true.elf.needed


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf not installed")
def test_file_facts_survive_into_the_bom(inventory: tuple[Inventory, Path]) -> None:
    bom = to_cyclonedx(inventory[0])
    f = next(c for c in bom["components"] if c["bom-ref"] == "file:/usr/bin/true")
    props = {(p["name"], p["value"]) for p in f["properties"]}
    assert ("exuvia:elf:needed", "libc.so.6") in props
    assert ("exuvia:coverage", "accounted") in props
