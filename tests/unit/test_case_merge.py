"""The case export's merge (forensics/timeline/casemerge.py): each bundle's rows
rendered by its store, merged a sorted block at a time; over real SQLite cursors
and cases of real bundles written by BundleWriter and filed by CaseWriter."""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forensics.errors import OutputError
from forensics.timeline import Query, casemerge, exportsql, l2tsql
from forensics.timeline import case as case_mod
from forensics.timeline.case import open_case_timeline, write_case_export
from tests.unit.test_case_diff import make_case, replica
from tests.unit.test_case_timeline import _general_lines

MANY = 12  # more bundles than SQLite attaches to one connection (10 as built here)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A case of 12 bundles (their timelines built once for the module)."""
    d = tmp_path_factory.mktemp("many")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(d / "xdg"))
        reps = {f"web-{i:02d}": replica(i, staged=i == 7) for i in range(1, MANY + 1)}
        yield make_case(d / "case", reps)


def _cursors(con: sqlite3.Connection, bundles: list[list[tuple[int, int]]]) -> list[Any]:
    """One cursor per bundle over its (ts, id) rows, in (ts, id) order, as Merged rows."""
    out = []
    for k, rows in enumerate(bundles):
        con.execute(f"CREATE TABLE b{k}(ts INTEGER, id INTEGER PRIMARY KEY)")
        con.executemany(f"INSERT INTO b{k} VALUES (?, ?)", rows)
        out.append(con.execute(f"SELECT ts, {k}, id, 'l' || id, NULL FROM b{k} ORDER BY ts, id"))
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_blocks_are_the_case_order_whatever_the_chunk(chunk: int) -> None:
    """Ties in time within and across bundles (runs of a time longer than a chunk),
    an empty bundle, a bundle of exactly a chunk's rows: every row once, in
    (time, bundle, id) order, each block sorted and after the previous one."""
    rnd = random.Random(chunk)
    bundles: list[list[tuple[int, int]]] = []
    for k in range(6):
        n = {0: 0, 1: chunk, 2: 1}.get(k, 40 + 13 * k)
        ids = rnd.sample(range(1, 10_000), n)
        bundles.append([(rnd.choice((5, 5, 5, 9, rnd.randrange(20))), i) for i in ids])
    con = sqlite3.connect(":memory:")
    want = sorted((ts, k, i, f"l{i}", None) for k, rows in enumerate(bundles) for ts, i in rows)
    got: list[Any] = []
    for block in casemerge.blocks(_cursors(con, bundles), chunk):
        assert block and block == sorted(block)
        assert not got or got[-1] < block[0]
        got += block
    assert got == want
    con.close()


def _keys(lines: list[str], files: list[str]) -> list[tuple[int, int, int]]:
    recs = [json.loads(x) for x in lines]
    return [(r["timestamp_ns"], files.index(r["bundle"]), r["event_id"]) for r in recs]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "l2tcsv"])
def test_more_bundles_than_one_connection_attaches(many: Path, tmp_path: Path, fmt: str) -> None:
    """12 bundles (more than one SQLite connection could ATTACH): byte for byte the
    lines of the event-at-a-time code, with and without a query and a limit."""
    with open_case_timeline(many) as ct:
        assert len(ct.parts) == MANY
        for q, limit in ((Query(), None), (Query(text="passwd"), None), (Query(), 30)):
            out = tmp_path / f"t.{fmt}"
            n = write_case_export(ct, q, fmt, out, limit=limit)
            want = _general_lines(ct, q, fmt, limit)
            assert out.read_text().splitlines(keepends=True) == want
            assert n == len(want) - (0 if fmt == "jsonl" else 1)


