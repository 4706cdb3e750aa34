"""The SQL-rendered exports (exportsql) write the very bytes of the Python code (exportfast)."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import pytest

from forensics.errors import OutputError
from forensics.timeline import Query, export, open_timeline, write_export
from forensics.timeline import exportfast as fast
from forensics.timeline.export import CSV_COLUMNS, L2T_COLUMNS, _jsonl_line, csv_row, l2t_row
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle, process

WEIRD = [
    fs_entry('/with|pipe, and "quotes"', T0, T0, T0, inode=11, size=3),
    fs_entry("/new\nline\ttab\x7f\x85", T0 - NS, T0, T0 + 5 * NS, T0 - NS, inode=13),
    fs_entry("/caf\u00e9 \u2603", T0 + 7, T0 + 3 * NS, T0 + 3 * NS, T0, inode=14),
    fs_entry("/sep\u2028x\u00a0y", T0, T0, T0),
    fs_entry("/raw\ufffd", T0, T0, T0, path_b64=base64.b64encode(b"/raw\xff").decode()),
    fs_entry("/link", T0, T0, T0, type="symlink", mode="0777", link_target='/etc/x, "y"'),
    fs_entry("/nul\x00byte", T0 + NS, T0, T0),
    fs_entry("/old", -1_500_000_000, None, 0, inode=17),
    fs_entry("/future", 5_000_000_000 * NS, T0, T0),
    fs_entry("/gone", T0 + 9 * NS, None, T0 + 9 * NS, None, type="whiteout"),
    fs_entry("/dir,x", T0 + 123_456_789, T0, T0, type="dir", mode="1777", size=None),
    {**fs_entry("/changed", T0, T0, T0), "changed": True, "uid": "x", "size": 1 << 70},
    {**fs_entry("/min", T0, T0, T0), "uid": None, "inode": None, "mode": None},
    {**fs_entry("/notes", T0, T0, T0), "note": "unreadable; kept", "read_error": "EACCES, 13"},
    *[fs_entry(f"/many/{i}", T0 + i * 1_000_003, T0 + i, T0 + 2 * i) for i in range(5000)],
]


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory) -> Timeline:
    d = tmp_path_factory.mktemp("exportsql")
    bundle = make_bundle(
        d / "w.exv",
        fs=WEIRD,
        processes=[process(4931, 1, "target", T0 + 3 * NS, cmdline=["/app/t", "a,b"])],
        runtime_logs=[("raw", b'2026-11-23T15:55:04Z said "hi", then\x01 left\n')],
    )
    return open_timeline(bundle, cache_dir=d / "cache")


def _python(tl: Timeline, fmt: str, q: Query, limit: int | None, host: str) -> str:
    """What the Python code (exportfast over every row) writes."""
    buf = io.StringIO()
    rows = tl.iter_rows(q, limit=limit)
    if fmt == "jsonl":
        fast.jsonl(tl, rows, buf, _jsonl_line)
    elif fmt == "csv":
        buf.write(",".join(CSV_COLUMNS) + "\n")
        fast.csv_rows(tl, rows, buf, csv_row)
    else:
        buf.write(",".join(L2T_COLUMNS) + "\n")
        fast.l2t_rows(tl, rows, buf, host, lambda ev: l2t_row(ev, host))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "l2tcsv"])
@pytest.mark.parametrize(
    ("q", "limit"),
    [
        (Query(), None),
        (Query(), 7),
        (Query(sources=("fs",), start=T0, end=T0 + 10 * NS), None),
        (Query(text="caf\u00e9"), None),
        (Query(entity="/many/*"), 4000),
    ],
)
def test_sql_lines_are_the_python_lines(
    tl: Timeline, tmp_path: Path, fmt: str, q: Query, limit: int | None
) -> None:
    out = tmp_path / f"x.{fmt}"
    n = write_export(tl, q, fmt, out, host="web, 1", limit=limit)
    got = out.read_bytes().decode("utf-8", "surrogateescape")
    want = _python(tl, fmt, q, limit, "web, 1")
    assert n == len(list(tl.iter_rows(q, limit=limit)))
    assert n > 0
    if got != want:  # name the first line that differs (a whole-text diff is slow)
        pairs = zip(got.split("\n"), want.split("\n"), strict=False)
        i, (a, b) = next((i, p) for i, p in enumerate(pairs) if p[0] != p[1])
        pytest.fail(f"line {i} differs:\n sql:    {a!r}\n python: {b!r}")
    assert got == want


def test_the_weird_records_are_all_there(tl: Timeline) -> None:
    """The fixture does hit the fallbacks: times outside 1970..2100, a NUL, control
    characters, a line separator, non-fs events."""
    events = tl.events()
    entities = {e.entity for e in events}
    for path in (
        "/old",
        "/future",
        "/nul\x00byte",
        "/new\nline\ttab\x7f\x85",
        "/sep\u2028x\u00a0y",
    ):
        assert path in entities
    assert {e.source for e in events} >= {"fs", "proc", "log"}


def test_sql_export_to_stdout(tl: Timeline, capsys: pytest.CaptureFixture[str]) -> None:
    n = write_export(tl, Query(entity="/many/*"), "csv", "-", limit=3)
    out = capsys.readouterr().out
    assert n == 3
    assert out == _python(tl, "csv", Query(entity="/many/*"), 3, "-")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "l2tcsv"])
def test_two_processes_write_the_same_bytes(
    tl: Timeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """A large whole-timeline export is split at its middle event between this process
    and a second one (exportpart); the file is the one a single process writes."""
    monkeypatch.setattr(export, "PARALLEL_MIN", 100)
    assert export._split_key(tl, Query(), None, tmp_path / "x") is not None
    out = tmp_path / f"p.{fmt}"
    n = write_export(tl, Query(), fmt, out, host="web, 1")
    assert n == len(tl.events())
    assert out.read_bytes().decode("utf-8", "surrogateescape") == _python(
        tl, fmt, Query(), None, "web, 1"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no part left


def test_a_failed_second_process_fails_the_export(
    tl: Timeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PARALLEL_MIN", 100)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(OutputError, match="second half"):
        write_export(tl, Query(), "jsonl", tmp_path / "x.jsonl")
    assert list(tmp_path.iterdir()) == []
