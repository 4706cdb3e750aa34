"""Querying a timeline: filters, full text, paging, histograms."""

from __future__ import annotations

import pytest

from forensics.timeline import Flag, Query, open_timeline
from forensics.timeline import query as qmod
from forensics.timeline.events import Event
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_logs import cri
from tests.unit.test_timeline_support import (
    NS,
    T0,
    fs_entry,
    make_bundle,
    process,
)


# -- queries -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Timeline:
    d = tmp_path_factory.mktemp("rich")
    fs = [fs_entry(f"/srv/data/file{i}.txt", T0 + i * NS, T0 + i * NS, T0 + i * NS + 1)
          for i in range(300)]  # fmt: skip
    fs.append(fs_entry("/etc/app/app.conf", T0 + 50 * NS, T0, T0 + 50 * NS, T0, changed=True))
    log = "".join(
        cri(f"2026-11-23T15:{55 + i // 60:02d}:{i % 60:02d}Z", "stdout", "F",
            f"request {i} path=/api/items/{i % 7} status={200 if i % 5 else 500}")
        for i in range(240)
    )  # fmt: skip
    bundle = make_bundle(
        d / "b.exv",
        fs=fs,
        processes=[process(4931, 1, "target", T0), process(4940, 4931, "worker", T0 + 2 * NS)],
        runtime_logs=[("cri", log.encode())],
    )
    return open_timeline(bundle, cache_dir=d / "cache")


def test_filters(rich: Timeline) -> None:
    assert rich.count() == len(rich.events())
    assert rich.count(Query(sources=("fs",))) == 301 * 2
    assert rich.count(Query(sources=("log",))) == 240
    assert rich.count(Query(sources=("fs", "proc"))) == 602 + 2
    assert rich.count(Query(kinds=("file.born",))) == 1
    assert rich.count(Query(kinds=("file.changed", "process.started"))) == 301 + 2
    assert rich.count(Query(entity="/etc/app/app.conf")) == 2
    assert rich.count(Query(entity="/srv/data/file1*")) == 2 * (1 + 10 + 100)
    assert rich.count(Query(entity="pid:4940")) == 1
    window = rich.events(Query(start=T0 + 10 * NS, end=T0 + 12 * NS))
    assert all(T0 + 10 * NS <= e.ts < T0 + 12 * NS for e in window)
    assert [e.entity for e in window if e.source == "fs"] == [
        "/srv/data/file10.txt", "/srv/data/file10.txt", "/srv/data/file11.txt",
        "/srv/data/file11.txt",
    ]  # fmt: skip
    both = Query(sources=("log",), start=T0 + 60 * NS, end=T0 + 70 * NS, text="status 500")
    assert [e.message for e in rich.events(both)] == [
        "request 60 path=/api/items/4 status=500",
        "request 65 path=/api/items/2 status=500",
    ]
    assert rich.count(Query(flags=int(Flag.CHANGED))) == 2


def test_full_text_search(rich: Timeline) -> None:
    assert [(e.entity, e.macb) for e in rich.events(Query(text="app.conf"))] == [
        ("/etc/app/app.conf", ".a.b"),
        ("/etc/app/app.conf", "m.c."),
    ]
    assert rich.count(Query(text="file12*")) == 2 * 11  # file12, file120..file129
    assert rich.count(Query(text="items 3 STATUS")) == len([i for i in range(240) if i % 7 == 3])
    assert rich.count(Query(text="nosuchword")) == 0
    assert rich.count(Query(text='" OR * ) ( NEAR')) == 0  # FTS syntax is never interpreted
    assert rich.count(Query(text="worker")) == 1


def test_both_full_text_plans_agree(rich: Timeline, monkeypatch: pytest.MonkeyPatch) -> None:
    q = Query(text="srv data", start=T0 + 100 * NS)
    direct = [e.id for e in rich.events(q, limit=50)]
    n_direct = rich.count(q)
    monkeypatch.setattr(qmod, "FTS_DIRECT_LIMIT", 10)
    scan = [e.id for e in rich.events(q, limit=50)]
    assert direct == scan
    assert rich.count(q) == n_direct == 2 * 200


def test_paging_by_offset_and_by_key(rich: Timeline) -> None:
    everything = [e.id for e in rich.events()]
    pages: list[int] = []
    after = None
    while True:
        page: list[Event] = rich.events(limit=97, after=after)
        if not page:
            break
        pages += [e.id for e in page]
        after = (page[-1].ts, page[-1].id)
    assert pages == everything
    assert [e.id for e in rich.events(offset=100, limit=50)] == everything[100:150]


def test_histogram_counts_add_up(rich: Timeline) -> None:
    whole = rich.histogram(buckets=10)
    assert whole.width == 60 * NS  # 310 s / 10 buckets, rounded up to a round width
    assert sum(n for _, n in whole.bins) == rich.count()
    assert all(b % whole.width == 0 for b, _ in whole.bins)
    hours = rich.histogram(width_ns=3600 * NS)
    assert hours.bins == [(T0 // (3600 * NS) * 3600 * NS, rich.count())]
    fine = rich.histogram(Query(start=T0, end=T0 + 600 * NS), buckets=20)
    assert fine.width == 30 * NS
    assert sum(n for _, n in fine.bins) == rich.count(Query(start=T0, end=T0 + 600 * NS))
    logs = rich.histogram(Query(sources=("log",)), width_ns=60 * NS)
    assert [n for _, n in logs.bins] == [60, 60, 60, 60]
    assert [b for b, _ in logs.bins] == [T0 + i * 60 * NS for i in range(4)]
    text = rich.histogram(Query(text="status 500"), width_ns=3600 * NS)
    assert sum(n for _, n in text.bins) == 48
