"""`exuvia scan` over a real capture of a real shell-less runc container.

A file holding a marker is planted in the running target; the bundle is
captured with the real command line; rules written for the test must match
the marker in the planted file and nowhere else, and the bundle must be left
byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bundles import artifacts

MARKER = f"EXUVIA-YARA-MARKER-{uuid.uuid4().hex[:12]}"
PLANTED = "/tmp/planted.txt"
#: a file the marker crosses a window boundary in (scanned with --window 4K)
BIG = "/tmp/big.bin"
BOUNDARY = 4096 - 7
#: larger than the writer's small-file size (256 KiB): read in chunks, through the ring when copied
BIG_SIZE = 300_000
#: larger than the writer's small-file size and the copy cap used below
HUGE = "/tmp/huge.bin"
HUGE_SIZE = 6 << 20
HUGE_AT = HUGE_SIZE - 1000


def exuvia(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, check=False
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


MARKER_RULE = f"""
rule planted_marker : test marker {{
  meta:
    author = "tests"
  strings:
    $m = "{MARKER}"
  condition:
    $m
}}
"""
HOSTILE_RULE = f"""
rule hostile_meta {{
  meta:
    desc = "[bold red]PWNED[/bold red] \\x1b]0;owned\\x07 [link=http://x]y[/link]"
    severity = "critical"
  strings:
    $m = "{MARKER}"
  condition:
    $m
}}
"""


@pytest.fixture(scope="module")
def box(lab: Any) -> Iterator[Any]:
    """The running target, with the planted files (a small one, one with the marker
    across a 4K window boundary, and one larger than a ring slot with it near its end)."""
    with lab.runc() as target:
        root = f"/proc/{target.pid}/root"
        Path(root + PLANTED).write_text(f"config line\nkey = {MARKER}\nend\n")
        big = bytearray(os.urandom(BIG_SIZE))
        big[BOUNDARY : BOUNDARY + len(MARKER)] = MARKER.encode()
        Path(root + BIG).write_bytes(bytes(big))
        huge = bytearray(os.urandom(HUGE_SIZE))
        huge[HUGE_AT : HUGE_AT + len(MARKER)] = MARKER.encode()
        Path(root + HUGE).write_bytes(bytes(huge))
        yield target


@pytest.fixture(scope="module")
def captured(box: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan") / "target.exv"
    res = exuvia("capture", box.uri, "-o", str(out))
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def bundle(captured: Path, tmp_path: Path) -> Path:
    """A copy per test: each test's scan results sit beside its own copy."""
    copy = tmp_path / "b.exv"
    copy.write_bytes(captured.read_bytes())
    return copy


