"""Exports: Timesketch JSONL, CSV, plaso l2tcsv and the TSK 3.x bodyfile."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import pytest

from forensics.errors import OutputError
from forensics.timeline import Query, open_timeline, write_export
from forensics.timeline.events import Event, Flag, Ref
from forensics.timeline.export import (
    CSV_COLUMNS,
    L2T_COLUMNS,
    bodyfile_name,
    mode_string,
    timesketch_record,
)
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle, process

PASSWD = b"root:x:0:0::/root:/x\napp:x:1000:1000::/home/app:/x\n"


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory) -> Timeline:
    d = tmp_path_factory.mktemp("export")
    bundle = make_bundle(
        d / "b.exv",
        files={"/etc/passwd": PASSWD},
        fs=[
            fs_entry("/etc/passwd", T0, T0, T0 + NS // 2, T0 - 5 * NS, size=148, inode=42),
            fs_entry("/usr/bin/su", T0 + NS, T0 + NS, T0 + NS, None, mode="4755", inode=7),
            fs_entry("/tmp", T0 + 2 * NS, T0 + 2 * NS, T0 + 2 * NS, type="dir", mode="1777"),
            fs_entry("/lib/ld", T0, T0, T0, type="symlink", mode="0777", link_target="x|y"),
            fs_entry("/a|b 100%\nx", T0, T0, T0),
            fs_entry("/bad\ufffd", T0, T0, T0, path_b64=base64.b64encode(b"/bad\xff").decode()),
            fs_entry("/old", -1_500_000_000, None, 0),
        ],
        processes=[process(4931, 1, "target", T0 + 3 * NS, cmdline=["/app/t", "a,b"])],
        runtime_logs=[("raw", b'2026-11-23T15:55:04Z said "hi", then left\n')],
    )
    return open_timeline(bundle, cache_dir=d / "cache")


def test_jsonl_is_timesketch_importable(tl: Timeline, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    n = write_export(tl, Query(), "jsonl", out)
    lines = out.read_text().splitlines()
    assert n == len(lines) == tl.count()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert {"message", "datetime", "timestamp_desc", "timestamp"} <= row.keys()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", row["datetime"])
        assert row["timestamp"] == row["timestamp_ns"] // 1000
    passwd = [r for r in rows if r["entity"] == "/etc/passwd"]
    assert [(r["macb"], r["timestamp_desc"]) for r in passwd] == [
        ("...b", "Creation Time"),
        ("ma..", "Content Modification Time; Last Access Time"),
        ("..c.", "Metadata Modification Time"),
    ]
    assert passwd[1]["datetime"] == "2026-11-23T15:55:00.000000+00:00"
    assert passwd[2]["timestamp_ns"] == T0 + NS // 2
    assert passwd[1]["inode"] == 42 and passwd[1]["size"] == 148
    assert passwd[1]["ref_member"] == "artifacts/filesystem.jsonl"
    proc = next(r for r in rows if r["kind"] == "process.started")
    assert proc["cmdline"] == ["/app/t", "a,b"]
    assert proc["user"] == "app"
    assert proc["source"] == "proc"


def test_attributes_never_shadow_timesketch_fields() -> None:
    ev = Event(
        id=4, ts=T0, kinds=("log.line",), source="log", entity="e", message="real",
        flags=Flag.TIME_INFERRED, ref=Ref("m", 1), attrs={"message": "fake", "tag": "x"},
    )  # fmt: skip
    rec = timesketch_record(ev)
    assert rec["message"] == "real"
    assert rec["attr_message"] == "fake"
    assert rec["attr_tag"] == "x"
    assert "tag" not in rec
    assert rec["flags"] == ["time_inferred"]


def test_csv(tl: Timeline, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    write_export(tl, Query(sources=("log", "proc")), "csv", out)
    rows = list(csv.reader(out.open(newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[3] for r in rows[1:]] == ["process.started", "log.line"]
    log = dict(zip(CSV_COLUMNS, rows[2], strict=True))
    assert log["message"] == '2026-11-23T15:55:04Z said "hi", then left'
    assert log["datetime"] == "2026-11-23T15:55:04.000000000Z"
    assert log["timestamp_ns"] == str(T0 + 4 * NS)
    assert log["ref_member"] == "logs/runtime/01-stdio.log"
    assert json.loads(log["attributes"])["origin"] == "runtime"


def test_l2tcsv_has_plasos_17_columns(tl: Timeline, tmp_path: Path) -> None:
    out = tmp_path / "t.l2tcsv"
    n = write_export(tl, Query(), "l2tcsv", out)
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == list(L2T_COLUMNS)
    assert len(L2T_COLUMNS) == 17
    assert len(rows) == n + 1
    assert all(len(r) == 17 for r in rows)
    by = {(r[12], r[3]): dict(zip(L2T_COLUMNS, r, strict=True)) for r in rows[1:]}
    ma = by[("/etc/passwd", "MA..")]
    assert (ma["date"], ma["time"], ma["timezone"]) == ("11/23/2026", "15:55:00", "UTC")
    assert (ma["source"], ma["type"], ma["version"]) == (
        "FILE",
        "Content Modification Time; Last Access Time",
        "2",
    )
    assert ma["inode"] == "42"
    assert ma["host"] == "web"
    assert ma["format"] == "exuvia/fs"
    assert f"ts_ns: {T0}" in ma["extra"]
    proc = next(r for r in by.values() if r["source"] == "PROC")
    assert proc["MACB"] == "...."
    assert proc["user"] == "app"
    assert len(proc["short"]) <= 80 and proc["desc"].startswith(proc["short"])
    assert "\n" not in out.read_text().replace("\n", "", n + 1)  # one line per event


def test_bodyfile_lines(tl: Timeline, tmp_path: Path) -> None:
    out = tmp_path / "t.body"
    n = write_export(tl, Query(), "bodyfile", out)
    lines = out.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    assert n == len(lines) == 7  # one per file entry, whatever its number of events
    t = T0 // NS
    assert lines[0] == f"0|/etc/passwd|42|r/rrw-r--r--|0|0|148|{t}|{t}|{t}|{t - 5}"
    assert lines[1] == f"0|/usr/bin/su|7|r/rrwsr-xr-x|0|0|10|{t + 1}|{t + 1}|{t + 1}|0"
    assert lines[2].startswith(f"0|/tmp|{1000 + 4}|d/drwxrwxrwt|")
    assert lines[3].split("|")[1:4] == ["/lib/ld -> x%7Cy", "1007", "l/lrwxrwxrwx"]
    assert lines[4].split("|")[1] == "/a%7Cb 100%25\\x0ax"
    assert lines[5].split("|")[1] == "/bad%FF"
    assert lines[6].endswith("|0|-2|0|0")  # atime none = 0; mtime: floor of a negative time
    assert all(len(line.split("|")) == 11 for line in lines)


def test_bodyfile_name_escaping() -> None:
    assert bodyfile_name("/plain/path.txt") == "/plain/path.txt"
    assert bodyfile_name("/a|b") == "/a%7Cb"
    assert bodyfile_name("/50%") == "/50%25"
    assert bodyfile_name("/tab\there\x7f") == "/tab\\x09here\\x7f"
    assert bodyfile_name("/caf\u00e9") == "/caf\u00e9"  # UTF-8 kept as is
    raw = base64.b64encode(b"/\xe9t\xe9").decode()
    assert bodyfile_name("/\ufffdt\ufffd", raw) == "/%E9t%E9"
    assert bodyfile_name("/l", link="/t|x") == "/l -> /t%7Cx"


@pytest.mark.parametrize(
    ("ftype", "mode", "expected"),
    [
        ("file", "0644", "r/rrw-r--r--"),
        ("file", "4755", "r/rrwsr-xr-x"),
        ("file", "2750", "r/rrwxr-s---"),
        ("file", "4644", "r/rrwSr--r--"),
        ("dir", "1777", "d/drwxrwxrwt"),
        ("dir", "1776", "d/drwxrwxrwT"),
        ("symlink", "0777", "l/lrwxrwxrwx"),
        ("fifo", "0600", "p/prw-------"),
        ("socket", "0755", "s/srwxr-xr-x"),
        ("chardev", "0666", "c/crw-rw-rw-"),
        ("blockdev", "0660", "b/brw-rw----"),
        ("whiteout", "0000", "w/w---------"),
        (None, "junk", "-/----------"),
    ],
)
def test_mode_strings(ftype: str | None, mode: str, expected: str) -> None:
    assert mode_string(ftype, mode) == expected


def test_exports_honour_filters_and_limit(tl: Timeline, tmp_path: Path) -> None:
    out = tmp_path / "f.jsonl"
    q = Query(sources=("fs",), start=T0 + NS, end=T0 + 3 * NS)
    write_export(tl, q, "jsonl", out)
    assert [json.loads(x)["entity"] for x in out.read_text().splitlines()] == [
        "/usr/bin/su",
        "/tmp",
    ]
    body = tmp_path / "f.body"
    assert write_export(tl, Query(entity="/tmp"), "bodyfile", body) == 1
    assert write_export(tl, Query(), "jsonl", out, limit=3) == 3


def test_exports_are_atomic_and_report_write_errors(tl: Timeline, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        write_export(tl, Query(), "jsonl", tmp_path / "missing-dir" / "x.jsonl")
    out = tmp_path / "x.csv"
    out.write_text("old content")
    write_export(tl, Query(), "csv", out)
    assert out.read_text().startswith("datetime,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]  # no temporary left
    with pytest.raises(ValueError, match="unknown format"):
        write_export(tl, Query(), "xml", out)


def test_export_to_stdout(tl: Timeline, capsys: pytest.CaptureFixture[str]) -> None:
    n = write_export(tl, Query(sources=("proc",)), "jsonl", "-")
    out = capsys.readouterr().out
    assert n == 1
    assert json.load(io.StringIO(out))["kind"] == "process.started"


def test_the_fast_path_writes_what_the_general_code_writes(tmp_path: Path) -> None:
    """Filesystem events are written from stored fields (exportfast); every field must
    equal what the general, event-at-a-time code makes of the same event."""
    from forensics.timeline.export import _jsonl_line, csv_row, l2t_row  # noqa: PLC0415

    weird = [
        fs_entry('/with|pipe, and "quotes"', T0, T0, T0, inode=11, size=3),
        fs_entry("/new\nline\ttab\x7f\x85", T0 - NS, T0, T0 + 5 * NS, T0 - NS, inode=13),
        fs_entry("/caf\u00e9 \u2603 \u2028", T0, T0 + 3 * NS, T0 + 3 * NS, T0, inode=14),
        fs_entry("/raw\ufffd", T0, T0, T0, path_b64=base64.b64encode(b"/raw\xff").decode()),
        fs_entry("/link", T0, T0, T0, type="symlink", mode="0777", link_target="/etc/x y"),
        fs_entry("/old", -1_500_000_000, None, 0, inode=17),
        fs_entry("/gone", T0 + 9 * NS, None, T0 + 9 * NS, None, type="whiteout"),
        {**fs_entry("/changed", T0, T0, T0), "changed": True, "uid": "x", "size": 1 << 70},
    ]
    bundle = make_bundle(
        tmp_path / "w.exv",
        fs=weird,
        processes=[process(4931, 1, "target", T0 + 3 * NS, cmdline=["/app/t"])],
        runtime_logs=[("raw", b"2026-11-23T15:55:04Z said hi\n")],
    )
    tl = open_timeline(bundle, cache_dir=tmp_path / "cache")
    events = tl.events()
    assert sum(1 for e in events if e.source == "fs") >= 12
    out = tmp_path / "x"
    write_export(tl, Query(), "jsonl", out)
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]  # U+2028 stays in its line
    assert [json.loads(x) for x in lines] == [json.loads(_jsonl_line(e)) for e in events]
    write_export(tl, Query(), "csv", out)
    rows = list(csv.reader(io.StringIO(out.read_text(), newline="")))[1:]
    general = [[str(c) for c in csv_row(e)] for e in events]
    assert [r[:12] for r in rows] == [g[:12] for g in general]
    assert [json.loads(r[12]) for r in rows] == [json.loads(g[12]) for g in general]
    write_export(tl, Query(), "l2tcsv", out, host="web")
    rows = list(csv.reader(io.StringIO(out.read_text(), newline="")))[1:]
    assert rows == [list(l2t_row(e, "web")) for e in events]
