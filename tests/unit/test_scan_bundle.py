"""forensics/scan over bundles written by the real writer, with the real engine."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yara_x

from forensics.bundle.format import file_member_name
from forensics.bundle.writer import BundleWriter
from forensics.errors import BundleError
from forensics.findings.case import analyze_case
from forensics.scan.bundle import SCAN_PREFIXES, scan_bundle, target_path
from forensics.scan.engine import ChunkScanner, ScanLimits
from forensics.scan.model import escape_bytes
from forensics.scan.rules import RulesError, compile_rules
from forensics.scan.sidecar import load_result, save_result
from forensics.timeline import Query, open_timeline
from tests.support import case_bundles
from tests.support.incident_bundle import build
from tui.cli import main

MARK = b"UNIT-MARKER-42"


def rule(tmp_path: Path, text: str, name: str = "r.yar") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def marker_rule(tmp_path: Path) -> Path:
    return rule(tmp_path, 'rule mark { strings: $m = "UNIT-MARKER-42" condition: $m }')


def bundle_with(path: Path, members: dict[str, bytes]) -> Path:
    with path.open("wb") as raw:
        w = BundleWriter(raw)
        for name, data in members.items():
            w.add_bytes(name, data)
        w.finish({"complete": True, "acquisition": {"start_ns": 1, "end_ns": 2}})
    return path


def test_every_evidence_prefix_is_scanned_and_records_are_not(tmp_path: Path) -> None:
    names = {
        file_member_name(b"/etc/x\xff"): b"a " + MARK,
        "binaries/42/exe": MARK,
        "elf/usr/bin/y": MARK,
        "memory/42.core": b"\0" * 100 + MARK,
        "artifacts/processes.jsonl": MARK,  # records are not evidence bytes
        "logs/runtime/01-stdio.log": MARK,
    }
    b = bundle_with(tmp_path / "b.exv", names)
    res = scan_bundle(b, compile_rules(marker_rule(tmp_path)))
    assert set(SCAN_PREFIXES) == {"files/", "binaries/", "elf/", "memory/"}
    got = {m.member: m for m in res.matches}
    assert set(got) == {n for n in names if n.startswith(tuple(SCAN_PREFIXES))}
    assert got["memory/42.core"].offset == 100
    assert got[file_member_name(b"/etc/x\xff")].path == "/etc/x\ufffd"
    assert res.manifest_sha256 and res.complete and not res.warnings


def test_windows_overlap_and_no_double_count() -> None:
    rules = yara_x.compile('rule m { strings: $m = "UNIT-MARKER-42" condition: $m }')
    s = ChunkScanner(rules, ScanLimits(window=64, overlap=16, timeout_s=5))
    data = b"x" * 55 + MARK + b"y" * 200 + MARK + b"z" * 3
    s.begin("memory/1.core")
    for i in range(0, len(data), 5):
        s.feed(data[i : i + 5])
    matches, skips = s.end("h")
    assert not skips and len(matches) == 1 and matches[0].windowed
    assert [h.offset for h in matches[0].strings] == [55, 55 + len(MARK) + 200]
    assert matches[0].string_count == 2
    # a member within one window is scanned once, whole
    s.begin("files/small")
    s.feed(MARK)
    matches, _ = s.end()
    assert s.windows == 1 and not matches[0].windowed


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        ScanLimits(window=10, overlap=10)


def test_compile_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = rule(tmp_path, "rule a {\n condition:\n  nonsense_identifier\n}\n", "bad.yara")
    with pytest.raises(RulesError) as err:
        compile_rules(bad)
    assert f"{bad}:3:" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RulesError, match="no such file"):
        compile_rules(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RulesError, match=r"no \*\.yar"):
        compile_rules(empty)
    (empty / "x.yar").write_bytes(b"rule \xff {}")
    with pytest.raises(RulesError, match="not UTF-8"):
        compile_rules(empty)


def test_rule_files_get_their_own_namespace_and_a_stable_hash(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    (d / "sub").mkdir(parents=True)
    (d / "a.yar").write_text("rule same { condition: true }")
    (d / "sub" / "b.yara").write_text("rule same { condition: true }")
    (d / "notes.txt").write_text("not a rule")
    r1, r2 = compile_rules(d), compile_rules(d)
    assert r1.count == 2 and [f.name for f in r1.files] == ["a.yar", "sub/b.yara"]
    assert r1.sha256 == r2.sha256
    (d / "a.yar").write_text("rule same { condition: false }")
    assert compile_rules(d).sha256 != r1.sha256


def test_matched_bytes_and_metadata_are_escaped(tmp_path: Path) -> None:
    assert escape_bytes(b"a\\b\x00\x1b\xff") == "a\\\\b\\x00\\x1b\\xff"
    text = (
        'rule m { meta: d = "[b]x[/b] \\x1b[2J" n = 3 strings: $h = { 1B 5B 32 4A } condition: $h }'
    )
    b = bundle_with(tmp_path / "b.exv", {"files/t": b"..\x1b[2J.."})
    res = scan_bundle(b, compile_rules(rule(tmp_path, text)))
    (m,) = res.matches
    assert m.meta == {"d": "[b]x[/b] \\x1b[2J", "n": 3}
    assert m.strings[0].data == "\\x1b[2J"


def test_sidecar_is_self_checked_and_tied_to_the_bundle(tmp_path: Path) -> None:
    b = build(tmp_path / "incident.exv")
    before = b.read_bytes()
    res = scan_bundle(b, compile_rules(rule(tmp_path, 'rule c { strings: $a = "backdoor" '
                                                       "condition: $a }")))  # fmt: skip
    path, _sha = save_result(b, res)
    assert b.read_bytes() == before and path.name == "incident.exv.yara.json"
    doc = load_result(path, res.manifest_sha256)
    assert doc["matches"][0]["path"] == "/etc/app.conf"
    with pytest.raises(BundleError, match="another bundle"):
        load_result(path, "0" * 64)
    raw = json.loads(path.read_text())
    raw["matches"][0]["rule"] = "forged"
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="altered"):
        load_result(path)


def test_sidecar_goes_to_the_user_cache_when_the_bundle_dir_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = bundle_with(tmp_path / "b.exv", {file_member_name(b"/x"): MARK})
    res = scan_bundle(b, compile_rules(marker_rule(tmp_path)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("forensics.atomic.os.access", lambda *_a: False)  # root writes anywhere
    path, _sha = save_result(b, res)
    assert path == tmp_path / "xdg" / "exuvia" / "scan" / f"{res.manifest_sha256}.yara.json"
    assert not b.with_name("b.exv.yara.json").exists()
    assert load_result(path, res.manifest_sha256)["matches"]


def test_timeline_store_is_rebuilt_when_scan_results_appear(tmp_path: Path) -> None:
    b = build(tmp_path / "incident.exv")
    with open_timeline(b) as tl:
        assert tl.events(Query(kinds=("yara.match",)), limit=10) == []
    rules = rule(tmp_path, 'rule c : cfg { strings: $a = "backdoor" condition: $a }')
    save_result(b, scan_bundle(b, compile_rules(rules)))
    with open_timeline(b) as tl:
        (ev,) = tl.events(Query(kinds=("yara.match",)), limit=10)
    assert ev.source == "scan" and ev.entity == "/etc/app.conf"
    assert ev.attrs["rule"] == "c" and ev.attrs["found_by"] == "exuvia scan"
    assert "time_inferred" in ev.flag_names
    assert "YARA r.yar:c [cfg] matched /etc/app.conf" in ev.message


def test_target_path_of_members() -> None:
    assert target_path("files/etc/a%25b") == "/etc/a%b"
    assert target_path("elf/usr/bin/x") == "/usr/bin/x"
    assert target_path("binaries/1/exe") is None


def test_scan_a_case_shows_a_rule_matching_in_several_pods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = case_bundles.pod_bundle

    def with_contents(path: Path, namespace: str, pod: str, *a: Any, **kw: Any) -> Any:
        """The case's pod bundles, each also holding a copied file (web-1, web-2: the marker)."""
        data = MARK if pod != "web-3" else b"clean"
        with path.open("wb") as raw:
            w = BundleWriter(raw)
            w.add_bytes(file_member_name(b"/tmp/drop"), data)
            target = {"uri": f"k8s://{namespace}/{pod}/app", "runtime": "k8s", "name": "app"}
            sha, _ = w.finish({"complete": True, "target": target})
            return sha, w.file_sha256, w.file_bytes
        return real(path, namespace, pod, *a, **kw)  # pragma: no cover

    monkeypatch.setattr(case_bundles, "pod_bundle", with_contents)
    case = tmp_path / "case"
    case_bundles.make_case(case, [("prod", "web-1"), ("prod", "web-2"), ("prod", "web-3")])
    assert main(["scan", str(case), "--rules", str(marker_rule(tmp_path)), "--output",
                 "json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert doc["across"] == [{"rule": "r.yar:mark",
                              "bundles": ["prod/web-1/app", "prod/web-2/app"]}]  # fmt: skip
    assert [len(e["result"]["matches"]) for e in doc["bundles"]] == [1, 1, 0]
    assert main(["scan", str(case), "--rules", str(marker_rule(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "matched in several pods:" in out and "r.yar:mark: in 2: prod/web-1/app" in out
    # the case's findings hold it in several pods too (each bundle's results beside it)
    cf = analyze_case(case)
    across = [a for a in cf.across if a.rule == "yara.match"]
    assert len(across) == 1 and sorted(across[0].labels) == ["prod/web-1/app", "prod/web-2/app"]


def test_a_bundle_cut_inside_a_member_scans_what_precedes(tmp_path: Path) -> None:
    full = bundle_with(tmp_path / "full.exv", {"files/a": MARK, "files/big": os.urandom(4 << 20)})
    data = full.read_bytes()
    cut = tmp_path / "cut.exv.partial"
    cut.write_bytes(data[: len(data) // 2])
    res = scan_bundle(cut, compile_rules(marker_rule(tmp_path)))
    assert [m.member for m in res.matches] == ["files/a"]
    assert not res.complete and res.manifest_sha256 is None
    assert any(s.member == "files/big" and "ends inside" in s.reason for s in res.skips)
    assert any("ends early" in w for w in res.warnings)
    with pytest.raises(BundleError, match="not a readable bundle"):
        junk = tmp_path / "junk.exv"
        junk.write_bytes(b"\x00" * 100 + b"not a tar" * 100)
        scan_bundle(junk, compile_rules(marker_rule(tmp_path)))


class _OneWay:
    """A stream that cannot seek or tell (as an object body read from a store)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        n = len(self._data) if n < 0 else n
        out, self._data = self._data[:n], self._data[n:]
        return out

    def close(self) -> None:
        self.closed = True


def test_a_bundle_read_once_from_a_stream_scans_as_the_file_does(tmp_path: Path) -> None:
    """The evidence store's path: the sealed object's body, read once, never on disk."""
    big = os.urandom(3 << 20) + MARK  # past the first reads and the zstd frames
    b = bundle_with(tmp_path / "b.exv", {file_member_name(b"/big"): big,
                                          "binaries/1/exe": MARK})  # fmt: skip
    rules = compile_rules(marker_rule(tmp_path))
    from_file = scan_bundle(b, rules)
    body = _OneWay(b.read_bytes())
    from_stream = scan_bundle(body, rules, name="stored.exv")  # type: ignore[arg-type]
    assert body.closed and from_stream.bundle == "stored.exv"
    assert from_stream.complete and from_stream.members_scanned == from_file.members_scanned == 2
    assert from_stream.manifest_sha256 == from_file.manifest_sha256
    assert [m.to_dict()["member"] for m in from_stream.matches] == [
        m.to_dict()["member"] for m in from_file.matches
    ] and len(from_stream.matches) == 2
    # a stream cut short: the scan says so instead of failing
    cut = _OneWay(b.read_bytes()[: (2 << 20)])
    short = scan_bundle(cut, rules, name="cut.exv")  # type: ignore[arg-type]
    assert not short.complete and short.warnings


def test_a_fleet_pod_captured_into_the_journal_is_scanned_there(tmp_path: Path) -> None:
    """`capture k8s://NS -l SEL -o s3://…/ --scan R` while the store is gone: a pod's
    bundle captured into the journal is scanned where it is, its results beside it
    (push JOURNAL takes them up with it), instead of being looked for in the store."""
    import argparse  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    from collectors.store.uri import S3Url  # noqa: PLC0415
    from tui.commands.k8s_cmd import _store_scan  # noqa: PLC0415

    bundle = build(tmp_path / "local_p0_app.exv")
    rules = tmp_path / "any.yar"
    rules.write_text("rule any_member { condition: true }\n")
    sink = SimpleNamespace(store=None, lock=None, base=S3Url("locked", "cases/x/"))
    scan = _store_scan(argparse.Namespace(scan=rules), sink)
    summary = scan(bundle)  # no store is asked: it has none here
    side = Path(summary["results_file"])
    assert side == tmp_path / "local_p0_app.exv.yara.json" and summary["matches"] > 0
    assert load_result(side)["matches"][0]["rule"] == "any_member"
