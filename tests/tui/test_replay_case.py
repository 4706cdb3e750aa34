"""`exuvia replay CASE`: the merged timeline with a pod column, the pod filter, a
histogram per pod, cross-pod pivots and the sibling comparison, through Pilot.
The case: four replicas written by the real BundleWriter and filed by the real
CaseWriter, two of them (web-b, web-d) staging the same implant."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, SelectionList

from forensics.case import CaseWriter, bundle_file_name
from forensics.timeline.case import open_case_timeline
from tests.support.incident_bundle import build
from tests.tui.conftest import answer, wait_for
from tests.unit.test_case_diff import make_case, replica
from tui.cli import main
from tui.replay.case_app import CaseReplayApp, PodHistogram, make_case_app
from tui.replay.screens.help import CASE_KEYS
from tui.replay.widgets.histogram import HistogramStrip

pytestmark = pytest.mark.asyncio
SIZE = (160, 45)
PODS = ("web-a", "web-b", "web-c", "web-d")


@pytest.fixture
def case(tmp_path: Path) -> Path:
    reps = {p: replica(i, staged=p in ("web-b", "web-d")) for i, p in enumerate(PODS)}
    return make_case(tmp_path / "case", reps)


def _cells(app: CaseReplayApp, column: int) -> list[str]:
    table = app.query_one("#case-events", DataTable)
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def _ready(pilot: object, app: CaseReplayApp) -> None:
    await wait_for(pilot, lambda: app.ct is not None and app.rows and app.total is not None)


async def test_pod_column_counts_and_a_histogram_per_pod(case: Path) -> None:
    with open_case_timeline(case) as ct:
        total, per = ct.count(), ct.counts()
    app = make_case_app(case)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        assert app.total == total and len(app.rows) == min(total, 500)
        assert set(_cells(app, 1)) == {f"{p}/app" for p in PODS}
        assert [ce.where.pod for ce in app.rows] == [c.split("/")[0] for c in _cells(app, 1)]
        rows = list(app.query(PodHistogram))
        assert [r.label for r in rows] == [f"prod/{p}/app" for p in PODS]
        await wait_for(pilot, lambda: all(r.query_one(HistogramStrip).hist for r in rows))
        for r in rows:
            hist = r.query_one(HistogramStrip).hist
            assert hist is not None and sum(n for _s, n in hist.bins) == per[r.label]
        assert "event 1 of" in str(app.query_one("#status").render())
        await wait_for(pilot, lambda: "pod prod/web-a/app  node node-a"
                       in str(app.query_one("#detail-body").render()))  # fmt: skip
        await pilot.press("question_mark")
        assert app.screen.keys is CASE_KEYS  # type: ignore[attr-defined]
        await pilot.press("escape")


async def test_the_pod_filter(case: Path) -> None:
    app = make_case_app(case)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        await pilot.press("p")
        sl = app.screen.query_one(SelectionList)
        sl.deselect_all()
        sl.select("prod/web-b/app")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.pods == ["prod/web-b/app"] and app.total is not None)
        assert set(_cells(app, 1)) == {"web-b/app"}
        with open_case_timeline(case) as ct:
            assert app.total == ct.counts()["prod/web-b/app"]
        others = [r for r in app.query(PodHistogram) if r.label != "prod/web-b/app"]
        await wait_for(pilot, lambda: all(r.has_class("filtered-out") for r in others))
        await pilot.press("a")  # every pod again
        await wait_for(pilot, lambda: app.pods == [] and len(set(_cells(app, 1))) == 4)


async def test_cross_pod_pivots_from_the_implant(case: Path) -> None:
    app = make_case_app(case)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        await answer(pilot, "/", "implant")
        await wait_for(pilot, lambda: app.rows and app.search_text == "implant")
        cur = app.current()
        assert cur is not None and cur.where.pod == "web-b" and cur.event.source == "proc"
        await pilot.press("x")
        screen = app.screen
        await wait_for(pilot, lambda: getattr(screen, "found", None))
        found = {(p.kind, p.key, p.where.pod) for p in screen.found}  # type: ignore[attr-defined]
        assert ("same executable", "/tmp/.x", "web-d") in found
        assert ("same file", "e7" * 32, "web-d") in found  # the dropped binary's hash
        assert ("same remote address", "203.0.113.7", "web-d") in found
        assert all(pod == "web-d" for kind, _k, pod in found if kind != "same remote address")
        table = screen.query_one(DataTable)
        table.move_cursor(row=next(i for i, p in enumerate(screen.found)  # type: ignore[attr-defined]
                                   if p.kind == "same executable"))  # fmt: skip
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not screen and app.rows)
        cur = app.current()
        assert cur is not None and cur.where.pod == "web-d" and "implant" in cur.event.message


async def test_the_sibling_comparison_view(case: Path) -> None:
    app = make_case_app(case)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        await pilot.press("D")
        screen = app.screen
        await wait_for(pilot, lambda: app.diff is not None)
        table = screen.query_one(DataTable)
        texts = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert texts[0] == "== Deployment/web:app: 4 replicas"
        assert set(texts[1:3]) == {"prod/web-b/app", "prod/web-d/app"}  # ranked first
        table.move_cursor(row=texts.index("process /tmp/.x  /tmp/.x implant: only in 2 of 4"))
        await pilot.press("enter")  # opens the process's start in the list
        await wait_for(pilot, lambda: app.screen is not screen and app.rows)
        cur = app.current()
        assert cur is not None and cur.where.pod == "web-b" and "implant" in cur.event.message
        await pilot.press("D")  # computed once, shown again
        screen = app.screen
        table = screen.query_one(DataTable)
        texts = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        table.move_cursor(row=texts.index("listener tcp 0.0.0.0:4444: only in 2 of 4"))
        await pilot.press("enter")  # a socket has no time: the pods that have it
        await wait_for(pilot, lambda: app.screen is not screen and app.total is not None)
        assert app.pods == ["prod/web-b/app", "prod/web-d/app"]
        assert set(_cells(app, 1)) == {"web-b/app", "web-d/app"}


async def test_a_bad_case_opens_with_its_error(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "case.json").write_text('{"format": "exuvia-case", "version": "1.0", "state": "bogus"}')
    app = make_case_app(d)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.error is not None)
        assert "state is not valid" in app.error
    assert main(["replay", str(tmp_path)]) == 2  # a directory without case.json: one line


async def test_every_pods_findings(case: Path) -> None:
    app = make_case_app(case)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        await pilot.press("exclamation_mark")
        screen = app.screen
        await wait_for(pilot, lambda: app.case_findings is not None)
        table = screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0][1] == "held in several pods"
        preload = next(i for i, r in enumerate(rows) if "LD_PRELOAD" in r[1] and r[0])
        assert rows[preload][2] == "prod/web-b/app, prod/web-d/app"  # in both staged pods
        table.move_cursor(row=preload)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not screen and app.rows)
        cur = app.current()
        assert cur is not None and cur.where.pod == "web-b" and "implant" in cur.event.message


async def test_from_container_start(tmp_path: Path) -> None:
    """--from-start: the list opens at the first container start of any pod (the
    image's old file times before it), the strips cover the time from there."""

    d = tmp_path / "inc"
    w = CaseWriter.create(d, case_id="IR-7", examiner="alice", request={"target": "t"})
    w.resolved([{"namespace": "prod", "name": p, "owners": [{"kind": "Deployment", "name": "w"}]}
                for p in ("a", "b")], at_ns=0)  # fmt: skip
    for p in ("a", "b"):
        file = bundle_file_name("prod", p, "app")
        build(d / file)
        w.add_bundle("prod", p, "app", file=file)
        w.finished("prod", p, "app", status="complete", file=file)
    w.seal()
    app = make_case_app(d, from_container_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        cur = app.current()
        assert cur is not None and cur.event.kind == "container.created" and cur.where.pod == "a"
        assert app.hist_lo == cur.event.ts
        strips = [r.query_one(HistogramStrip) for r in app.query(PodHistogram)]
        await wait_for(pilot, lambda: all(s.hist for s in strips))
        assert all(s.lo == cur.event.ts for s in strips)
