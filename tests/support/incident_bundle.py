# ruff: noqa: E501 - the staged records read best one per line
"""A small, fully deterministic bundle of a staged incident, for the replay UI tests.

Written with the real :class:`~forensics.bundle.writer.BundleWriter`; the
writer's clock is pinned so the same bytes come out every time (snapshot
tests compare screens). It carries hostile strings on purpose: Rich markup,
terminal escape sequences, newlines and invalid UTF-8 in names, command lines
and log lines.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

from forensics.bundle import writer as writer_mod
from forensics.bundle.format import file_member_name
from forensics.bundle.writer import BundleWriter

NS = 1_000_000_000
T0 = 1_795_385_600 * NS  # 2026-11-22T22:13:20Z: the container starts
SEALED = T0 + 3600 * NS
MARKUP = "[bold red]PWNED[/bold red]"
#: markup that can be a file name (no "/")
NAME_MARKUP = "[bold red]PWNED[reverse]x"
ESCAPE = "\x1b]0;owned\x07\x1b[2J"
SECRET_LINE = "token=hunter2 rotated"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in rows)


def _fs(path: str, t: int, *, ftype: str = "file", size: int = 0, changed: bool = False,
        member: str | None = None, sha: str | None = None, mode: str = "0644") -> dict[str, Any]:  # fmt: skip
    rec: dict[str, Any] = {
        "kind": "fs_entry", "path": path, "type": ftype, "size": size, "mode": mode,
        "uid": 0, "gid": 0, "inode": zlib.crc32(path.encode()) % 100000, "nlink": 1, "dev": "0:39",
        "mtime_ns": t, "atime_ns": t, "ctime_ns": t, "btime_ns": t, "changed": changed,
    }  # fmt: skip
    if member:
        rec["member"] = member
    if sha:
        rec["sha256"] = sha
    return rec


def build(path: Path) -> Path:
    """Write the incident bundle to ``path`` (deterministic bytes)."""
    target = {
        "uri": "runc://web-1", "runtime": "runc", "pid": 4100, "container_id": "web-1",
        "name": "web-1", "image": "registry.local/web:1.4", "image_digest": None,
        "created_ns": T0 - NS, "started_ns": T0, "status": "running",
        "log_paths": ["/run/web-1/stdio.log"], "log_format": "raw", "runtime_facts": {},
    }  # fmt: skip
    procs = [
        {"kind": "process", "pid": 4100, "nspid": 1, "ppid": 4000, "nsppid": 0, "name": "server",
         "cmdline": ["/app/server", "--port=8080"], "exe": "/app/server", "cwd": "/",
         "uid": 0, "gid": 0, "start_ns": T0 + NS, "threads": 4, "rss_bytes": 8 << 20,
         "fds": [{"fd": 0, "target": "/dev/null"}, {"fd": 3, "target": "socket:[9001]"}],
         "maps": [{"path": "/app/server", "deleted": False}], "environ": ["PATH=/bin", "API_TOKEN=<redacted>"],
         "environ_redacted": ["API_TOKEN"]},
        {"kind": "process", "pid": 4107, "nspid": 7, "ppid": 4100, "nsppid": 1, "name": ".x",
         "cmdline": ["/tmp/.x", MARKUP, ESCAPE], "exe": "/tmp/.x (deleted)", "exe_deleted": True,
         "cwd": "/tmp", "uid": 0, "gid": 0, "start_ns": T0 + 600 * NS,
         "fds": [{"fd": 4, "target": "socket:[9002]"}], "maps": []},
        {"kind": "process", "pid": 4108, "nspid": 8, "ppid": 4100, "nsppid": 1, "name": "worker",
         "cmdline": ["worker", "--mode=worker"], "exe": "/app/server", "cwd": "/",
         "uid": 1000, "gid": 1000, "start_ns": T0 + 900 * NS, "fds": [], "maps": []},
    ]  # fmt: skip
    sockets = [
        {"kind": "socket", "family": "inet", "proto": "tcp", "state": "LISTEN", "local_addr": "0.0.0.0",
         "local_port": 8080, "remote_addr": "0.0.0.0", "remote_port": 0, "inode": 9001,
         "owners": [{"pid": 4100, "fd": 3, "name": "server"}]},
        {"kind": "socket", "family": "inet", "proto": "tcp", "state": "LISTEN", "local_addr": "0.0.0.0",
         "local_port": 4444, "remote_addr": "0.0.0.0", "remote_port": 0, "inode": 9002,
         "owners": [{"pid": 4107, "fd": 4, "name": ".x"}]},
    ]  # fmt: skip
    conf = b"listen = 8080\nbackdoor = 4444\n"
    blob = bytes(range(256))
    fs = [
        _fs("/", T0 - 86400 * NS, ftype="dir", mode="0755"),
        _fs("/app", T0 - 86400 * NS, ftype="dir", mode="0755"),
        _fs("/app/server", T0 - 86400 * NS, size=900_000, mode="0755", sha="ab" * 32),
        _fs("/etc", T0 - 86400 * NS, ftype="dir", mode="0755"),
        _fs("/etc/app.conf", T0 + 300 * NS, size=len(conf), changed=True,
            member=file_member_name(b"/etc/app.conf"), sha="cd" * 32),
        _fs("/tmp", T0 + 500 * NS, ftype="dir", mode="1777", changed=True),
        _fs("/tmp/.x", T0 + 590 * NS, ftype="whiteout", changed=True),
        _fs("/tmp/blob.bin", T0 + 700 * NS, size=256, changed=True,
            member=file_member_name(b"/tmp/blob.bin"), sha="ef" * 32),
        _fs(f"/tmp/{NAME_MARKUP}", T0 + 800 * NS, size=0, changed=True),
        _fs(f"/tmp/{ESCAPE}\nname", T0 + 810 * NS, size=0, changed=True),
    ]  # fmt: skip
    log_lines = [
        f"2026-11-22T22:13:{21 + i:02d}.000000000Z server: request {i} ok" for i in range(30)
    ]
    log_lines[10] = "2026-11-22T22:13:31.000000000Z server: reloading config (implant staged)"
    log_lines[12] = f"2026-11-22T22:13:33.000000000Z server: user said {MARKUP} {ESCAPE}"
    log_lines[14] = f"2026-11-22T22:13:35.000000000Z server: {SECRET_LINE}"
    log = ("\n".join(log_lines) + "\n").encode()
    log_source = {
        "kind": "log_source", "origin": "runtime", "format": "raw", "member": "logs/runtime/01-stdio.log",
        "host_path": "/run/web-1/stdio.log", "size": len(log),
    }  # fmt: skip
    custody = [
        {"seq": 1, "ts_ns": SEALED - 10 * NS, "ts": "2026-11-22T23:13:10.000000000Z",
         "action": "capture.started", "examiner": "alice", "host": "lab",
         "details": {"target": "runc://web-1", "case": "IR-7"}},
        {"seq": 2, "ts_ns": SEALED - NS, "ts": "2026-11-22T23:13:19.000000000Z",
         "action": "capture.sealed", "examiner": "alice", "host": "lab", "details": {}},
    ]  # fmt: skip
    skips = [{"collector": "filesystem", "subject": "/proc", "reason": "pseudo filesystem"}]
    tmp = path.with_name(path.name + ".partial")
    with (
        mock.patch.object(writer_mod, "now_ns", lambda: SEALED),
        mock.patch.object(writer_mod.time, "time", lambda: SEALED / NS),
        tmp.open("wb") as raw,
    ):
        w = BundleWriter(raw)
        w.add_bytes("artifacts/target.json", json.dumps(target, sort_keys=True).encode() + b"\n")
        w.add_bytes("artifacts/processes.jsonl", _jsonl(procs))
        w.add_bytes("artifacts/network.jsonl", _jsonl(sockets))
        w.add_bytes(file_member_name(b"/etc/app.conf"), conf)
        w.add_bytes(file_member_name(b"/tmp/blob.bin"), blob)
        w.add_bytes("artifacts/filesystem.jsonl", _jsonl(fs))
        w.add_bytes("logs/runtime/01-stdio.log", log)
        w.add_bytes("artifacts/logs.jsonl", _jsonl([log_source]))
        w.add_bytes("artifacts/skips.jsonl", _jsonl(skips))
        w.add_bytes("custody.jsonl", _jsonl(custody))
        w.finish({
            "case": "IR-7", "examiner": "alice", "complete": True, "incomplete_reason": "",
            "acquisition": {"start_ns": SEALED - 10 * NS, "end_ns": SEALED - NS},
            "target": target, "counts": {"processes": len(procs), "filesystem": len(fs)},
        })  # fmt: skip
    tmp.rename(path)
    return path