def test_equal_times_across_bundles_and_groups_keep_the_case_order(
    many: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events at the same time in every bundle: listed bundle by bundle (the case's
    order), then by event id, whichever rows a block of the merge was cut at."""
    with open_case_timeline(many) as ct:
        files = [w.file for w in ct.wheres]
        out = tmp_path / "t.jsonl"
        write_case_export(ct, Query(), "jsonl", out)
        keys = _keys(out.read_text().splitlines(), files)
        assert keys == sorted(keys) and len(keys) == ct.count()
        first = [k for k in keys if k[0] == keys[0][0]]
        assert {b for _ts, b, _id in first} == set(range(MANY))  # a tie in every bundle
        assert len(first) > MANY  # and several events of a bundle in it
        whole = out.read_bytes()
        for chunk in (1, 2, 5):  # blocks cut inside the ties: the same bytes
            monkeypatch.setattr(casemerge, "CHUNK", chunk)
            write_case_export(ct, Query(), "jsonl", out)
            assert out.read_bytes() == whole


def test_each_bundle_is_read_in_its_time_index_order(many: Path) -> None:
    """Each bundle's SELECT walks its time index: nothing sorted (no temporary B-tree)
    for the whole case, a time window, or a part split at a time."""
    with open_case_timeline(many) as ct:
        tl = ct.parts[3][1]
        for q, split in (
            (Query(), None),
            (Query(start=1, end=1 << 62), None),
            (Query(), (">=", 5)),
        ):
            sql, params = casemerge.select_sql(tl, 3, q, "r.message", split=split)
            plan = [str(r[3]) for r in tl.con.execute("EXPLAIN QUERY PLAN " + sql, params)]
            assert any("INDEX events_ts" in x for x in plan), plan
            assert not [x for x in plan if "TEMP B-TREE" in x], plan


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "l2tcsv"])
def test_two_processes_write_the_same_bytes(
    many: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """A large whole-case export is cut at a time between this process and a second
    one (exportchild --case); the file is the one a single process writes."""
    with open_case_timeline(many) as ct:
        one = tmp_path / f"one.{fmt}"
        n = write_case_export(ct, Query(), fmt, one)
        monkeypatch.setattr(case_mod, "PARALLEL_MIN", 10)
        at = case_mod._split_time(ct.parts, Query(), None, tmp_path / "x")
        times = sorted({e.event.ts for e in ct.iter_events()})
        assert at is not None and times[0] <= at <= times[-1]
        d = tmp_path / "two"
        d.mkdir()
        two = d / f"two.{fmt}"
        assert write_case_export(ct, Query(), fmt, two) == n
        assert two.read_bytes() == one.read_bytes()
        assert [p.name for p in d.iterdir()] == [two.name]  # no part left
        # most of this case's events share its first time (the median): cut later too,
        # so that both processes write events (both write some for any cut)
        for cut in (times[1], times[len(times) // 2], times[-1]):
            monkeypatch.setattr(case_mod, "_split_time", lambda *_a, cut=cut: cut)
            assert write_case_export(ct, Query(), fmt, two) == n
            assert two.read_bytes() == one.read_bytes()
        monkeypatch.undo()
        monkeypatch.setattr(case_mod, "PARALLEL_MIN", 10)
        assert case_mod._split_time(ct.parts, Query(text="x"), None, two) is None
        assert case_mod._split_time(ct.parts, Query(), 5, two) is None
        assert case_mod._split_time(ct.parts, Query(), None, "-") is None


def test_a_failed_second_process_fails_the_case_export(
    many: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(case_mod, "PARALLEL_MIN", 10)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    d = tmp_path / "out"
    d.mkdir()
    with open_case_timeline(many) as ct, pytest.raises(OutputError, match="second half"):
        write_case_export(ct, Query(), "jsonl", d / "x.jsonl")
    assert list(d.iterdir()) == []


def test_l2tcsv_uses_each_bundles_record_formats(many: Path, tmp_path: Path) -> None:
    """A case's l2tcsv export makes each bundle's l2tcsv record formats (l2tsql) as a
    bundle's own does, and reads them where a store has them: the same bytes with
    some stores having them and others not, and the SQL, not Python, wrote the lines."""
    with open_case_timeline(many) as ct:
        for _w, tl in ct.parts:  # as built: no table (an earlier test may have made it)
            con = sqlite3.connect(tl.path)
            con.execute(f"DROP TABLE IF EXISTS {l2tsql.TABLE}")
            con.commit()
            con.close()
        assert l2tsql.fill(ct.parts[0][1].path)
        short, whole = tmp_path / "s.l2tcsv", tmp_path / "t.l2tcsv"
        write_case_export(ct, Query(), "l2tcsv", short, limit=30)  # short: makes none
        assert [l2tsql.present(tl.con) for _w, tl in ct.parts] == [True] + [False] * (MANY - 1)
        write_case_export(ct, Query(), "l2tcsv", whole)
        assert all(l2tsql.present(tl.con) for _w, tl in ct.parts)
        # (the reference last: its half-read cursors would hold the stores' read locks)
        assert whole.read_text().splitlines(keepends=True) == _general_lines(ct, Query(), "l2tcsv")
        assert short.read_text().splitlines(keepends=True) == _general_lines(
            ct, Query(), "l2tcsv", 30
        )
        tls = [tl for _w, tl in ct.parts]
        params = [{"host": "h"} for _ in tls]
        fs = Query(sources=("fs",))
        with casemerge.merged(tls, fs, "NULL", "NULL", params, pick=exportsql.l2t_sql) as rows:
            got = [row for block in iter(lambda: rows.fetchmany(0), []) for row in block]
        assert got
        assert all(line is not None and extra is not None for *_k, line, extra in got)
