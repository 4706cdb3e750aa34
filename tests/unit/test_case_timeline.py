"""The case's super-timeline (forensics/timeline/case.py) and `exuvia timeline CASE`,
over bundles written by the real BundleWriter and filed by the real CaseWriter."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from forensics.errors import BundleError
from forensics.timeline import Query, open_timeline
from forensics.timeline import fs as timeline_fs
from forensics.timeline.case import (
    CASE_CSV_COLUMNS,
    WHERE_FIELDS,
    CaseTimeline,
    case_csv_row,
    case_timesketch_record,
    l2t_case_row,
    open_case_timeline,
    write_case_export,
)
from forensics.timeline.export import L2T_COLUMNS
from forensics.timeline.exportfast import compact
from tests.unit.test_case_diff import make_case, replica
from tui.cli import main

PODS = ("web-a", "web-b", "web-c")


@pytest.fixture
def case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    reps = {"web-a": replica(1), "web-b": replica(2, staged=True), "web-c": replica(3)}
    return make_case(tmp_path / "case", reps)


def test_merged_in_time_order_each_event_with_its_pod(case: Path) -> None:
    with open_case_timeline(case) as ct:
        assert [w.label for w in ct.wheres] == [f"prod/{p}/app" for p in PODS]
        events = ct.events()
        assert len(events) == ct.count() == sum(ct.counts().values())
        keys = [(ce.event.ts, ce.where.index, ce.event.id) for ce in events]
        assert keys == sorted(keys)  # time, then the bundle's place, then the id
        per = {}
        for w in ct.wheres:
            assert w.namespace == "prod" and w.container == "app" and w.node == "node-a"
            assert w.file == f"prod_{w.pod}_app.exv"
            per[w.label] = [(ce.event.ts, ce.event.id) for ce in events if ce.where == w]
            with open_timeline(case / w.file) as alone:  # nothing lost, nothing added
                assert per[w.label] == [(e.ts, e.id) for e in alone.events()]
        # the same times in every bundle (the files' T0): listed bundle by bundle
        same = [ce.where.index for ce in events if ce.event.ts == events[0].event.ts]
        assert same == sorted(same) and len(set(same)) == 3
        implant = ct.events(Query(text="implant"))
        assert implant and {ce.where.pod for ce in implant} == {"web-b"}
        only_b = ct.events(pods=["web-b"])
        assert {ce.where.pod for ce in only_b} == {"web-b"} and len(only_b) == per[
            "prod/web-b/app"
        ].__len__()
        assert ct.events(pods=["prod/web-a/app", "prod/web-c"]) == [
            ce for ce in events if ce.where.pod in ("web-a", "web-c")
        ]


def test_paging_after_a_key_is_the_same_sequence(case: Path) -> None:
    with open_case_timeline(case) as ct:
        whole = ct.events()
        pages, after = [], None
        while True:
            page = ct.events(after=after, limit=7)
            if not page:
                break
            pages += page
            last = page[-1]
            after = (last.event.ts, last.where.index, last.event.id)
        assert pages == whole


def test_histograms_share_their_buckets(case: Path) -> None:
    with open_case_timeline(case) as ct:
        width, per = ct.histograms(buckets=20)
        assert set(per) == {f"prod/{p}/app" for p in PODS}
        assert all(h.width == width for h in per.values())
        starts = {s for h in per.values() for s, _n in h.bins}
        assert all(s % width == 0 for s in starts)
        for label, h in per.items():
            assert sum(n for _s, n in h.bins) == ct.counts()[label]
        total = ct.histogram(buckets=20)
        assert sum(n for _s, n in total.bins) == ct.count()


def test_exports_carry_the_pod_and_container(case: Path, tmp_path: Path) -> None:
    with open_case_timeline(case) as ct:
        n = ct.count()
        assert write_case_export(ct, Query(), "jsonl", tmp_path / "t.jsonl") == n
        recs = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
        assert len(recs) == n
        assert all({"message", "datetime", "timestamp", "timestamp_desc"} <= set(r) for r in recs)
        assert {(r["namespace"], r["pod"], r["container"], r["node"]) for r in recs} == {
            ("prod", p, "app", "node-a") for p in PODS
        }
        assert [r["timestamp_ns"] for r in recs] == sorted(r["timestamp_ns"] for r in recs)
        assert all(r["bundle"] == f"prod_{r['pod']}_app.exv" for r in recs)

        write_case_export(ct, Query(), "csv", tmp_path / "t.csv")
        rows = list(csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text())))
        assert len(rows) == n and {r["pod"] for r in rows} == set(PODS)
        assert rows[0]["namespace"] == "prod" and rows[0]["container"] == "app"

        write_case_export(ct, Query(), "l2tcsv", tmp_path / "t.l2t", pods=["web-b"])
        rows = list(csv.reader(io.StringIO((tmp_path / "t.l2t").read_text())))
        assert tuple(rows[0]) == L2T_COLUMNS
        assert {r[8] for r in rows[1:]} == {"prod/web-b/app"}  # host
        assert all("pod: web-b" in r[16] and "container: app" in r[16] for r in rows[1:])

        k = write_case_export(ct, Query(), "bodyfile", tmp_path / "t.body")
        lines = (tmp_path / "t.body").read_text().splitlines()
        assert k == len(lines) > 0
        names = [x.split("|")[1] for x in lines]
        assert "prod/web-b/app/tmp/.y" in names  # TSK's mount-point prefix: fls -m
        assert {x.split("/")[1] for x in names} == set(PODS)


def _general_lines(ct: CaseTimeline, q: Query, fmt: str, limit: int | None = None) -> list[str]:
    """The export as the general code writes it, an Event at a time (the reference)."""
    events = ct.iter_events(q, limit=limit)
    if fmt == "jsonl":
        return [compact(case_timesketch_record(ce)) + "\n" for ce in events]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CASE_CSV_COLUMNS if fmt == "csv" else L2T_COLUMNS)
    for ce in events:
        w.writerow(case_csv_row(ce) if fmt == "csv" else l2t_case_row(ce))
    return buf.getvalue().splitlines(keepends=True)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "l2tcsv"])
def test_the_fast_export_writes_what_the_general_code_writes(
    case: Path, tmp_path: Path, fmt: str
) -> None:
    """The merged stored rows (forensics/timeline/casefast.py) give byte for byte the
    lines of the event-at-a-time code, in the same order, fs events and others mixed."""
    with open_case_timeline(case) as ct:
        for q, limit in ((Query(), None), (Query(text="passwd"), None), (Query(), 7)):
            out = tmp_path / f"t.{fmt}"
            n = write_case_export(ct, q, fmt, out, limit=limit)
            got = out.read_text().splitlines(keepends=True)
            want = _general_lines(ct, q, fmt, limit)
            assert got == want
            assert n == len(want) - (0 if fmt == "jsonl" else 1)
        sources = {json.loads(x)["source"] for x in _general_lines(ct, Query(), "jsonl")}
        assert "fs" in sources and len(sources) > 1  # both paths were taken


def test_no_stored_file_field_is_a_where_field() -> None:
    """The fast path appends the where fields after a stored fs row's attributes
    without looking for a clash: there can be none."""
    stored = set(timeline_fs._STR_FIELDS) | set(timeline_fs._INT_FIELDS)
    assert not stored & set(WHERE_FIELDS)


def test_the_timeline_command_on_a_case(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["timeline", str(case), "--search", "implant"]) == 0
    out, err = capsys.readouterr()
    assert out and all(" web-b/app " in line for line in out.splitlines())
    assert "timeline of case IR-1:" in err and "prod/web-a/app: " in err
    assert main(["timeline", str(case), "-o", str(tmp_path / "x.jsonl"), "--pod", "web-a"]) == 0
    recs = [json.loads(x) for x in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert recs and {r["pod"] for r in recs} == {"web-a"}
    capsys.readouterr()
    assert main(["timeline", str(case), "--pod", "web-z"]) == 2
    err = capsys.readouterr().err
    assert "no such pod in the case" in err and err.count("\n") == 1


def test_bad_case_directories_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "notacase"
    d.mkdir()
    assert main(["timeline", str(d)]) == 2
    err = capsys.readouterr().err
    assert err == f"exuvia: error: {d} is a directory but not a case (it has no case.json)\n"
    (d / "case.json").write_text('{"format": "exuvia-case", "version": "9.0"}')
    assert main(["timeline", str(d)]) == 2
    err = capsys.readouterr().err
    assert "newer" in err and err.count("\n") == 1
    with pytest.raises(BundleError):
        open_case_timeline(d)


def test_a_case_with_a_missing_bundle_names_it(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (case / "prod_web-c_app.exv").unlink()
    with open_case_timeline(case) as ct:
        assert [w.pod for w in ct.wheres] == ["web-a", "web-b"]
        assert "prod/web-c/app" in ct.skipped and "no such file" in ct.skipped["prod/web-c/app"]
    assert main(["timeline", str(case), "-n", "1"]) == 0
    assert "not in the timeline: prod/web-c/app" in capsys.readouterr().err


def test_findings_tag_each_pods_events(case: Path, tmp_path: Path) -> None:
    """--with-findings on a case: each bundle's findings (forensics/findings/case.py)
    tag the events of its own records, not the other pods' records."""
    out = tmp_path / "f.jsonl"
    assert main(["timeline", str(case), "-o", str(out), "--with-findings", "-q"]) == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    tagged = [r for r in recs if "exuvia-finding" in r.get("tag", [])]
    ref = ("web-b", "artifacts/processes.jsonl", 3)  # the implant's record
    implant = [r for r in tagged if (r["pod"], r["ref_member"], r["ref_line"]) == ref]
    assert implant and "finding:env.preload" in implant[0]["tag"]
    # web-b's process findings tag none of the other pods' process records
    assert not [r for r in tagged if r["pod"] != "web-b" and "processes.jsonl" in r["ref_member"]]
    assert main(["timeline", str(case), "-o", str(tmp_path / "f.l2tcsv"), "--with-findings",
                 "-q"]) == 0  # fmt: skip
    rows = list(csv.reader(io.StringIO((tmp_path / "f.l2tcsv").read_text())))
    assert any(r[8] == "prod/web-b/app" and "tag:finding:env.preload" in r[14] for r in rows)
    assert main(["timeline", str(case), "-o", str(tmp_path / "f.body"), "--with-findings"]) == 2
