"""Golden reference: sleuthkit's real `mactime` reads exuvia's bodyfile and lists the
same filesystem events as exuvia's own timeline, for a real capture and for
hostile file names."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.timeline import Query, open_timeline, write_export
from forensics.timeline.query import Timeline
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle
from tui.demo.launch import LabContainer

MACTIME = shutil.which("mactime")
pytestmark = pytest.mark.skipif(MACTIME is None, reason="mactime (sleuthkit) is not installed")

Key = tuple[int, int, bytes]  # (second, inode, name as mactime prints it)


def mactime_events(body: Path) -> dict[Key, str]:
    """(second, inode, name) -> MACB letters, as mactime -y -d lists them (UTC)."""
    assert MACTIME is not None
    out = subprocess.run(
        [MACTIME, "-b", str(body), "-y", "-d", "-z", "UTC"],
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC"},
    ).stdout
    lines = out.split(b"\n")
    assert lines[0] == b"Date,Size,Type,Mode,UID,GID,Meta,File Name"
    events: dict[Key, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        date, _size, letters, _mode, _uid, _gid, meta, name = line.split(b",", 7)
        assert name.startswith(b'"') and name.endswith(b'"')
        if date == b"0000-00-00T00:00:00Z":
            sec = 0
        else:
            sec = int(datetime.fromisoformat(date.decode().replace("Z", "+00:00")).timestamp())
        events[(sec, int(meta), name[1:-1].replace(b'""', b'"'))] = letters.decode()
    return events


def shown_name(path_bytes: bytes, link: str | None) -> bytes:
    """How mactime prints a name exuvia wrote: control characters as \\xNN, the rest as is."""
    out = bytearray()
    for b in path_bytes:
        out += f"\\x{b:02x}".encode() if b < 0x20 or b == 0x7F else bytes([b])
    if link:
        out += b" -> " + link.encode()
    return bytes(out)


def exuvia_events(tl: Timeline) -> dict[Key, str]:
    """exuvia's own filesystem events, merged per whole second as mactime does."""
    letters: dict[Key, set[str]] = defaultdict(set)
    for ev in tl.iter_events(Query(sources=("fs",))):
        raw = ev.attrs.get("path_b64")
        path = base64.b64decode(raw) if raw else ev.entity.encode()
        link = ev.attrs.get("link_target") if ev.attrs.get("type") == "symlink" else None
        key = (ev.ts // NS, int(ev.attrs.get("inode") or 0), shown_name(path, link))
        letters[key].update(c for c in ev.macb if c != ".")
    return {k: "".join(c if c in v else "." for c in "macb") for k, v in letters.items()}


def compare(tl: Timeline, body: Path) -> tuple[dict[Key, str], dict[Key, str]]:
    n = write_export(tl, Query(sources=("fs",)), "bodyfile", body)
    assert n == len(body.read_bytes().splitlines())
    theirs = mactime_events(body)
    ours = exuvia_events(tl)
    # a bodyfile writes 0 for a time an entry does not have; mactime lists those at
    # 0000-00-00: they are no events (exuvia makes none)
    theirs_real = {k: v for k, v in theirs.items() if k[0] != 0}
    assert not [k for k in ours if k[0] == 0], "an entry has a real time at the epoch"
    return theirs_real, ours


@pytest.fixture(scope="module")
def real_bundle(runc_target: LabContainer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tl") / "capture.exv"
    res = capture(
        resolve(runc_target.uri), CaptureOptions(output=out, examiner="tester", case="TL")
    )
    assert res.complete, res.incomplete_reason
    return out


def test_mactime_lists_the_same_events_for_a_real_capture(
    real_bundle: Path, tmp_path: Path
) -> None:
    tl = open_timeline(real_bundle, cache_dir=tmp_path / "cache")
    theirs, ours = compare(tl, tmp_path / "capture.body")
    assert len(ours) >= 20
    assert theirs == ours
    # the incident is in both: the file written after start and the changed config
    names = {k[2] for k in ours}
    assert b"/tmp/after-start.txt" in names
    assert b"/etc/app/app.conf" in names
    # the rest of the timeline is there too: processes, logs, the capture itself
    sources = tl.meta["by_source"]
    assert {"fs", "proc", "log", "runtime", "custody"} <= set(sources)
    assert tl.count(Query(text="implant", sources=("proc",))) == 1
    assert tl.count(Query(kinds=("container.started",))) == 1


def test_mactime_agrees_on_hostile_names_and_odd_times(tmp_path: Path) -> None:
    weird = [
        fs_entry("/with|pipe", T0, T0, T0, inode=11),
        fs_entry('/100% sure, "quoted"', T0 + 1, T0 + 2, T0 + NS, inode=12),
        fs_entry("/new\nline\ttab", T0 - NS, T0, T0 + 5 * NS, T0 - NS, inode=13),
        fs_entry("/caf\u00e9 \u2603", T0, T0 + 3 * NS, T0 + 3 * NS, T0, inode=14),
        fs_entry(
            "/raw\ufffd",
            T0,
            T0,
            T0,
            inode=15,
            path_b64=base64.b64encode(b"/raw\xff").decode(),
        ),
        fs_entry("/link", T0, T0, T0, inode=16, type="symlink", link_target="/etc/passwd"),
        fs_entry("/old", 1_000_000_000 * NS, 1_000_000_000 * NS + 7, 1_000_000_001 * NS, inode=17),
        fs_entry("/gone", T0 + 9 * NS, None, T0 + 9 * NS, None, type="whiteout", inode=18),
    ]
    bundle = make_bundle(tmp_path / "w.exv", fs=weird)
    tl = open_timeline(bundle, cache_dir=tmp_path / "cache")
    theirs, ours = compare(tl, tmp_path / "w.body")
    assert theirs == ours
    assert ours[(T0 // NS, 15, b"/raw\xff")] == "mac."  # the exact bytes, not U+FFFD
    assert ours[(T0 // NS, 11, b"/with|pipe")] == "mac."
    assert ours[(T0 // NS, 16, b"/link -> /etc/passwd")] == "mac."
    assert ours[(T0 // NS, 14, "/caf\u00e9 \u2603".encode())] == "m..b"
    assert ours[(1_000_000_000, 17, b"/old")] == "ma.."  # same second, 7 ns apart
    assert ours[(T0 // NS + 5, 13, b"/new\\x0aline\\x09tab")] == "..c."
