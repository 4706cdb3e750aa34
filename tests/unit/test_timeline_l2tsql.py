"""The l2tcsv record formats (l2tsql): made by the first l2tcsv export, the same bytes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forensics.timeline import Query, exportsql, l2tsql, open_timeline, write_export
from forensics.timeline.export import prepare_l2t
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_exportsql import WEIRD, _python
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle, process

ROOT = Path(__file__).resolve().parents[2]
RECORDS = [
    *WEIRD,
    # printf's own syntax in a record's texts (written %% in a format)
    {**fs_entry("/pct%s%d%%x", T0 + 4, T0, T0 + 9), "link_target": "100%", "type": "symlink"},
    {**fs_entry("/pct,%.0s", T0 + 5, T0, T0), "note": "%n%x, 50%", "sha256": "%"},
    fs_entry('/pct"%s", 5%', T0 + 6, T0, T0, read_error="EIO %d"),
    fs_entry("/latin\u00e9\u00ff\u0100 no-utf8", T0 + 8, T0, T0, path_b64="L2xhdGlu6f8="),
]


def _bundle(d: Path) -> Path:
    return make_bundle(
        d / "w.exv",
        fs=RECORDS,
        processes=[process(4931, 1, "target", T0 + 3 * NS, cmdline=["/app/t", "a,b"])],
        runtime_logs=[("raw", b'2026-11-23T15:55:04Z said "hi", then\x01 left\n')],
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built store without the table (each test works on a copy)."""
    d = tmp_path_factory.mktemp("l2tsql")
    tl = open_timeline(_bundle(d), cache_dir=d / "cache")
    tl.close()
    return tl.path


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Path:
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / built.name
    shutil.copyfile(built, path)
    return path


def _has_table(path: Path) -> bool:
    with Timeline(path) as tl:
        return l2tsql.present(tl.con)


def _same(got: str, want: str) -> None:
    if got != want:  # name the first line that differs
        pairs = zip(got.split("\n"), want.split("\n"), strict=False)
        i, (a, b) = next((i, p) for i, p in enumerate(pairs) if p[0] != p[1])
        pytest.fail(f"line {i} differs:\n sql:    {a!r}\n python: {b!r}")


def _export(tl: Timeline, out: Path, q: Query | None = None, limit: int | None = None) -> str:
    write_export(tl, q or Query(), "l2tcsv", out, host="web, 1", limit=limit)
    return out.read_bytes().decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("q", "limit"),
    [
        (Query(), None),
        (Query(sources=("fs",), start=T0, end=T0 + 10 * NS), None),
        (Query(entity="/pct*"), None),
        (Query(entity="/many/*"), 4000),
    ],
)
def test_the_first_export_makes_the_table_and_writes_the_python_bytes(
    store: Path, tmp_path: Path, q: Query, limit: int | None
) -> None:
    assert not _has_table(store)
    with Timeline(store) as tl:
        first = _export(tl, tmp_path / "a.l2tcsv", q, None)
        want = _python(tl, "l2tcsv", q, None, "web, 1")
        _same(first, want)
        assert first == want
        assert l2tsql.present(tl.con)
        again = _export(tl, tmp_path / "b.l2tcsv", q, limit)
        assert again == _python(tl, "l2tcsv", q, limit, "web, 1")


def test_the_lines_come_from_the_formats(store: Path, tmp_path: Path) -> None:
    """The table holds every plain file record (not the NUL one), and the export's SQL
    renders their events from it: the comparison with Python above is not won by
    handing every event to the Python code."""
    with Timeline(store) as tl:
        _export(tl, tmp_path / "a.l2tcsv")
        missing = tl.con.execute(
            f"SELECT entity FROM records r WHERE source = 1"
            f" AND NOT EXISTS (SELECT 1 FROM {l2tsql.TABLE} x WHERE x.id = r.id)"
        ).fetchall()
        assert [m for (m,) in missing] == ["/nul\x00byte"]  # a NUL: Python's to write
        assert tl.con.execute(
            f"SELECT count(*) FROM {l2tsql.TABLE} x JOIN records r ON r.id = x.id"
            " WHERE r.source != 1"
        ).fetchone() == (0,)
        line_sql, extra_sql, joins = exportsql.l2t_sql(tl)
        assert joins == l2tsql.JOIN
        exportsql._tables(tl)
        for pattern in ("/pct*", "/many/1*", "/latin*", "/with|pipe*"):
            rows = list(
                exportsql._select(
                    tl, Query(entity=pattern), None, line_sql, extra_sql, None, joins, host="h"
                )
            )
            assert rows
            assert all(line is not None and x is not None for line, x, _eid in rows)
        ((line, extra, eid),) = exportsql._select(
            tl,
            Query(entity="/pct%s%d%%x", kinds=("file.modified",)),
            None,
            line_sql,
            extra_sql,
            None,
            joins,
            host="h",
        )
        assert "/pct%s%d%%x" in line
        assert extra.startswith(f"entity: /pct%s%d%%x; event_id: {eid}; ")
        assert "; link_target: 100%; " in extra


def test_a_short_export_makes_no_table(store: Path, tmp_path: Path) -> None:
    with Timeline(store) as tl:
        got = _export(tl, tmp_path / "a.l2tcsv", limit=7)
        assert got == _python(tl, "l2tcsv", Query(), 7, "web, 1")
        assert not l2tsql.present(tl.con)
        for fmt in ("jsonl", "csv", "bodyfile"):  # nor does any other format
            write_export(tl, Query(), fmt, tmp_path / f"x.{fmt}")
        assert not l2tsql.present(tl.con)


