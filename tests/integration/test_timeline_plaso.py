"""Interop with plaso: `log2timeline --parsers bodyfile` on exuvia's bodyfile of a real
capture, then `psort -o json_line`, gives the same filesystem events as exuvia's own
JSONL export.

plaso makes one event per time of an entry (it does not merge equal times into
MACB letters as mactime and exuvia do), so exuvia's side is counted per letter:
each exuvia event stands for as many plaso events as it has kinds. plaso is
installed from the package index into its own virtualenv the first time
(tests/support/plaso.py); the test is skipped, with pip's reason, only when that
fails.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.timeline import Query, open_timeline, write_export
from tests.support.plaso import PlasoMissing, log2timeline_argv, plaso_bin, psort_argv
from tui.demo.launch import LabContainer

NS = 1_000_000_000
#: plaso's timestamp_desc for a bodyfile entry's four times
PLASO_DESC = {
    "Content Modification Time": "m",
    "Last Access Time": "a",
    "Metadata Modification Time": "c",
    "Creation Time": "b",
}


@pytest.fixture(scope="module")
def plaso() -> Path:
    try:
        return plaso_bin()
    except PlasoMissing as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def real_bundle(runc_target: LabContainer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plaso") / "capture.exv"
    res = capture(
        resolve(runc_target.uri), CaptureOptions(output=out, examiner="tester", case="PL")
    )
    assert res.complete, res.incomplete_reason
    return out


def plaso_events(bin_dir: Path, body: Path, work: Path) -> Counter[tuple[str, int, str]]:
    """(file name, second, letter) of every event plaso makes from ``body``."""
    storage, out = work / "body.plaso", work / "plaso.jsonl"
    for argv in (log2timeline_argv(bin_dir, body, storage), psort_argv(bin_dir, storage, out)):
        subprocess.run(argv, check=True, capture_output=True, timeout=600)
    got: Counter[tuple[str, int, str]] = Counter()
    for line in out.read_text().splitlines():
        ev = json.loads(line)
        assert ev["parser"] == "bodyfile"
        # the bodyfile parser's timestamps are POSIX seconds
        got[
            (ev["filename"], int(ev["date_time"]["timestamp"]), PLASO_DESC[ev["timestamp_desc"]])
        ] += 1
    return got


def exuvia_events(jsonl: Path) -> Counter[tuple[str, int, str]]:
    """The same triples from exuvia's JSONL export: one per MACB letter of an event."""
    got: Counter[tuple[str, int, str]] = Counter()
    for line in jsonl.read_text().splitlines():
        ev = json.loads(line)
        assert ev["source"] == "fs"
        name = ev["entity"]
        if ev.get("type") == "symlink" and ev.get("link_target"):
            name += " -> " + ev["link_target"]
        for letter in ev["macb"].replace(".", ""):
            got[(name, ev["timestamp_ns"] // NS, letter)] += 1
    return got


def test_plaso_reads_our_bodyfile_and_counts_our_events(
    plaso: Path, real_bundle: Path, tmp_path: Path
) -> None:
    tl = open_timeline(real_bundle, cache_dir=tmp_path / "cache")
    fs = Query(sources=("fs",))
    body, jsonl = tmp_path / "capture.body", tmp_path / "fs.jsonl"
    entries = write_export(tl, fs, "bodyfile", body)
    events = write_export(tl, fs, "jsonl", jsonl)
    assert entries >= 20 and events >= entries
    ours = exuvia_events(jsonl)
    theirs = plaso_events(plaso, body, tmp_path)
    # a time that is 0 in a bodyfile means "none": exuvia has no event there either
    theirs = Counter({k: v for k, v in theirs.items() if k[1] != 0})
    assert sum(theirs.values()) == sum(ours.values())  # the same event count
    assert theirs == ours  # and the same events: name, second, which time
    assert any(name == "/tmp/after-start.txt" for name, _s, _l in ours)
