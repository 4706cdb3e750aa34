"""Process records (``artifacts/processes.jsonl``) into ``process.started`` events.

Each event names the process, its pids (host and namespace), its parent (pid
and name), its user (uid, and the name from the target's /etc/passwd when the
bundle holds a copy) and its command line.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from forensics.timeline.bundleio import MemberStream
from forensics.timeline.events import Flag, Kind, Source
from forensics.timeline.fs import _int, kind_records
from forensics.timeline.sink import Sink

_SOURCE = int(Source.PROC)
_KIND = int(Kind.PROCESS_STARTED)
MAX_CMDLINE = 4096


def parse_passwd(data: bytes | None) -> dict[int, str]:
    """uid -> name from an /etc/passwd (or /etc/group) file's bytes."""
    out: dict[int, str] = {}
    if not data:
        return out
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit() and parts[0] and not line.startswith("#"):
            out.setdefault(int(parts[2]), parts[0])
    return out


def _ids(value: Any) -> tuple[int | None, int | None]:
    """(real, effective) from a {real, effective, ...} mapping or a plain integer."""
    if isinstance(value, dict):
        return _int(value.get("real")), _int(value.get("effective"))
    v = _int(value)
    return v, v


def _who(uid: int | None, users: dict[int, str]) -> str:
    if uid is None:
        return "?"
    name = users.get(uid)
    return f"{uid}({name})" if name else str(uid)


def cmdline_text(cmd: Any) -> str:
    if isinstance(cmd, list):
        text = " ".join(shlex.quote(str(a)) if a != "" else "''" for a in cmd)
    elif isinstance(cmd, str):
        text = cmd
    else:
        text = ""
    return text if len(text) <= MAX_CMDLINE else text[:MAX_CMDLINE] + "…"


def extract_processes(
    stream: MemberStream, sink: Sink, users: dict[int, str], groups: dict[int, str]
) -> dict[int, int]:
    """Emit one event per process with a start time; returns host pid -> start ns."""
    name = stream.name
    mid = sink.member(name)
    procs: list[tuple[int, dict[str, Any]]] = []
    for lineno, rec in kind_records(stream, sink, "process"):
        keep = [
            "pid",
            "nspid",
            "ppid",
            "nsppid",
            "name",
            "cmdline",
            "exe",
            "exe_deleted",
            "exe_memfd",
            "uid",
            "gid",
            "start_ns",
            "environ_redacted",
            "cwd",
            "kernel_thread",
        ]
        procs.append((lineno, {k: rec.get(k) for k in keep}))
    names = {
        p["pid"]: str(p.get("name") or "?") for _, p in procs if _int(p.get("pid")) is not None
    }
    starts: dict[int, int] = {}
    for lineno, p in procs:
        pid = _int(p.get("pid"))
        start = _int(p.get("start_ns"))
        if pid is None:
            sink.problem("record_malformed", name, lineno, "process without a pid")
            continue
        if start is None:
            sink.problem("no_time", name, lineno, f"pid {pid}: no start time")
            continue
        starts[pid] = start
        ppid = _int(p.get("ppid"))
        uid, euid = _ids(p.get("uid"))
        gid, egid = _ids(p.get("gid"))
        pname = str(p.get("name") or "?")
        cmd = cmdline_text(p.get("cmdline"))
        exe = p.get("exe") if isinstance(p.get("exe"), str) else None
        flags = 0
        notes = []
        if p.get("exe_memfd") is True:
            notes.append(f"runs from a memfd: {exe}")
            flags |= Flag.DELETED
        elif p.get("exe_deleted") is True:
            notes.append(f"runs a deleted executable: {exe}")
            flags |= Flag.DELETED
        redacted = p.get("environ_redacted")
        if isinstance(redacted, list) and redacted:
            flags |= Flag.REDACTED
        parent = names.get(ppid, "?") if ppid is not None else "?"
        nspid = _int(p.get("nspid"))
        user = _who(uid, users) + (f" euid {_who(euid, users)}" if euid != uid else "")
        msg = (
            f"process {pname} started: pid {pid}"
            + (f" (ns {nspid})" if nspid is not None and nspid != pid else "")
            + f", parent {ppid} ({parent}), user {user}: {cmd}"
            + (f" [{'; '.join(notes)}]" if notes else "")
        )
        attrs = {
            "pid": pid,
            "nspid": nspid,
            "ppid": ppid,
            "nsppid": _int(p.get("nsppid")),
            "name": pname,
            "parent_name": parent,
            "cmdline": p.get("cmdline") if isinstance(p.get("cmdline"), list) else cmd,
            "exe": exe,
            "uid": uid,
            "euid": euid,
            "user": users.get(uid) if uid is not None else None,
            "gid": gid,
            "egid": egid,
            "group": groups.get(gid) if gid is not None else None,
            "cwd": p.get("cwd") if isinstance(p.get("cwd"), str) else None,
        }
        if isinstance(redacted, list) and redacted:
            attrs["environ_redacted"] = [str(x) for x in redacted]
        sink.event(
            (
                _SOURCE,
                _KIND,
                start,
                None,
                int(flags),
                f"pid:{pid}",
                msg,
                mid,
                lineno,
                json.dumps({k: v for k, v in attrs.items() if v is not None}, ensure_ascii=False),
            )
        )
    return starts
