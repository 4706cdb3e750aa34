"""`exuvia salvage`: a sealed .incomplete copy of what a cut-off bundle's checkpoints
vouch for; the original untouched; refusals in one line, never a half-written file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from forensics.bundle import verify_bundle
from forensics.bundle.format import record_collector
from forensics.bundle.reader import BundleReader
from forensics.bundle.salvage import default_output, salvage
from forensics.errors import BundleError, OutputError
from tests.support.cut_bundles import cut_bundle as _cut_bundle
from tui.cli import main


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_salvage_seals_what_the_checkpoints_vouch_for(tmp_path: Path, compress: str) -> None:
    cut = _cut_bundle(tmp_path, compress=compress)
    before = (_sha(cut), cut.stat().st_mtime_ns)
    src = verify_bundle(cut)
    assert src.cut_off and src.records_vouched > 0
    res = salvage(cut, examiner="tester")
    assert res.path == tmp_path / "k.exv.incomplete" == default_output(cut)
    assert (_sha(cut), cut.stat().st_mtime_ns) == before  # the original is only read
    r = verify_bundle(res.path)
    assert r.ok and not r.complete, r.failures()
    assert r.sidecar_checked
    m = BundleReader(res.path).manifest()
    assert m["complete"] is False and "salvaged" in m["incomplete_reason"]
    sf = m["salvaged_from"]
    assert sf["file"] == "k.exv.partial" and sf["sha256"] == before[0]
    assert sf["checkpoint"] == src.last_checkpoint and sf["records"] == src.records_vouched
    assert m["counts"] == {"filesystem": src.records_vouched}
    assert r.records_vouched == src.records_vouched == res.records
    # every vouched member is in the copy with the same bytes; nothing unvouched is
    orig = BundleReader(cut).read_members(lambda n: n in set(src.vouched_names))
    copy = BundleReader(res.path).read_members(lambda _n: True)
    for name, data in orig.items():
        if name != "exuvia.json":
            assert copy[name] == data, name
    extra = {n for n in copy if n not in orig}
    assert all(n.startswith("checkpoints/") or n in ("exuvia.json", "custody.jsonl",
               "manifest.json") for n in extra), extra  # fmt: skip
    recs = [n for n in copy if record_collector(n) == "filesystem"]
    lines = sum(copy[n].count(b"\n") for n in recs)
    assert lines == src.records_vouched
    head = json.loads(copy["exuvia.json"])
    assert head["salvaged_from"]["sha256"] == before[0]
    assert [e["action"] for e in map(json.loads, copy["custody.jsonl"].splitlines())] == [
        "salvage.started", "salvage.finished"]  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_salvage_refuses_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    cut = _cut_bundle(tmp_path)
    whole = tmp_path / "whole.exv"
    with pytest.raises(BundleError, match="has a manifest"):
        salvage(whole, tmp_path / "w.incomplete", examiner="t")
    bad = tmp_path / "bad.exv.partial"
    data = bytearray(cut.read_bytes())
    data[len(data) // 3] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        salvage(bad, examiner="t")
    (tmp_path / "k.exv.incomplete").write_bytes(b"evidence")
    with pytest.raises(OutputError, match="refusing to overwrite"):
        salvage(cut, examiner="t")
    assert (tmp_path / "k.exv.incomplete").read_bytes() == b"evidence"
    assert not (tmp_path / "bad.exv.incomplete").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_salvage_cli_signs_like_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = _cut_bundle(tmp_path)
    key = tmp_path / "key.pem"
    assert main(["keygen", str(key)]) == 0
    out = tmp_path / "s.exv.incomplete"
    capsys.readouterr()
    rc = main(["salvage", str(cut), "-o", str(out), "--sign", str(key), "--output", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 == doc["exit_status"] and doc["bundle"] == str(out)
    assert doc["signed_by"] and doc["source_sha256"] == _sha(cut)
    r = verify_bundle(out)
    assert r.ok and r.signed_by == doc["signed_by"]
    assert main(["verify", str(out)]) == 0
    assert main(["salvage", str(cut), "-o", str(out)]) == 2  # exists: refused
    assert "refusing to overwrite" in capsys.readouterr().err
