"""The replay app's headless parts: paging windows, filters, case notes, exports with notes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from forensics.errors import BundleError
from forensics.notes import NotesFile, notes_path
from forensics.snapshot import load_snapshot
from forensics.timeline import Query, open_timeline, write_export
from forensics.timeline.events import event_key
from tests.support.incident_bundle import T0, build
from tui.replay.filters import Filters
from tui.replay.paging import Window, key

NS = 1_000_000_000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("replay") / "incident.exv")


def test_window_moves_match_the_store_for_every_height(bundle: Path) -> None:
    with open_timeline(bundle) as tl:
        everything = tl.events(Query())
        for height in (1, 2, 5, 13, 46, 47, 100):
            w = Window(tl, height=height)
            w.home()
            assert w.rows == everything[:height]
            seen = list(w.rows)
            while True:
                before = w.rows[-1]
                w.page(1)
                if w.rows[-1] == before:
                    break
                seen += w.rows
            assert sorted(set(map(key, seen))) == [key(e) for e in everything]
            w.end()
            assert w.rows == everything[-height:] and w.current == everything[-1]
            w.move(-(height + 3))  # scrolls up past the window's top
            assert w.current == everything[-height - 4] if height + 4 <= 47 else everything[0]


def test_goto_time_goto_event_and_reload_keep_the_place(bundle: Path) -> None:
    with open_timeline(bundle) as tl:
        w = Window(tl, height=10)
        w.goto_time(T0 + 600 * NS)
        assert w.current is not None and w.current.entity == "pid:4107"
        w.goto_time(T0 + 10**6 * NS)  # after everything: the last event
        assert w.current == tl.events_before(Query(), None, 1)[0]
        implant = tl.events(Query(entity="pid:4107"))[0]
        w.goto_event(implant, above=3)
        assert w.cursor == 3 and w.current == implant
        w.query = Query(sources=("proc",))
        w.reload()
        assert w.current == implant and {e.source for e in w.rows} == {"proc"}
        w.query = Query(sources=("k8s",))  # nothing: an empty window, no error
        w.reload()
        assert w.rows == [] and w.current is None


def test_rank_and_context(bundle: Path) -> None:
    with open_timeline(bundle) as tl:
        everything = tl.events(Query())
        for i in (0, 10, 46):
            assert tl.rank(Query(), key(everything[i])) == i
        line = tl.events(Query(text="implant"))[0]
        ctx = tl.context(line, 2)
        assert [n for n, _t, _this in ctx] == [9, 10, 11, 12, 13]
        assert [this for *_x, this in ctx] == [False, False, True, False, False]


def test_filters_combine_and_chips_remove_one_each() -> None:
    f = Filters(sources=frozenset({"log", "proc"}), kinds=frozenset({"log.line"}),
                entity="/tmp/*", start=5, end=9, text="implant")  # fmt: skip
    q = f.query("server")
    assert q.sources == ("log", "proc") and q.text == "implant server"
    chips = dict(f.chips())
    assert set(chips) == {"source-log", "source-proc", "kind-log_line", "entity", "start",
                          "end", "text"}  # fmt: skip
    for chip in chips:
        rest = f.without(chip)
        assert len(rest.chips()) == len(chips) - 1
    assert Filters().toggle_source("fs").toggle_source("fs") == Filters()


def test_notes_round_trip_and_exports(bundle: Path, tmp_path: Path) -> None:
    case = NotesFile.for_bundle(bundle)
    with open_timeline(bundle) as tl:
        ev = tl.events(Query(entity="pid:4107"))[0]
        other = tl.events(Query(text="implant"))[0]
        case.toggle_bookmark(ev)
        assert case.toggle_tag(ev, "c2") and case.toggle_tag(other, "config")
        case.set_text(other, 'he said "hi"\nthen left')
        assert not case.toggle_tag(other, "config")  # again: removed
        again = NotesFile.for_bundle(bundle)
        assert again.notes.keys() == {event_key(ev), event_key(other)}
        assert again.get(other).text == 'he said "hi"\nthen left'  # type: ignore[union-attr]
        out = tmp_path / "v.csv"
        write_export(tl, Query(), "csv", out, notes=again.notes)
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == 47
        mine = {r["event_id"]: r for r in rows if r["bookmarked"] or r["tags"] or r["note"]}
        assert mine[str(ev.id)]["bookmarked"] == "yes" and mine[str(ev.id)]["tags"] == "c2"
        assert mine[str(other.id)]["note"] == 'he said "hi"\\nthen left'
        l2t = tmp_path / "v.l2tcsv"
        write_export(tl, Query(), "l2tcsv", l2t, notes=again.notes)
        assert "bookmarked tag:c2" in l2t.read_text()
        plain = tmp_path / "plain.jsonl"
        write_export(tl, Query(), "jsonl", plain)
        assert not any("tag" in json.loads(x) for x in plain.read_text().splitlines())
        with pytest.raises(ValueError, match="bodyfile"):
            write_export(tl, Query(), "bodyfile", tmp_path / "b.body", notes=again.notes)
    # emptying a note removes it
    case.toggle_bookmark(ev)
    case.toggle_tag(ev, "c2")
    assert event_key(ev) not in NotesFile.for_bundle(bundle).notes


def test_notes_file_goes_to_the_user_cache_when_the_bundle_dir_is_read_only(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("forensics.atomic.os.access", lambda *_a: False)  # root may write anywhere
    ro = tmp_path / "ro.exv"
    ro.write_bytes(bundle.read_bytes())
    assert notes_path(ro) == tmp_path / "xdg" / "exuvia" / "notes" / "ro.exv.notes.json"


def test_a_legacy_case_named_notes_file_is_still_read_and_kept_in_place(
    bundle: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "b.exv"
    copy.write_bytes(bundle.read_bytes())
    legacy = copy.with_name("b.exv.case.json")
    with open_timeline(copy) as tl:
        ev = tl.events(Query(text="implant"))[0]
    note = {"key": event_key(ev), "ts": ev.ts, "summary": "x", "bookmarked": True}
    legacy.write_text(json.dumps({"format": "exuvia-case", "version": 1, "notes": [note]}))
    nf = NotesFile.for_bundle(copy)
    assert nf.path == legacy and nf.get(ev) is not None and nf.get(ev).bookmarked  # type: ignore[union-attr]
    nf.toggle_tag(ev, "seen")
    assert not copy.with_name("b.exv.notes.json").exists()
    assert json.loads(legacy.read_text())["notes"][0]["tags"] == ["seen"]


def test_a_broken_notes_file_is_one_clear_error(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b.exv"
    copy.write_bytes(bundle.read_bytes())
    copy.with_name("b.exv.notes.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        NotesFile.for_bundle(copy)
    copy.with_name("b.exv.notes.json").write_text('{"format": "something-else"}')
    with pytest.raises(BundleError, match="not an exuvia notes file"):
        NotesFile.for_bundle(copy)


def test_snapshot_tree_children_and_alive(bundle: Path) -> None:
    snap = load_snapshot(bundle)
    assert snap.problems == []
    tree = [(d, p["name"]) for d, p in snap.tree()]
    assert tree == [(0, "server"), (1, ".x"), (1, "worker")]
    assert snap.alive_at(T0 + 700 * NS) == {4100, 4107}
    assert [s["local_port"] for s in snap.sockets_of(4107)] == [4444]
    assert snap.custody[0]["action"] == "capture.started"
