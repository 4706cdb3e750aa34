"""The bundle format: writing, verifying, and detecting every kind of damage."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from forensics.bundle import BundleWriter, verify_bundle
from forensics.bundle.format import (
    CHECKPOINT_DIR,
    MANIFEST_NAME,
    check_version,
    decode_path,
    encode_path,
    file_member_name,
)
from forensics.bundle.reader import BundleReader
from forensics.errors import BundleError, BundleVersionError


def write_bundle(path: Path, n: int = 12, compress: str = "zstd", **kw: object) -> dict[str, bytes]:
    contents = {f"artifacts/a{i}.jsonl": os.urandom(700 + 97 * i) for i in range(n)}
    with path.open("wb") as f:
        w = BundleWriter(f, compress=compress, checkpoint_every_members=4, **kw)  # type: ignore[arg-type]
        for name, data in contents.items():
            w.add_bytes(name, data)
        w.finish({"complete": True, "incomplete_reason": ""})
    return contents


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_roundtrip_verifies_and_is_a_plain_tar(tmp_path: Path, compress: str) -> None:
    p = tmp_path / "b.exv"
    contents = write_bundle(p, compress=compress)
    report = verify_bundle(p)
    assert report.ok, report.failures()
    assert report.complete
    # header + 12 artifacts + checkpoints
    assert report.members_verified >= 13
    raw = p.read_bytes()
    if compress == "zstd":
        raw = (
            zstandard.ZstdDecompressor()
            .stream_reader(io.BytesIO(raw), read_across_frames=True)
            .read()
        )
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
        assert names[-1] == MANIFEST_NAME
        for name, data in contents.items():
            f = tar.extractfile(name)
            assert f is not None and f.read() == data
    manifest = BundleReader(p).manifest()
    listed = {m["name"] for m in manifest["members"]}
    assert set(contents) <= listed
    assert any(n.startswith(CHECKPOINT_DIR) for n in listed)


def test_every_flipped_byte_is_detected(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    write_bundle(p, compress="none")
    good = p.read_bytes()
    # a flip anywhere — content, header, padding, end blocks — is reported (the
    # file-prefix hashes, the manifest's self_check and the exact tail cover
    # what member hashes do not; test_bundle_integrity.py goes further)
    for pos in range(0, len(good), 997):
        bad = bytearray(good)
        bad[pos] ^= 0x40
        q = tmp_path / "flip.exv"
        q.write_bytes(bytes(bad))
        report = verify_bundle(q)
        assert not report.ok, pos


def test_truncation_is_reported_and_prefix_verifies_by_checkpoint(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    write_bundle(p, n=40, compress="none")
    data = p.read_bytes()
    cut = tmp_path / "cut.exv"
    cut.write_bytes(data[: len(data) // 2])
    report = verify_bundle(cut)
    assert not report.ok
    assert not report.has_manifest
    assert "cut off" in report.incomplete_reason
    assert report.members_verified > 5
    assert any("stream broken" in line for line in report.failures())


def test_truncated_zstd_stream_is_noticed(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    write_bundle(p, n=40)
    data = p.read_bytes()
    cut = tmp_path / "cut.exv"
    cut.write_bytes(data[: len(data) - 200])
    report = verify_bundle(cut)
    assert not report.ok
    assert any("truncated" in line for line in report.failures())


def test_missing_extra_and_altered_members_are_named(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    contents = write_bundle(p, compress="none")
    with tarfile.open(p) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    out = tmp_path / "edited.exv"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for m, original in members:
            if m.name == "artifacts/a1.jsonl":
                continue  # missing
            data = b"x" + original[1:] if m.name == "artifacts/a2.jsonl" else original  # altered
            if m.name == MANIFEST_NAME:
                info = tarfile.TarInfo("artifacts/evil.jsonl")
                info.size = 3
                tar.addfile(info, io.BytesIO(b"bad"))  # extra
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    report = verify_bundle(out)
    assert not report.ok
    assert "artifacts/a1.jsonl" in report.missing
    assert "artifacts/a2.jsonl" in report.altered
    assert "artifacts/evil.jsonl" in report.extra
    assert len(contents) == 12


def test_hostile_member_types_are_flagged(tmp_path: Path) -> None:
    out = tmp_path / "hostile.exv"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        link = tarfile.TarInfo("../../etc/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        tar.addfile(link)
    report = verify_bundle(out)
    assert not report.ok
    assert any("symbolic link" in p for p in report.problems)
    assert not (tmp_path.parent / "etc").exists()


def test_short_stream_member_is_zero_padded_and_reported(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    with p.open("wb") as f:
        w = BundleWriter(f)
        entry = w.add_stream("files/grow", 10, io.BytesIO(b"abc").read)
        w.finish({"complete": True})
    assert entry.short_by == 7
    assert verify_bundle(p).ok


def test_newer_major_version_is_refused_with_a_clear_message() -> None:
    with pytest.raises(BundleVersionError, match=r"bundle format 3\.0 is newer than this exuvia"):
        check_version("3.0")
    check_version("2.0")  # record chunks (this writer)
    check_version("2.9")
    check_version("1.7")  # 1.x: one record member per collector, still read
    check_version("1.0")
    with pytest.raises(BundleVersionError):
        check_version(None)


def test_manifest_of_a_cut_bundle_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    write_bundle(p, compress="none")
    cut = tmp_path / "cut.exv"
    cut.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(BundleError, match="no manifest"):
        BundleReader(cut).manifest()


def test_not_a_bundle_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "junk.exv"
    p.write_bytes(b"hello, I am not a tar file" * 100)
    report = verify_bundle(p)
    assert not report.ok
    assert report.problems


@pytest.mark.parametrize(
    "raw",
    [b"/etc/passwd", b"/tmp/a b%c", b"/x/\xff\nz", "/é/ü".encode(), b"/a\\b/\x1b[31m"],
)
def test_member_names_are_utf8_and_reversible(raw: bytes) -> None:
    name = file_member_name(raw)
    name.encode("utf-8")
    assert "\n" not in name and "\x1b" not in name
    assert decode_path(encode_path(raw)) == raw


def test_checkpoints_chain(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    write_bundle(p, n=20, compress="none")
    with tarfile.open(p) as tar:
        cps = [
            json.loads(tar.extractfile(m).read())  # type: ignore[union-attr]
            for m in tar
            if m.name.startswith(CHECKPOINT_DIR)
        ]
    assert len(cps) >= 5
    assert cps[0]["prev_sha256"] == ""
    assert all(c["prev_sha256"] for c in cps[1:])


def _records_bundle(path: Path, compress: str) -> list[bytes]:
    """Record members of 10 lines each; every 3 members a checkpoint."""
    lines = [b'{"kind":"fs_entry","path":"/f%d"}\n' % i for i in range(300)]
    with path.open("wb") as f:
        w = BundleWriter(f, compress=compress, checkpoint_every_members=3)
        for i in range(30):
            chunk = b"".join(lines[i * 10 : i * 10 + 10])
            w.add_bytes(f"artifacts/filesystem/{i + 1:06d}.jsonl", chunk)
            w.add_bytes(f"files/blob{i}", os.urandom(3000))
        w.finish({"complete": True, "incomplete_reason": ""})
    return lines


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_cut_off_bundle_reports_what_its_checkpoints_vouch_for(
    tmp_path: Path, compress: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "b.exv"
    _records_bundle(p, compress)
    whole = verify_bundle(p)
    assert whole.ok and whole.exit_status == 0 and not whole.cut_off
    assert whole.records_vouched == 300
    data = p.read_bytes()
    seen = set()
    for frac in (0.2, 0.5, 0.8):
        cut = tmp_path / "cut.exv.partial"
        cut.write_bytes(data[: int(len(data) * frac)])
        r = verify_bundle(cut)
        assert not r.ok and r.cut_off, r.failures()
        assert r.exit_status == 3
        assert r.checkpoints_valid >= 1 and r.last_checkpoint == r.checkpoints_valid
        # 10 records per record member the checkpoints vouch for, none of the others
        vouched = {n for n in _checkpoint_names(cut) if n.startswith("artifacts/")}
        assert r.records_vouched == 10 * len(vouched) > 0
        assert r.records_vouched < 300
        seen.add(r.records_vouched)
        # the CLI: exit 3, one JSON document saying so
        doc = _verify_json(cut, capsys)
        assert doc["exit_status"] == 3 and doc["cut_off"] is True
        assert doc["records_vouched"] == r.records_vouched
        assert doc["checkpoints_valid"] == r.checkpoints_valid
    assert len(seen) == 3  # more is vouched for the later the cut


def _checkpoint_names(path: Path) -> set[str]:
    out: set[str] = set()
    for body in BundleReader(path).read_members(lambda n: n.startswith(CHECKPOINT_DIR)).values():
        out |= {m["name"] for m in json.loads(body)["members"]}
    return out


def _verify_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    from tui.cli import main  # noqa: PLC0415

    status = main(["verify", str(path), "--output", "json"])
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    assert doc["exit_status"] == status
    return doc


def test_altered_partial_is_not_cut_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "b.exv"
    _records_bundle(p, "none")
    data = bytearray(p.read_bytes()[: len(p.read_bytes()) // 2])
    # flip a byte inside the first record member's content (after its 512-byte header)
    first = data.find(b'{"kind":"fs_entry"')
    data[first + 5] ^= 0x01
    cut = tmp_path / "cut.exv.partial"
    cut.write_bytes(bytes(data))
    r = verify_bundle(cut)
    assert not r.cut_off and r.exit_status == 1
    assert r.altered
    doc = _verify_json(cut, capsys)
    assert doc["exit_status"] == 1 and doc["cut_off"] is False


def test_corrupt_zstd_partial_is_a_failure_not_a_cut(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    _records_bundle(p, "zstd")
    data = bytearray(p.read_bytes())
    data = data[: len(data) * 3 // 4]
    data[len(data) // 2] ^= 0xFF
    cut = tmp_path / "cut.exv.partial"
    cut.write_bytes(bytes(data))
    r = verify_bundle(cut)
    assert r.exit_status == 1 and not r.cut_off, (r.problems, r.altered)


def test_records_go_in_chunks_behind_each_checkpoint(tmp_path: Path) -> None:
    """Every record added before a checkpoint is in a member that checkpoint lists;
    chunks roll by count; a 2.0 bundle is what this writer writes."""
    from forensics.bundle.chunks import RecordChunks  # noqa: PLC0415
    from forensics.bundle.format import FORMAT_VERSION, record_collector  # noqa: PLC0415

    p = tmp_path / "b.exv"
    with p.open("wb") as f:
        w = BundleWriter(f, compress="none", checkpoint_every_members=5)
        chunks = RecordChunks(w, "filesystem", max_records=7)
        for i in range(100):
            chunks.add(b'{"kind":"fs_entry","path":"/f%d"}\n' % i)
            if i % 9 == 0:
                w.add_bytes(f"files/f{i}", b"x" * i)
        cut_at = f.tell()  # everything a kill here keeps
        chunks.close()
        w.finish({"complete": True, "incomplete_reason": ""})
    assert FORMAT_VERSION == "2.0"
    r = verify_bundle(p)
    assert r.ok and r.records_vouched == 100
    names = [m["name"] for m in BundleReader(p).manifest()["members"]]
    chunk_names = [n for n in names if record_collector(n) == "filesystem"]
    assert chunk_names[0] == "artifacts/filesystem/000001.jsonl" and len(chunk_names) >= 100 // 7
    # a kill before close(): what the checkpoints vouch for is every record but
    # those added after the last checkpoint
    cut = tmp_path / "cut.exv.partial"
    cut.write_bytes(p.read_bytes()[:cut_at])
    rc = verify_bundle(cut)
    assert rc.cut_off and rc.records_vouched >= 90, rc.records_vouched
    assert record_collector("artifacts/filesystem.jsonl") == "filesystem"
    assert record_collector("artifacts/k8s/events.jsonl") is None  # not a chunk
    assert record_collector("artifacts/target.json") is None
    assert record_collector("artifacts/a/b/000001.jsonl") is None
