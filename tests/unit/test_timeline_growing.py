"""A timeline store read while it is built (forensics.timeline.growing), on a real bundle.

The build is real (extractor + indexing process); the test holds it between two
chunks by waiting inside the build's own hand-over (our code) until the reader
has looked, so every observation is of a known state, never of a race.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forensics.errors import OutputError
from forensics.timeline import Query, open_timeline
from forensics.timeline import store as store_mod
from forensics.timeline.growing import GrowingTimeline, open_growing
from forensics.timeline.store import StoreSink
from tests.support.many_events import build

ROOT = Path(__file__).resolve().parents[2]


def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of ~1000 records, so the 8,000-record bundle takes several."""
    monkeypatch.setattr(store_mod, "LIVE_FIRST_BATCH", 500)
    monkeypatch.setattr(store_mod, "BATCH", 1000)
    monkeypatch.setattr(store_mod, "LIVE_CHUNK_RECORDS", 1000)


def opens(store: Path) -> bool:
    """Whether the growing store can be read yet (the probe is closed: the build
    pauses the cyclic GC, which is what would close a dropped connection)."""
    tl = open_growing(store)
    if tl is None:
        return False
    tl.close()
    return True


def events_so_far(store: Path) -> int:
    tl = open_growing(store)
    if tl is None:
        return 0
    tl.close()
    return tl.so_far["events"]


def wait(cond: Callable[[], object], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return build(tmp_path / "many.exv")


def reference(bundle: Path, tmp_path: Path) -> list[tuple[int, int, str]]:
    with open_timeline(bundle, cache_dir=tmp_path / "ref-cache") as tl:
        return [(e.ts, e.id, e.message) for e in tl.iter_events()]


class Observer:
    """The hooks: after each chunk is sent, wait until the reader has seen it committed."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.tl: GrowingTimeline | None = None
        self.seen: list[dict[str, Any]] = []
        self.sealed = False

    def started(self, store: Path) -> None:
        self.path = store

    def after_send(self, sink: StoreSink) -> None:
        if self.path is None:
            return
        if self.tl is None:
            wait(lambda: opens(self.path))
            self.tl = open_growing(self.path)
        assert self.tl is not None
        sent = sink.records  # every record handed over so far
        wait(lambda: (self.tl.refresh() or {}).get("records", -1) >= sent)
        so_far = dict(self.tl.so_far)
        events = [(e.ts, e.id, e.message) for e in self.tl.iter_events()]
        self.seen.append({"so_far": so_far, "events": events, "count": self.tl.count()})

    def sealing(self) -> None:
        self.sealed = True
        if self.tl is not None:
            self.tl.close()


def test_a_growing_store_shows_each_committed_chunk_in_order(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_chunks(monkeypatch)
    obs = Observer()
    hand_over = StoreSink._hand_over

    def observed(self: StoreSink, last: bool = False) -> None:
        hand_over(self, last)
        if not last:
            obs.after_send(self)

    monkeypatch.setattr(StoreSink, "_hand_over", observed)
    cache = tmp_path / "cache"
    tl = open_timeline(bundle, cache_dir=cache, growing=obs)
    final = [(e.ts, e.id, e.message) for e in tl.iter_events()]
    assert final == reference(bundle, tmp_path)  # a live build gives the same timeline
    assert len(obs.seen) >= 5, "the bundle should take several chunks"
    # the growing store's path was the work directory's, never a finished store's name
    assert obs.path is not None and obs.path.parent.name.startswith(".timeline-")
    assert obs.path.parent.parent == cache
    previous = 0
    for look in obs.seen:
        events = look["events"]
        # whole chunks only: the published count is what is there, and it only grows
        assert look["count"] == len(events) == look["so_far"]["events"]
        assert len(events) >= previous
        previous = len(events)
        # in timeline order, and every one of them is in the finished timeline
        assert events == sorted(events)
        assert set(events) <= set(final)
    # earlier events arrived after the first look: "order may still change" is true
    first_looked = next(look["events"][0] for look in obs.seen if look["events"])
    assert final[0] < first_looked
    assert obs.sealed
    # sealed: one self-contained file under its final name, no WAL left, no progress row
    assert tl.path.parent == cache and tl.path.name.startswith("timeline-")
    assert tl.con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert "building" not in tl.meta and tl.meta["events"] == len(final)
    assert sorted(p.name for p in cache.iterdir()) == [tl.path.name]
    tl.close()


def test_a_reader_left_open_makes_the_build_fail_clearly(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "SEAL_WAIT_S", 0.3)
    kept: list[GrowingTimeline] = []

    class Careless:
        def started(self, store: Path) -> None:
            wait(lambda: opens(store))
            tl = open_growing(store)
            assert tl is not None
            kept.append(tl)

        def sealing(self) -> None:  # forgets to close its reader
            pass

    cache = tmp_path / "cache"
    with pytest.raises(OutputError, match="still open elsewhere"):
        open_timeline(bundle, cache_dir=cache, growing=Careless())
    kept[0].close()
    # nothing under a finished store's name, the work directory is gone
    assert list(cache.iterdir()) == []


CHILD = r"""
import sys, time
sys.path.insert(0, {root!r})
from forensics.timeline import open_timeline
from forensics.timeline import store as store_mod
from forensics.timeline.store import StoreSink
store_mod.LIVE_FIRST_BATCH, store_mod.BATCH, store_mod.LIVE_CHUNK_RECORDS = 500, 1000, 1000
hand_over = StoreSink._hand_over
def held(self, last=False):
    hand_over(self, last)
    if self._chunks == 4:  # three chunks on their way: stop here until killed
        print("held", flush=True)
        time.sleep(3600)
StoreSink._hand_over = held
class Hooks:
    def started(self, store):
        print(store, flush=True)
    def sealing(self):
        pass
open_timeline({bundle!r}, cache_dir={cache!r}, growing=Hooks())
"""


def test_a_killed_live_build_leaves_nothing_taken_as_built(bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = CHILD.format(root=str(ROOT), bundle=str(bundle), cache=str(cache))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        store = Path(proc.stdout.readline().strip())
        assert proc.stdout.readline().strip() == "held"
        # the reader sees the chunks committed so far: a store that looks usable
        wait(lambda: events_so_far(store) > 0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its indexing process
        proc.wait()
    # what a kill leaves: the work directory only, never a store under a final name
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".timeline-")] == []
    notes: list[str] = []
    with open_timeline(bundle, cache_dir=cache, progress=notes.append) as tl:
        assert "scanning the bundle" in notes and any("records read" in n for n in notes)
        assert [(e.ts, e.id, e.message) for e in tl.iter_events()] == reference(bundle, tmp_path)
        assert tl.count(Query()) == tl.meta["events"]


def test_a_plain_build_has_no_progress_row_and_no_wal(bundle: Path, tmp_path: Path) -> None:
    with open_timeline(bundle, cache_dir=tmp_path / "c") as tl:
        assert "building" not in tl.meta
        assert tl.con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        con = sqlite3.connect(tl.path)
        assert con.execute("SELECT count(*) FROM meta WHERE key = 'building'").fetchone() == (0,)
        assert json.loads(con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])
        con.close()
