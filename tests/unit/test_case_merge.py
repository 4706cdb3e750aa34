"""The case export's merge inside SQLite (forensics/timeline/casemerge.py): the
bundles' stores ATTACHed to one connection, one compound SELECT in case order,
groups of at most SQLITE_LIMIT_ATTACHED stores merged by a heap; over cases of
real bundles written by BundleWriter and filed by CaseWriter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from forensics.timeline import Query, casemerge
from forensics.timeline.case import open_case_timeline, write_case_export
from tests.unit.test_case_diff import make_case, replica
from tests.unit.test_case_timeline import _general_lines

MANY = 12  # more bundles than SQLite attaches to one connection here (10)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A case of 12 bundles (their timelines built once for the module)."""
    d = tmp_path_factory.mktemp("many")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(d / "xdg"))
        reps = {f"web-{i:02d}": replica(i, staged=i == 7) for i in range(1, MANY + 1)}
        yield make_case(d / "case", reps)


def test_groups_cut_a_case_into_even_runs() -> None:
    assert casemerge.groups(5, 10) == [range(5)]
    assert casemerge.groups(12, 10) == [range(6), range(6, 12)]
    assert casemerge.groups(21, 10) == [range(7), range(7, 14), range(14, 21)]
    assert casemerge.groups(1, 10) == [range(1)]
    cut = casemerge.groups(31, 4)
    assert [k for run in cut for k in run] == list(range(31)) and max(map(len, cut)) <= 4


def _keys(lines: list[str], files: list[str]) -> list[tuple[int, int, int]]:
    recs = [json.loads(x) for x in lines]
    return [(r["timestamp_ns"], files.index(r["bundle"]), r["event_id"]) for r in recs]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "l2tcsv"])
def test_more_bundles_than_one_connection_attaches(many: Path, tmp_path: Path, fmt: str) -> None:
    """12 bundles: two groups of 6 merged by the heap, byte for byte the lines of the
    event-at-a-time code, with and without a query and a limit."""
    assert casemerge.attach_limit() < MANY  # else this test would not test the groups
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
    order), then by event id, inside one connection's merge and across the groups."""
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
        for limit in (1, 3):  # every store its own group, or groups of three: the same bytes
            monkeypatch.setattr(casemerge, "attach_limit", lambda limit=limit: limit)
            write_case_export(ct, Query(), "jsonl", out)
            assert out.read_bytes() == whole


def test_the_merge_sorts_nothing(many: Path) -> None:
    """SQLite merges the arms (each in its time index's order) with co-routines:
    no temporary B-tree, for the whole case as for a time window."""
    with open_case_timeline(many) as ct:
        tls = [tl for _w, tl in ct.parts][:5]
        g = casemerge.Group(tls, 0)
        try:
            for q in (Query(), Query(start=1, end=1 << 62)):
                sql, params = g.select(q, "r.message", params=[{}] * 5, split=(">=", 5))
                plan = g.plan(sql, params)
                assert plan.count("MERGE (UNION ALL)") == 4
                assert sum("USING INDEX events_ts" in x for x in plan) == 5
                assert not [x for x in plan if "TEMP B-TREE" in x], plan
        finally:
            g.close()


def test_a_store_table_left_unqualified_is_refused() -> None:
    """An arm naming a store table without its attached schema would read the first
    store's table for every bundle: refused, not run."""
    assert casemerge._qualified("SELECT 1 FROM events e JOIN records r", "b3") == (
        "SELECT 1 FROM b3.events e JOIN b3.records r"
    )
    with pytest.raises(AssertionError, match="not qualified"):
        casemerge._qualified("SELECT (SELECT count(*) FROM x, records) FROM b0.events", "b1")
