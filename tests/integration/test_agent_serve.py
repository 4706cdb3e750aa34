"""`agent serve` end to end: the real agent as a subprocess, against a real shell-less
runc container, spoken to through the same client the pod dashboard uses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.fs.browse import TargetRoot
from collectors.live.remote import RemoteTarget, SubprocessTransport
from forensics.errors import ExuviaError, TargetGone
from tui.demo.rootfs import CHANGED_CONFIG, TARGET_PATH

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def agent_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "collectors.agent", "serve", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def remote(runc_target, tmp_path: Path) -> Iterator[RemoteTarget]:  # type: ignore[no-untyped-def]
    argv = agent_argv("--pid", str(runc_target.pid), "--state-dir", str(tmp_path / "state"))
    r = RemoteTarget(SubprocessTransport(argv, env()))
    yield r
    r.close()


def _read_noatime(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def test_hello_processes_sockets_match_the_local_collectors(remote, runc_target) -> None:  # type: ignore[no-untyped-def]
    h = remote.hello
    assert h["pid"] == runc_target.pid and h["protocol"] == 1
    assert remote.shell[0] is False, remote.shell  # the lab image has no shell
    assert "no sh, bash" in remote.shell[1]
    rows = remote.sample()
    assert rows[0].nspid == 1 and rows[0].pid == runc_target.pid
    assert any(TARGET_PATH in " ".join(r.cmdline) for r in rows)
    assert any(r.exe_deleted or r.exe_memfd for r in rows)  # the lab's implant
    again = remote.sample()
    assert all(r.cpu_percent is not None for r in again)  # the agent keeps the previous sample
    socks = remote.sockets()
    listen = [s for s in socks if s.state == "LISTEN" and s.local.endswith(":8080")]
    assert listen and listen[0].owners, socks


def test_files_list_read_hash_and_changed(remote, runc_target) -> None:  # type: ignore[no-untyped-def]
    local = TargetRoot(runc_target.pid)
    try:
        want = local.list_dir(b"/etc/app")
    finally:
        local.close()
    got = remote.root.list_dir(b"/etc/app")
    assert [(e.name, e.kind, e.st and e.st.size, e.changed) for e in got] == [
        (e.name, e.kind, e.st and e.st.size, e.changed) for e in want
    ]
    real = _read_noatime(f"/proc/{runc_target.pid}/root{CHANGED_CONFIG}")
    data, size = remote.root.read_head(CHANGED_CONFIG.encode(), 16 << 10)
    assert data == real and size == len(real)
    # a binary bigger than one chunk: fetched in chunks, byte for byte
    binary = _read_noatime(f"/proc/{runc_target.pid}/root{TARGET_PATH}")
    remote.root.max_chunk = 4096
    head, total = remote.root.read_head(TARGET_PATH.encode(), 10_000, offset=100)
    assert head == binary[100:10_100] and total == len(binary)
    digest, n = remote.root.sha256(TARGET_PATH.encode())
    assert (digest, n) == (hashlib.sha256(binary).hexdigest(), len(binary))
    changed = {c.path: c.kind for c in remote.root.changed()}
    assert changed.get(CHANGED_CONFIG.encode()) == "file", changed
    links = [e for e in remote.root.list_dir(b"/") if e.kind == "symlink"]
    for link in links:  # listed with their target, never followed
        assert link.link_target is not None


def test_a_long_listing_is_cut_visibly(runc_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    argv = agent_argv("--pid", str(runc_target.pid), "--state-dir", str(tmp_path / "s"),
                      "--max-entries", "2")  # fmt: skip
    r = RemoteTarget(SubprocessTransport(argv, env()))
    try:
        full = os.listdir(f"/proc/{runc_target.pid}/root/etc")
        got = r.root.list_dir(b"/etc")
    finally:
        r.close()
    assert len(full) > 2 and len(got) == 3
    assert got[-1].st is None and got[-1].error == "not listed"
    assert got[-1].name == f"… {len(full) - 2} more entries not listed".encode()


def test_errors_are_responses_not_tracebacks(remote) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ExuviaError, match=r"'\.\.'"):
        remote.root.list_dir(b"/etc/../..")
    with pytest.raises(ExuviaError, match="is a dir"):
        remote.root.sha256(b"/etc")
    with pytest.raises(ExuviaError, match="No such file"):
        remote.root.read_head(b"/nope/nothing")
    with pytest.raises(ExuviaError, match="unknown op"):
        remote.link.call("rm_rf")
    with pytest.raises(ExuviaError, match="integer"):
        remote.link.call("read", path="/etc/passwd", length=1 << 30)
    with pytest.raises(ExuviaError, match="without NUL"):
        remote.root.sha256(b"/etc/passwd\0x")
    assert remote.sample()  # still serving after the errors
    stats = remote.stats()["requests"]
    assert stats["processes"] >= 1 and stats["hello"] == 1


def _raw(argv: list[str], stdin: bytes, timeout: float = 30) -> tuple[list[dict], str, int]:  # type: ignore[type-arg]
    p = subprocess.run(
        argv, check=False, input=stdin, capture_output=True, timeout=timeout, env=env()
    )
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    return lines, p.stderr.decode(), p.returncode


def test_raw_protocol_bad_lines_eof_and_bye(runc_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    argv = agent_argv("--pid", str(runc_target.pid), "--state-dir", str(state))
    reqs = (
        b"not json\n"
        + b'{"id": 1, "op": "read", "path": "/etc/app/'
        + b"x" * (70 << 10)
        + b'"}\n'
        + b"[1, 2]\n"
        + b'{"id": 2, "op": "list_dir", "path": "/etc"}\n'
        + b'{"id": 3, "op": "bye"}\n'
        + b'{"id": 4, "op": "list_dir", "path": "/"}\n'
    )
    lines, err, rc = _raw(argv, reqs)
    assert rc == 0 and "Traceback" not in err
    assert lines[0]["ok"] is False and "not JSON" in lines[0]["error"]["message"]
    assert lines[1]["ok"] is False and "longer than" in lines[1]["error"]["message"]
    assert lines[2]["ok"] is False and "JSON object" in lines[2]["error"]["message"]
    assert lines[3]["id"] == 2 and lines[3]["ok"]
    assert lines[4]["id"] == 3 and lines[4]["result"]["requests"]["list_dir"] == 1
    assert len(lines) == 5  # nothing answered after bye
    assert '"reason": "bye"' in err
    assert not list(state.glob("serve.*")) and (state / "done").exists()


def test_exits_on_eof_and_on_idle(runc_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    argv = agent_argv("--pid", str(runc_target.pid), "--state-dir", str(tmp_path / "s"))
    lines, err, rc = _raw(argv, b'{"id": 1, "op": "hello"}\n')
    assert rc == 0 and lines[0]["ok"] and '"reason": "stdin closed"' in err
    p = subprocess.Popen([*argv, "--idle", "0.5"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())  # fmt: skip
    try:
        rc = p.wait(timeout=20)  # stdin stays open: only the idle timeout ends it
        err = p.stderr.read().decode() if p.stderr else ""
    finally:
        if p.poll() is None:
            p.kill()
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                f.close()
    assert rc == 0 and "no request for 0.5s" in err


def test_a_target_that_is_not_there_is_one_json_error(tmp_path: Path) -> None:
    gone = 1
    while os.path.exists(f"/proc/{gone}"):
        gone += 7919
    argv = agent_argv("--pid", str(gone), "--state-dir", str(tmp_path / "s"))
    lines, err, rc = _raw(argv, b"")
    assert rc == 2 and "Traceback" not in err
    assert lines == [lines[0]] and lines[0]["ok"] is False and lines[0]["id"] is None
    assert lines[0]["error"]["kind"] == "gone", lines
    with pytest.raises(TargetGone):
        RemoteTarget(SubprocessTransport(argv, env()))


def test_wait_counts_a_serving_agent_as_busy(runc_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from collectors.agent import _live_captures  # noqa: PLC0415

    state = tmp_path / "state"
    argv = agent_argv("--pid", str(runc_target.pid), "--state-dir", str(state))
    r = RemoteTarget(SubprocessTransport(argv, env()))
    try:
        assert r.hello["agent_pid"] in _live_captures(state)
    finally:
        r.close()
    t0 = time.monotonic()
    while _live_captures(state) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not _live_captures(state)


HOSTILE = [b"bad-\xff\xfe-utf8", b"two\nlines", b"\x1b[2J\x1b[31mred", b"[bold red]x", b"a" * 255]


def test_hostile_names_round_trip_and_symlinks_are_not_followed(remote, runc_target) -> None:  # type: ignore[no-untyped-def]
    base = f"/proc/{runc_target.pid}/root/hostile-{os.getpid()}".encode()
    os.mkdir(base)
    for name in HOSTILE:
        (Path(os.fsdecode(base)) / os.fsdecode(name)).write_bytes(name)
    os.symlink(b"/etc", base + b"/abs-dir")
    os.symlink(b"../../../../../../etc/hostname", base + b"/up-file")
    inside = base[base.index(b"/hostile-") :]
    got = {e.name: e for e in remote.root.list_dir(inside)}
    assert set(got) == {*HOSTILE, b"abs-dir", b"up-file"}
    for name in HOSTILE:
        data, size = remote.root.read_head(inside + b"/" + name)
        assert data == name and size == len(name)
    assert got[b"abs-dir"].link_target == b"/etc" and got[b"abs-dir"].kind == "symlink"
    with pytest.raises(ExuviaError, match="symlink"):
        remote.root.read_head(inside + b"/up-file")  # never followed, not even inside
    with pytest.raises(ExuviaError):
        remote.root.list_dir(inside + b"/abs-dir")  # a symlinked directory is not entered
    with pytest.raises(ExuviaError, match="symlink"):
        remote.root.sha256(inside + b"/up-file")