def rules_dir(tmp_path: Path, **files: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_marker_matches_the_planted_file_and_nothing_else(bundle: Path, tmp_path: Path) -> None:
    before = sha(bundle)
    rules = rules_dir(tmp_path, **{"marker.yar": MARKER_RULE})
    res = exuvia("scan", str(bundle), "--rules", str(rules), "--output", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["format"], doc["version"], doc["exit_status"]) == ("exuvia-scan-result", 1, 0)
    assert doc["members_scanned"] > 2
    where = sorted(m["path"] for m in doc["matches"])
    assert where == [BIG, HUGE, PLANTED], where  # the marker is in those two files only
    m = next(m for m in doc["matches"] if m["path"] == PLANTED)
    assert (m["rule"], m["namespace"], m["tags"]) == ("planted_marker", "marker.yar",
                                                      ["test", "marker"])  # fmt: skip
    assert m["strings"][0]["data"] == MARKER
    assert m["offset"] == len("config line\nkey = ")
    assert (
        m["member_sha256"]
        == hashlib.sha256(f"config line\nkey = {MARKER}\nend\n".encode()).hexdigest()
    )
    # results beside the bundle, naming it and the rules; the bundle untouched
    side = Path(doc["results_file"])
    assert side == bundle.with_name("b.exv.yara.json")
    assert sha(side) == doc["results_sha256"]
    saved = json.loads(side.read_text())
    assert saved["manifest_sha256"] == doc["manifest_sha256"]
    assert saved["rules"]["sha256"] == doc["rules"]["sha256"]
    assert sha(bundle) == before
    assert exuvia("verify", str(bundle)).returncode == 0
    # the timeline has them as their own kind, findings as one finding for the rule
    tl = exuvia("timeline", str(bundle), "--kind", "yara.match", "--limit", "50")
    assert tl.returncode == 0, tl.stderr
    lines = [ln for ln in tl.stdout.splitlines() if "yara.match" in ln]
    assert len(lines) == 3 and all("marker.yar:planted_marker" in ln for ln in lines)
    fd = json.loads(exuvia("findings", str(bundle), "--output", "json").stdout)
    yara = [f for f in fd["findings"] if f["rule"] == "yara.match"]
    assert len(yara) == 1 and len(yara[0]["evidence"]) == 3


def test_a_marker_across_a_window_boundary_is_found_once(bundle: Path, tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, **{"marker.yar": MARKER_RULE})
    res = exuvia("scan", str(bundle), "--rules", str(rules), "--window", "4K", "--output", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    m = next(m for m in doc["matches"] if m["path"] == BIG)
    assert m["windowed"] is True and m["string_count"] == 1
    assert m["strings"][0]["offset"] == BOUNDARY
    assert doc["windowed_members"] >= 1


def test_hostile_metadata_stays_escaped_text(bundle: Path, tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, **{"hostile.yar": HOSTILE_RULE})
    res = exuvia("scan", str(bundle), "--rules", str(rules))
    assert res.returncode == 0, res.stderr
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert "[bold red]PWNED[/bold red] \\x1b]0;owned\\x07 [link=http://x]y[/link]" in res.stdout
    fd = json.loads(exuvia("findings", str(bundle), "--output", "json").stdout)
    f = next(f for f in fd["findings"] if f["rule"] == "yara.match")
    assert f["severity"] == "critical"  # from the rule's own metadata


def test_a_rule_that_does_not_compile_is_one_line_with_file_and_line(
    bundle: Path, tmp_path: Path
) -> None:
    bad = 'rule broken {\n  strings:\n    $a = "x"\n  condition:\n    $a and\n}\n'
    rules = rules_dir(tmp_path, **{"a_good.yar": MARKER_RULE, "bad.yar": bad})
    res = exuvia("scan", str(bundle), "--rules", str(rules))
    assert res.returncode == 2
    assert res.stdout == ""
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"{rules / 'bad.yar'}:6:1" in err, err
    assert not bundle.with_name("b.exv.yara.json").exists()  # nothing was scanned


def test_a_catastrophically_slow_rule_is_a_timeout_skip(bundle: Path, tmp_path: Path) -> None:
    slow = ("rule slow { condition: for all i in (0..filesize-1) : "
            "( for all j in (0..filesize-1) : ( uint8(i) != uint8(j) + 1000 ) ) }\n")  # fmt: skip
    rules = rules_dir(tmp_path, **{"slow.yar": slow})
    res = exuvia("scan", str(bundle), "--rules", str(rules), "--timeout", "1", "--output", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    timed_out = {s["member"] for s in doc["skips"] if "timed out" in s["reason"]}
    assert "files/tmp/big.bin" in timed_out
    # small files finish within the limit (the condition holds for them); the big one
    # timed out, is a skip, and has no match
    assert "files/tmp/big.bin" not in {m["member"] for m in doc["matches"]}
    text = exuvia("scan", str(bundle), "--rules", str(rules), "--timeout", "1")
    assert "SKIP files/tmp/big.bin: scan timed out after 1 s" in text.stdout


@pytest.mark.parametrize("files", ["none", "all"])
def test_capture_scan_reads_once_and_records_matches_in_the_bundle(
    box: Any, tmp_path: Path, files: str
) -> None:
    """--files none: nothing is copied, yet every file read for its hash is scanned;
    --files all: copied through the reader's ring, small and chunked alike."""
    rules = rules_dir(tmp_path, **{"marker.yar": MARKER_RULE})
    out = tmp_path / "s.exv"
    res = exuvia("capture", box.uri, "-o", str(out), "--files", files, "--scan", str(rules),
                 "--max-file-size", "1M")  # fmt: skip
    assert res.returncode == 0, res.stderr
    recs = artifacts(out)["yara"]
    assert recs[0]["kind"] == "yara_rules" and recs[0]["rules"] == 1
    found = {r["path"]: r for r in recs if r["kind"] == "yara_match"}
    assert sorted(found) == [BIG, HUGE, PLANTED]
    assert found[HUGE]["strings"][0]["offset"] == HUGE_AT
    assert found[HUGE]["copied"] is False  # over --max-file-size: hashed and scanned only
    assert found[PLANTED]["copied"] is (files == "all")
    fs = {r["path"]: r for r in artifacts(out)["filesystem"] if "path" in r}
    assert all("yara" not in r for r in fs.values())
    assert found[PLANTED]["member_sha256"] == fs[PLANTED]["sha256"]
    assert exuvia("verify", str(out)).returncode == 0
    tl = exuvia("timeline", str(out), "--kind", "yara.match")
    assert sum("marker.yar:planted_marker" in ln for ln in tl.stdout.splitlines()) == 3


def test_capture_scan_with_bad_rules_captures_nothing(box: Any, tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, **{"bad.yar": "rule x { condition: nope }\n"})
    out = tmp_path / "s.exv"
    res = exuvia("capture", box.uri, "-o", str(out), "--scan", str(rules))
    assert res.returncode == 2 and f"{rules / 'bad.yar'}:1:" in res.stderr
    assert list(tmp_path.glob("s.exv*")) == []
