"""Relaying the agent's bundle into the client's: every member copied and checked
against the agent's checkpoints and manifest; a cut stream keeps what arrived."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from collectors.k8s.relay import out_name, relay
from forensics.bundle import verify_bundle
from forensics.bundle.reader import BundleReader
from forensics.bundle.writer import BundleWriter

BLOB = bytes(range(256)) * 4096  # 1 MiB


def agent_bundle(path: Path, compress: str = "none", **kw: int) -> bytes:
    with path.open("wb") as fh:
        w = BundleWriter(fh, compress=compress, checkpoint_every_members=2, **kw)  # type: ignore[arg-type]
        w.add_bytes("artifacts/processes.jsonl", b'{"pid":1}\n')
        w.add_bytes("files/etc/passwd", b"root:x:0:0::/:/bin/false\n")
        w.add_bytes("files/data/blob.bin", BLOB)
        w.add_bytes("artifacts/skips.jsonl", b"")
        w.add_bytes("custody.jsonl", b'{"seq":1}\n')
        w.finish({"complete": True, "target": {"pid": 1}})
    return path.read_bytes()


def outer(tmp: Path, spool: Path) -> tuple[Path, object]:
    out = tmp / "outer.exv"
    with out.open("wb") as fh:
        w = BundleWriter(fh, compress="zstd")
        rep = relay(spool, w)
        w.add_bytes("artifacts/k8s/footprint.json", b"{}\n")
        w.finish({"complete": rep.verified})
    return out, rep


@pytest.mark.parametrize("compress", ["none", "zstd"])
def test_whole_bundle_is_copied_and_verified(tmp_path: Path, compress: str) -> None:
    spool = tmp_path / "agent.exv"
    agent_bundle(spool, compress)
    out, rep = outer(tmp_path, spool)
    assert rep.verified and rep.broken is None and rep.problems == []  # type: ignore[attr-defined]
    assert rep.manifest["complete"] is True  # type: ignore[attr-defined]
    assert rep.by_manifest == rep.members - 1  # type: ignore[attr-defined] # all but the manifest
    report = verify_bundle(out)
    assert report.ok, report.failures()
    got = BundleReader(out).read_members(lambda _n: True)
    assert got["files/data/blob.bin"] == BLOB
    assert got["files/etc/passwd"].startswith(b"root:")
    for name in ("agent/exuvia.json", "agent/manifest.json", "agent/custody.jsonl",
                 "agent/checkpoints/000001.json", "exuvia.json", "manifest.json"):  # fmt: skip
        assert name in got, name
    # the agent's manifest is kept byte for byte: its hash is the one relay reports
    assert hashlib.sha256(got["agent/manifest.json"]).hexdigest() == rep.manifest_sha256  # type: ignore[attr-defined]


@pytest.mark.parametrize("keep", [0, 300, 700, 2000, 5000, 400_000, 1_000_000])
def test_a_cut_stream_keeps_what_arrived_and_still_verifies(tmp_path: Path, keep: int) -> None:
    data = agent_bundle(tmp_path / "full.exv")
    spool = tmp_path / "agent.exv"
    spool.write_bytes(data[:keep])
    out, rep = outer(tmp_path, spool)
    assert rep.broken and not rep.verified  # type: ignore[attr-defined]
    assert rep.manifest is None  # type: ignore[attr-defined]
    report = verify_bundle(out)
    assert report.ok, report.failures()  # the client's bundle is whole; it holds less
    got = BundleReader(out).read_members(lambda _n: True)
    cut = rep.cut  # type: ignore[attr-defined]
    if cut is not None:
        assert got[cut["member"]] == BLOB[: cut["received"]] or cut["name"] != "files/data/blob.bin"
        assert cut["received"] < cut["size"]
    if keep >= 400_000:
        assert "files/etc/passwd" in got and rep.by_checkpoint >= 2  # type: ignore[attr-defined]


def test_only_the_end_of_archive_blocks_missing_is_whole(tmp_path: Path) -> None:
    data = agent_bundle(tmp_path / "full.exv")
    spool = tmp_path / "agent.exv"
    spool.write_bytes(data[:-1024])  # the manifest arrived; the two zero blocks did not
    _out, rep = outer(tmp_path, spool)
    assert rep.verified  # type: ignore[attr-defined]


def test_a_cut_zstd_stream(tmp_path: Path) -> None:
    data = agent_bundle(tmp_path / "full.exv", "zstd")
    spool = tmp_path / "agent.exv"
    spool.write_bytes(data[: len(data) // 2])
    out, rep = outer(tmp_path, spool)
    assert rep.broken and "ends or is corrupt" in rep.broken  # type: ignore[attr-defined]
    assert verify_bundle(out).ok


def test_an_altered_member_is_reported(tmp_path: Path) -> None:
    data = bytearray(agent_bundle(tmp_path / "full.exv"))
    at = data.index(b"root:x:0:0")
    data[at : at + 4] = b"ROOT"
    spool = tmp_path / "agent.exv"
    spool.write_bytes(bytes(data))
    _out, rep = outer(tmp_path, spool)
    problems = rep.problems  # type: ignore[attr-defined]
    assert any("files/etc/passwd" in p and "does not match" in p for p in problems), problems
    assert not rep.verified  # type: ignore[attr-defined]


def test_an_empty_stream(tmp_path: Path) -> None:
    spool = tmp_path / "agent.exv"
    spool.write_bytes(b"")
    out, rep = outer(tmp_path, spool)
    assert rep.broken == "the agent's stream is empty" and rep.members == 0  # type: ignore[attr-defined]
    assert verify_bundle(out).ok


@pytest.mark.parametrize(
    ("name", "want", "odd"),
    [
        ("artifacts/processes.jsonl", "artifacts/processes.jsonl", False),
        ("files/etc/passwd", "files/etc/passwd", False),
        ("manifest.json", "agent/manifest.json", False),
        ("checkpoints/000003.json", "agent/checkpoints/000003.json", False),
        ("agent/manifest.json", "agent/unexpected/agent/manifest.json", True),
        ("artifacts/k8s/footprint.json", "agent/unexpected/artifacts/k8s/footprint.json", True),
        ("/etc/shadow", "agent/unexpected/etc/shadow", True),
        ("files/../../x", "agent/unexpected/files/../../x", True),
    ],
)
def test_member_names(name: str, want: str, odd: bool) -> None:
    got, problem = out_name(name)
    assert got == want and (problem is not None) is odd


def test_odd_names_from_a_hostile_agent_are_quarantined(tmp_path: Path) -> None:
    spool = tmp_path / "agent.exv"
    buf = io.BytesIO()
    w = BundleWriter(buf, compress="none")
    w.add_bytes("artifacts/k8s/footprint.json", b'{"forged":true}')
    w.add_bytes("manifest.json.evil", b"x")
    w.finish({"complete": True})
    spool.write_bytes(buf.getvalue())
    out, rep = outer(tmp_path, spool)
    got = BundleReader(out).read_members(lambda _n: True)
    assert got["artifacts/k8s/footprint.json"] == b"{}\n"  # the client's own, not the forgery
    assert got["agent/unexpected/artifacts/k8s/footprint.json"] == b'{"forged":true}'
    assert any("unexpected member name" in p for p in rep.problems)  # type: ignore[attr-defined]
    assert verify_bundle(out).ok
