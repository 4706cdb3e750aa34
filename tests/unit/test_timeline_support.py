"""Bundles for the timeline tests, written by the real BundleWriter in capture order.

Other timeline tests import the builders from here
(``from tests.unit.test_timeline_support import ...``); the tests in this file
check that what the builders write is a bundle exuvia itself accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forensics.bundle import BundleWriter, verify_bundle
from forensics.bundle.format import file_member_name

NS = 1_000_000_000
T0 = 1_795_449_300 * NS  # 2026-11-23T15:55:00Z
ACQ_END = T0 + 3600 * NS


def fs_entry(
    path: str,
    m: int | None,
    a: int | None,
    c: int | None,
    b: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "kind": "fs_entry",
        "path": path,
        "type": "file",
        "mode": "0644",
        "uid": 0,
        "gid": 0,
        "size": 10,
        "inode": 1000 + len(path),
        "nlink": 1,
        "mtime_ns": m,
        "atime_ns": a,
        "ctime_ns": c,
        "btime_ns": b,
        "changed": False,
    }
    rec.update(extra)
    return rec


def process(pid: int, ppid: int, name: str, start_ns: int | None, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "kind": "process",
        "pid": pid,
        "nspid": pid - 4930 if pid > 4930 else pid,
        "ppid": ppid,
        "name": name,
        "cmdline": [f"/app/{name}", "--flag"],
        "exe": f"/app/{name}",
        "exe_deleted": False,
        "exe_memfd": False,
        "uid": {"real": 1000, "effective": 1000},
        "gid": {"real": 1000, "effective": 1000},
        "start_ns": start_ns,
        "environ_redacted": [],
    }
    rec.update(extra)
    return rec


def target(**extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "uri": "runc://web",
        "runtime": "runc",
        "pid": 4931,
        "container_id": "web",
        "name": "web",
        "image": "example/web:1",
        "created_ns": T0 - 10 * NS,
        "started_ns": None,
        "status": "running",
        "log_paths": ["/run/web/stdio.log"],
        "log_format": "raw",
        "runtime_facts": {},
    }
    rec.update(extra)
    return rec


def jsonl(records: Iterable[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def custody(*actions: tuple[str, int]) -> bytes:
    return jsonl(
        {
            "seq": i,
            "ts_ns": ts,
            "ts": "",
            "action": action,
            "examiner": "alice",
            "host": "lab",
            "details": {"n": i},
        }
        for i, (action, ts) in enumerate(actions, 1)
    )


def make_bundle(
    path: Path,
    *,
    tgt: dict[str, Any] | None = None,
    processes: list[dict[str, Any]] | None = None,
    fs: list[dict[str, Any]] | bytes | None = None,
    files: dict[str, bytes] | None = None,
    runtime_logs: list[tuple[str, bytes]] | None = None,
    target_logs: dict[str, bytes] | None = None,
    custody_log: bytes | None = None,
    manifest: bool = True,
    raw_members: list[tuple[str, bytes]] | None = None,
    compress: str = "zstd",
) -> Path:
    """A bundle with members in the order a capture writes them.

    ``runtime_logs``: (format, content) per runtime log (logs/runtime/NN-stdio.log);
    ``target_logs``: target path -> content (copied under files/, declared in logs.jsonl);
    ``files``: other copied files (target path -> content).
    """
    with path.open("wb") as raw:
        w = BundleWriter(raw, compress=compress)
        w.add_bytes("artifacts/target.json", json.dumps(tgt or target()).encode() + b"\n")
        w.add_bytes("artifacts/processes.jsonl", jsonl(processes or []))
        w.add_bytes("artifacts/network.jsonl", b"")
        for name, data in raw_members or []:
            w.add_bytes(name, data)
        sources: list[dict[str, Any]] = []
        for tpath, data in {**(files or {}), **(target_logs or {})}.items():
            w.add_bytes(file_member_name(tpath.encode()), data)
        fs_data = fs if isinstance(fs, bytes) else jsonl(fs or [])
        w.add_bytes("artifacts/filesystem.jsonl", fs_data)
        for n, (fmt, data) in enumerate(runtime_logs or [], 1):
            member = f"logs/runtime/{n:02d}-stdio.log"
            w.add_bytes(member, data)
            sources.append(
                {
                    "kind": "log_source",
                    "origin": "runtime",
                    "format": fmt,
                    "host_path": f"/run/web/{n}.log",
                    "member": member,
                    "mtime_ns": ACQ_END - NS,
                }
            )
        for tpath in target_logs or {}:
            sources.append(
                {
                    "kind": "log_source",
                    "origin": "target",
                    "path": tpath,
                    "member": file_member_name(tpath.encode()),
                }
            )
        w.add_bytes("artifacts/logs.jsonl", jsonl(sources))
        w.add_bytes("artifacts/skips.jsonl", b"")
        w.add_bytes("custody.jsonl", custody_log or custody(("capture.started", T0 + 5 * NS)))
        if manifest:
            w.finish(
                {
                    "acquisition": {"start_ns": T0, "end_ns": ACQ_END},
                    "complete": True,
                    "target": tgt or target(),
                }
            )
        else:
            w.checkpoint()
            w._sink.close()  # cut off before the manifest, as an interrupted capture
    return path


def test_builder_writes_a_bundle_that_verifies(tmp_path: Path) -> None:
    b = make_bundle(
        tmp_path / "b.exv",
        fs=[fs_entry("/etc/passwd", T0, T0, T0)],
        runtime_logs=[("cri", b"2026-11-23T15:55:00Z stdout F hi\n")],
        target_logs={"/var/log/app.log": b"line\n"},
    )
    report = verify_bundle(b)
    assert report.ok, report.failures()
    assert report.members_verified >= 9


def test_builder_can_cut_a_bundle_before_its_manifest(tmp_path: Path) -> None:
    b = make_bundle(tmp_path / "b.exv", manifest=False)
    report = verify_bundle(b)
    assert not report.has_manifest
    assert "cut off" in report.incomplete_reason