def test_an_interrupted_fill_leaves_no_table(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the middle of the rows: rolled back, the store as it was."""
    monkeypatch.setattr(l2tsql, "FILL_BATCH", 100)
    seen: list[int] = []

    def interrupt(n: int) -> None:
        seen.append(n)
        if n >= 300:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        l2tsql.fill(store, interrupt)
    assert seen == [100, 200, 300]
    assert not _has_table(store)
    assert not store.with_name(store.name + "-journal").exists()
    with Timeline(store) as tl:
        assert _export(tl, tmp_path / "a.l2tcsv") == _python(tl, "l2tcsv", Query(), None, "web, 1")
        assert l2tsql.present(tl.con)  # made whole by the next export


_KILLED_FILL = """
import os, signal, sys
from pathlib import Path
from forensics.timeline import l2tsql
l2tsql.FILL_BATCH = 100
def stop(n):
    if n >= 300:
        Path(sys.argv[2]).write_text(str(n))
        signal.pause()  # killed here, the transaction open
l2tsql.fill(Path(sys.argv[1]), stop)
"""


def test_a_killed_fill_leaves_no_table(store: Path, tmp_path: Path) -> None:
    """A process killed in the middle of the fill (SIGKILL: no clean-up of its own)
    leaves a journal, which the next reader rolls back: no table, a sound store."""
    marker = tmp_path / "filling"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_FILL, str(store), str(marker)], env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the fill did not get to its third batch"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert store.with_name(store.name + "-journal").exists()  # the hot journal
    assert not _has_table(store)
    with Timeline(store) as tl:
        assert tl.con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert _export(tl, tmp_path / "a.l2tcsv") == _python(tl, "l2tcsv", Query(), None, "web, 1")
        assert l2tsql.present(tl.con)


def _immutable(path: Path, on: bool) -> None:
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True, capture_output=True)


def test_a_read_only_cache_dir_keeps_the_general_sql(store: Path, tmp_path: Path) -> None:
    """The store's directory cannot be written (immutable: not even by root, so no
    journal can be made): the export writes the same bytes without the table."""
    d = store.parent
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: no read-only directory for root")
    try:
        _immutable(d, True)
    except subprocess.CalledProcessError as err:
        pytest.skip(f"chattr +i is not supported here: {err.stderr.decode().strip()}")
    try:
        with pytest.raises(OSError):
            (d / "probe").write_text("x")
        with Timeline(store) as tl:
            assert not prepare_l2t(tl)
            got = _export(tl, tmp_path / "a.l2tcsv")
            assert got == _python(tl, "l2tcsv", Query(), None, "web, 1")
            assert not l2tsql.present(tl.con)
    finally:
        _immutable(d, False)
    assert sorted(p.name for p in d.iterdir()) == [store.name]


def test_a_store_being_built_gets_no_table(store: Path) -> None:
    con = sqlite3.connect(store)
    con.execute("INSERT INTO meta VALUES ('building', ?)", (json.dumps({"records": 1}),))
    con.commit()
    con.close()
    assert not l2tsql.fill(store)
    assert not _has_table(store)


def test_a_store_that_is_gone_is_not_made(tmp_path: Path) -> None:
    assert not l2tsql.fill(tmp_path / "gone.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_the_formats_of_a_record() -> None:
    attrs = '{"inode":7,"mode":"0644","note":"50% done","size":3,"type":"file","uid":0}'
    line, extra = l2tsql.formats('/a,"b"', "/a (file)", attrs) or ("", "")
    assert line == (
        "%s,UTC,%s,FILE,Container file system (exuvia),%s,0,%s,%s,%s,2,"
        '%.0s"/a,""b""",7,%s,exuvia/fs,'
    )
    assert extra == (
        "entity: %s; event_id: %d; inode: 7; kind: %s; mode: 0644; note: 50%% done;"
        " ref: %s:%d; size: 3; ts_ns: %d; type: file; uid: 0"
    )


@pytest.mark.parametrize(
    "attrs",
    [
        '{"size":true}',  # a bool is not an int (Python writes "true")
        '{"size":1e3}',
        f'{{"size":{1 << 70}}}',  # not what the build keeps
        '{"mode":7}',
        '{"other":"x"}',  # a key the build does not write
        '{"note":"a\\u0000b"}',  # printf would stop at the NUL
        "[1]",
        "{not json",
    ],
)
def test_a_record_the_formats_cannot_render_gets_none(attrs: str) -> None:
    assert l2tsql.formats("/a", "/a (file)", attrs) is None


def test_a_nul_in_the_path_or_message_gets_none() -> None:
    assert l2tsql.formats("/a\x00b", "/a (file)", "{}") is None
    assert l2tsql.formats("/a", "/a\x00 (file)", "{}") is None


def test_an_earlier_export_on_the_same_connection_does_not_keep_the_fill_out(
    store: Path, tmp_path: Path
) -> None:
    """Another format exported first on the same connection (as the replay UI does)
    left no read transaction open: its lock would have kept the fill's commit waiting
    (LOCK_WAIT_S), then out."""
    with Timeline(store) as tl:
        write_export(tl, Query(), "csv", tmp_path / "a.csv", limit=5)
        assert not tl.con.in_transaction
        start = time.monotonic()
        _export(tl, tmp_path / "a.l2tcsv")
        assert l2tsql.present(tl.con)
        assert time.monotonic() - start < l2tsql.LOCK_WAIT_S
