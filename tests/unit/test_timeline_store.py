"""The timeline built from bundles: extractors, store, order, flags, cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from forensics.timeline import Flag, Query, first_lines, open_timeline, raw_record
from forensics.timeline import cache as cache_mod
from forensics.timeline.events import Kind, Source
from forensics.timeline.query import Timeline
from forensics.timeline.runtime import extract_custody, extract_lifecycle
from forensics.timeline.sink import MemorySink
from tests.unit.test_timeline_support import (
    NS,
    T0,
    custody,
    fs_entry,
    make_bundle,
    process,
    target,
)


def build(tmp_path: Path, **kw: Any) -> Timeline:
    bundle = make_bundle(tmp_path / "b.exv", **kw)
    return open_timeline(bundle, cache_dir=tmp_path / "cache")


def fs_events(tl: Timeline) -> list[tuple[str, int, str]]:
    return [(e.entity, e.ts, e.macb) for e in tl.events(Query(sources=("fs",)))]


# -- filesystem ------------------------------------------------------------------------------
def test_macb_letters_combine_per_distinct_time(tmp_path: Path) -> None:
    tl = build(
        tmp_path,
        fs=[
            fs_entry("/a", T0, T0, T0 + 5, T0 + 9),  # m and a equal
            fs_entry("/b", T0 + 1, T0 + 1, T0 + 1, T0 + 1),  # all equal: one event
            fs_entry("/c", T0 + 2, T0 + 3, T0 + 2, None),  # no birth time
            fs_entry("/d", T0 + 4, T0 + 6, T0 + 7, T0 + 6),  # a and b equal
        ],
    )
    assert fs_events(tl) == [
        ("/a", T0, "ma.."),
        ("/b", T0 + 1, "macb"),
        ("/c", T0 + 2, "m.c."),
        ("/c", T0 + 3, ".a.."),
        ("/d", T0 + 4, "m..."),
        ("/a", T0 + 5, "..c."),
        ("/d", T0 + 6, ".a.b"),
        ("/d", T0 + 7, "..c."),
        ("/a", T0 + 9, "...b"),
    ]
    ev = tl.events(Query(entity="/d", kinds=("file.born",)))
    assert len(ev) == 1
    assert ev[0].kinds == ("file.accessed", "file.born")
    assert ev[0].kind == "file.accessed"
    assert ev[0].timestamp_desc == "Last Access Time; Creation Time"
    assert ev[0].ref.member == "artifacts/filesystem.jsonl"
    assert ev[0].ref.line == 4
    assert ev[0].message == "/d (file, 10 bytes, 0644, 0:0)"
    assert ev[0].attrs["inode"] == 1002
    assert tl.meta["events"] == 9 + 2  # and container.created, capture.started
    assert tl.meta["by_source"]["fs"] == 9


def test_same_bundle_same_events_same_order(tmp_path: Path) -> None:
    entries = [fs_entry(f"/f{i}", T0 + (i * 7919) % 13, T0 + i % 3, T0, None) for i in range(200)]
    bundle = make_bundle(tmp_path / "b.exv", fs=entries, processes=[process(4931, 1, "p", T0)])
    first = open_timeline(bundle, cache_dir=tmp_path / "c1")
    again = open_timeline(bundle, cache_dir=tmp_path / "c2")
    a = [(e.id, e.ts, e.kinds, e.entity, e.message) for e in first.events()]
    b = [(e.id, e.ts, e.kinds, e.entity, e.message) for e in again.events()]
    assert a == b
    assert [x[1] for x in a] == sorted(x[1] for x in a)
    # equal times are ordered by id (record order, then m, a, c, b)
    same = [x for x in a if x[1] == T0]
    assert [x[0] for x in same] == sorted(x[0] for x in same)
    assert len(same) > 50


def test_file_flags(tmp_path: Path) -> None:
    tl = build(
        tmp_path,
        fs=[
            fs_entry("/new", T0, T0, T0, T0, changed=True),
            fs_entry("/gone", T0 + 1, None, T0 + 1, None, type="whiteout", deleted=True),
            fs_entry("/old", -5 * NS, -5 * NS, -5 * NS),
            fs_entry("/future", 7_258_118_400 * NS, T0, T0),  # 2200-01-01
            fs_entry("/ln", T0, T0, T0, type="symlink", link_target="/etc/x"),
        ],
    )
    by = {e.entity: e for e in tl.events()}
    assert by["/new"].flags == Flag.CHANGED
    assert "[changed since start]" in by["/new"].message
    assert by["/gone"].flags == Flag.CHANGED | Flag.DELETED
    assert "[deleted since start]" in by["/gone"].message
    assert by["/old"].flags & Flag.TIME_SUSPECT
    future = tl.events(Query(entity="/future"))
    assert [bool(e.flags & Flag.TIME_SUSPECT) for e in future] == [False, True]
    assert by["/ln"].message.startswith("/ln -> /etc/x (symlink")


def test_bad_filesystem_records_are_counted_never_dropped_silently(tmp_path: Path) -> None:
    good = json.dumps(fs_entry("/ok", T0, T0, T0)).encode()
    lines = [
        good,
        b"{not json",
        b"[1, 2]",
        json.dumps(fs_entry("/strtime", "yesterday", T0, T0)).encode(),  # type: ignore[arg-type]
        json.dumps(fs_entry("/huge", 2**70, T0, T0)).encode(),
        json.dumps(fs_entry("/none", None, None, None)).encode(),
        json.dumps({"kind": "fs_entry", "mtime_ns": T0}).encode(),  # no path
        b"\xff\xfe not utf-8",
        b"",
        json.dumps(fs_entry("/nan", T0, T0, T0)).replace(str(T0), "NaN", 1).encode(),
    ]
    tl = build(tmp_path, fs=b"\n".join(lines) + b"\n")
    counts = tl.meta["counts"]
    assert counts["record_malformed"] == 4  # not json, array, no path, not utf-8
    assert counts["time_invalid"] == 3  # string, beyond int64, NaN
    assert counts["no_time"] == 1
    # entries with one bad time keep their good ones
    assert {e.entity for e in tl.events(Query(sources=("fs",)))} == {
        "/ok",
        "/strtime",
        "/huge",
        "/nan",
    }
    assert [e.macb for e in tl.events(Query(entity="/strtime"))] == [".ac."]
    problems = tl.problems()
    assert problems[0][:3] == ("record_malformed", "artifacts/filesystem.jsonl", 2)
    assert all(p[1] == "artifacts/filesystem.jsonl" for p in problems)
    assert sorted(p[2] for p in problems) == [2, 3, 4, 5, 6, 7, 8, 10]


# -- processes, runtime, custody --------------------------------------------------------------
PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000::/home/app:/sbin/nologin\n"


def test_process_starts_with_parent_user_and_cmdline(tmp_path: Path) -> None:
    tl = build(
        tmp_path,
        files={"/etc/passwd": PASSWD},
        processes=[
            process(4931, 1, "target", T0),
            process(4937, 4931, ".x", T0 + 3 * NS, exe="/tmp/.x (deleted)", exe_deleted=True,
                    cmdline=["/tmp/.x", "implant", "a b"], environ_redacted=["API_TOKEN"]),
            process(4938, 4931, "nostart", None),
        ],
    )  # fmt: skip
    ev = tl.events(Query(sources=("proc",)))
    assert [e.entity for e in ev] == ["pid:4931", "pid:4937"]
    x = ev[1]
    assert x.ts == T0 + 3 * NS
    assert x.kind == "process.started"
    assert "parent 4931 (target)" in x.message
    assert "user 1000(app)" in x.message
    assert "/tmp/.x implant 'a b'" in x.message
    assert "runs a deleted executable" in x.message
    assert x.flags == Flag.REDACTED | Flag.DELETED
    assert x.attrs["user"] == "app"
    assert x.attrs["cmdline"] == ["/tmp/.x", "implant", "a b"]
    assert x.ref.member == "artifacts/processes.jsonl"
    assert x.ref.line == 2
    assert tl.meta["counts"]["no_time"] == 1
    # runc reports no start time: the init process's stands in, flagged
    started = tl.events(Query(kinds=("container.started",)))
    assert len(started) == 1
    assert started[0].ts == T0
    assert started[0].flags == Flag.TIME_INFERRED
    created = tl.events(Query(kinds=("container.created",)))
    assert created[0].ts == T0 - 10 * NS
    assert created[0].entity == "container:web"


def test_docker_lifecycle_with_exit(tmp_path: Path) -> None:
    state = {"StartedAt": "2026-11-23T15:55:01Z", "FinishedAt": "2026-11-23T15:56:00.5Z",
             "ExitCode": 137, "RestartCount": 2}  # fmt: skip
    tl = build(
        tmp_path,
        tgt=target(runtime="docker", status="exited", started_ns=T0 + NS,
                   runtime_facts={"inspect": {"State": state}}),
    )  # fmt: skip
    kinds = [(e.kind, e.ts) for e in tl.events(Query(sources=("runtime",)))]
    assert kinds == [
        ("container.created", T0 - 10 * NS),
        ("container.started", T0 + NS),
        ("container.exited", T0 + 60 * NS + NS // 2),
    ]
    exited = tl.events(Query(kinds=("container.exited",)))[0]
    assert "with code 137" in exited.message
    assert exited.attrs["exit_code"] == 137


def test_running_container_never_exited_and_previous_run(tmp_path: Path) -> None:
    never = {"StartedAt": "2026-11-23T15:55:01Z", "FinishedAt": "0001-01-01T00:00:00Z"}
    tl = build(tmp_path, tgt=target(runtime="podman", started_ns=T0,
                                    runtime_facts={"inspect": {"State": never}}))  # fmt: skip
    assert tl.count(Query(kinds=("container.exited",))) == 0
    prev = {"FinishedAt": "2026-11-23T15:00:00Z", "ExitCode": 1}
    tl2 = open_timeline(
        make_bundle(tmp_path / "p.exv", tgt=target(runtime="podman", started_ns=T0,
                    runtime_facts={"inspect": {"State": prev}})),
        cache_dir=tmp_path / "c2",
    )  # fmt: skip
    ex = tl2.events(Query(kinds=("container.exited",)))
    assert len(ex) == 1
    assert "previous run" in ex[0].message


def test_capture_actions_from_the_custody_log(tmp_path: Path) -> None:
    tl = build(
        tmp_path,
        custody_log=custody(("capture.started", T0 + 5 * NS), ("capture.finished", T0 + 9 * NS))
        + b"garbage\n",
    )
    ev = tl.events(Query(sources=("custody",)))
    assert [(e.attrs["action"], e.ts) for e in ev] == [
        ("capture.started", T0 + 5 * NS),
        ("capture.finished", T0 + 9 * NS),
    ]
    assert ev[0].entity == "examiner:alice@lab"
    assert ev[0].message == "capture.started by alice on lab: n=1"
    assert ev[0].ref.member == "custody.jsonl"
    assert tl.meta["counts"]["record_malformed"] == 1


# -- cache -------------------------------------------------------------------------------------
def test_cache_is_reused_and_the_bundle_never_modified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle(tmp_path / "b.exv", fs=[fs_entry("/x", T0, T0, T0)])
    before = hashlib.sha256(bundle.read_bytes()).hexdigest()
    tl = open_timeline(bundle)
    assert tl.path.parent == tmp_path / "b.exv.exuvia-cache"
    assert tl.path.name.startswith("timeline-" + tl.meta["manifest_sha256"][:24])
    assert tl.path.suffix == ".sqlite"
    assert [p.name for p in tl.path.parent.iterdir()] == [tl.path.name]  # no leftovers
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == before

    def no_build(*_a: Any, **_k: Any) -> None:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(cache_mod, "build_store", no_build)
    assert open_timeline(bundle).path == tl.path  # by signature, without reading
    os.utime(bundle, ns=(T0, T0))  # same content, new signature: found by its key
    again = open_timeline(bundle)
    assert again.path == tl.path
    assert open_timeline(bundle).path == tl.path
    with pytest.raises(AssertionError, match="rebuilt"):
        open_timeline(bundle, rebuild=True)
    assert [p.name for p in tl.path.parent.iterdir()] == [tl.path.name]


def test_unwritable_bundle_directory_falls_back_to_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle(tmp_path / "b.exv")
    (tmp_path / "b.exv.exuvia-cache").write_text("in the way")  # mkdir fails even for root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    tl = open_timeline(bundle)
    assert tl.path.parent == tmp_path / "xdg" / "exuvia"
    assert open_timeline(bundle).path == tl.path


def test_first_lines(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path / "b.exv",
        fs=[fs_entry("/etc/passwd", T0, T0, T0, T0)],
        runtime_logs=[("raw", b"2026-11-23T15:55:01Z \x1b[31mred\x1b[0m\n")],
    )
    lines = first_lines(bundle, 3)
    assert lines[0] == (
        "2026-11-23T15:54:50.000000000Z  container.created runtime "
        "runc container web (image example/web:1) created"
    )
    assert lines[1].startswith("2026-11-23T15:55:00.000000000Z  macb")
    assert lines[1].endswith("/etc/passwd (file, 10 bytes, 0644, 0:0)")
    assert "\x1b" not in lines[2] and "\\x1b[31mred" in lines[2]  # escapes are shown, not run


def test_first_lines_from_the_container_start(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path / "b.exv",
        fs=[fs_entry("/old/image/file", 1_577_836_800 * NS, 1_577_836_800 * NS, T0 - 60 * NS)],
        runtime_logs=[("raw", b"2026-11-23T15:55:01Z hello\n")],
    )
    everything = first_lines(bundle, 2)
    assert everything[0].startswith("2020-01-01T00:00:00.000000000Z  ma..")
    incident = first_lines(bundle, 2, from_container_start=True)
    assert incident[0].startswith("2026-11-23T15:54:50.000000000Z  container.created")
    assert "hello" in incident[1]


def test_killed_builds_are_swept(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.exv")
    cache = tmp_path / "cache"
    stale = cache / ".timeline-dead.tmp"
    fresh = cache / ".timeline-running.tmp"
    for d in (stale, fresh):
        d.mkdir(parents=True)
        (d / "timeline.sqlite.chunk00001").write_bytes(b"x")
    os.utime(stale, (T0 // NS - 2 * 86400, 1_000_000_000))
    open_timeline(bundle, cache_dir=cache)
    assert not stale.exists()
    assert fresh.exists()  # another build may be running: left alone


def test_an_event_leads_back_to_its_raw_record(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path / "b.exv",
        processes=[process(4931, 1, "a", T0), process(4932, 4931, "b", T0 + NS)],
        runtime_logs=[("raw", b"2026-11-23T15:55:00Z x\n2026-11-23T15:55:09Z second line\n")],
    )
    tl = open_timeline(bundle, cache_dir=tmp_path / "c")
    proc = tl.events(Query(entity="pid:4932"))[0]
    assert json.loads(raw_record(bundle, proc)) == process(4932, 4931, "b", T0 + NS)
    log = tl.events(Query(text="second"))[0]
    assert raw_record(bundle, log) == b"2026-11-23T15:55:09Z second line"
    created = tl.events(Query(kinds=("container.created",)))[0]
    assert json.loads(raw_record(bundle, created))["name"] == "web"


def test_extractors_hand_rows_to_any_sink() -> None:
    """The extractors know nothing of SQLite: a memory sink sees the same rows."""
    sink = MemorySink()
    tgt = target(runtime="containerd", created_ns=T0, started_ns=None, name=None)
    extract_lifecycle(tgt, sink, init_start_ns=None)
    extract_custody(custody(("capture.started", T0 + NS)), sink)
    rows = sink.events()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (int(Source.RUNTIME), int(Kind.CONTAINER_CREATED), T0),
        (int(Source.CUSTODY), int(Kind.CAPTURE_ACTION), T0 + NS),
    ]
    assert rows[0][5] == "container:web"  # no name: the container id
    assert sink.files() == []
    extract_lifecycle("not an object", sink, None)
    assert sink.counts["record_malformed"] == 1


def test_entities_without_words_are_matched_exactly(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path / "b.exv",
        fs=[fs_entry("/", T0, T0, T0), fs_entry("/-", T0, T0, T0), fs_entry("/x", T0, T0, T0)],
    )
    tl = open_timeline(bundle, cache_dir=tmp_path / "c")
    assert [e.entity for e in tl.events(Query(entity="/"))] == ["/"]
    assert [e.entity for e in tl.events(Query(entity="/-"))] == ["/-"]
    assert {e.entity for e in tl.events(Query(entity="/*", sources=("fs",)))} == {"/", "/-", "/x"}
    assert tl.count(Query(entity="/x*")) == 1
