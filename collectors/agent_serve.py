"""``agent serve``: answer live triage requests about the target, one JSON line each.

The in-pod half of the triage dashboard for pods (docs/triage.md, docs/kubernetes.md).
It runs in the same ephemeral agent container as a capture (sharing the target's
PID namespace), or locally with ``--pid``, and answers with the very collectors
the local dashboard uses: collectors.live.processes (process samples, CPU from
the previous sample kept here), collectors.fs.browse (list a directory, read a
bounded chunk of a file, SHA-256 on demand, changed since start), collectors.live
.sockets and collectors.fs.shellcheck. Everything is read-only and confined to
the target's root exactly as locally (every path component opened O_NOFOLLOW).

Protocol (version 1), UTF-8 JSON, one object per line:

* request  ``{"id": 7, "op": "list_dir", "path": "/etc"}``
* response ``{"id": 7, "ok": true, "result": {...}}`` or
  ``{"id": 7, "ok": false, "error": {"kind": "...", "message": "..."}}``

Paths are strings; bytes that are not UTF-8 travel as lone surrogates
(``os.fsdecode``), so any name round-trips. File content travels base64 in
``read`` results, at most ``MAX_CHUNK`` bytes per request (the client asks for
the next offset). Requests longer than ``MAX_LINE`` are refused, not buffered.

Ops: ``hello`` (the target, the read-only view, whether its image has a shell),
``processes``, ``list_dir``, ``changed``, ``read``, ``sha256``, ``sockets``,
``stats`` (requests served so far), ``bye``. The process exits on EOF of stdin,
on ``bye``, or after ``idle`` seconds without a request; while it runs, a marker
in the agent's state directory keeps the container's ``wait`` process alive.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import select
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from collectors.context import CollectContext
from collectors.fs.browse import TargetRoot
from collectors.fs.shellcheck import shell_in
from collectors.live.processes import ProcessSampler
from collectors.live.sockets import sample_sockets
from collectors.targets.pid import process_start_ns
from forensics import __version__
from forensics.errors import AccessDenied, ExuviaError, TargetGone

PROTOCOL = 1
MAX_CHUNK = 256 << 10
MAX_LINE = 64 << 10
MAX_CHANGED = 10_000
MAX_ENTRIES = 20_000  # of one directory listing; the rest is counted, not sent
DEFAULT_IDLE = 600.0

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class RequestError(Exception):
    """A request that cannot be answered as asked (bad op, bad argument)."""


def fields(obj: Any) -> dict[str, Any]:
    """A row as a dict, whether it is a dataclass or a NamedTuple (Stat is one)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    as_dict = getattr(obj, "_asdict", None)
    if as_dict is None:
        raise TypeError(f"cannot send a {type(obj).__name__}")
    return dict(as_dict())


def fs(path: bytes | None) -> str | None:
    return None if path is None else os.fsdecode(path)


def _path(req: dict[str, Any], key: str = "path") -> bytes:
    value = req.get(key)
    if not isinstance(value, str) or not value or "\0" in value:
        raise RequestError(f"'{key}' must be a non-empty string without NUL")
    return os.fsencode(value)


def _int(req: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = req.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise RequestError(f"'{key}' must be an integer from {lo} to {hi}")
    return value


class Server:
    """The target's live views, opened once; ``handle`` answers one request."""

    def __init__(
        self,
        procfs: str,
        pid: int,
        found_by: str,
        members: tuple[int, ...],
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.procfs = procfs
        self.max_entries = max_entries
        self.pid = pid
        self.found_by = found_by
        self.members = members
        self.ctx = CollectContext(pid=pid, procfs=procfs)
        self.sampler = ProcessSampler(self.ctx)
        self.root = TargetRoot(pid, procfs)
        self.counts: Counter[str] = Counter()
        self.started_ns = time.time_ns()
        self.ops: dict[str, Handler] = {
            "hello": self.hello,
            "processes": self.processes,
            "list_dir": self.list_dir,
            "changed": self.changed,
            "read": self.read,
            "sha256": self.sha256,
            "sockets": self.sockets,
            "stats": self.stats,
        }

    def close(self) -> None:
        self.root.close()

    def handle(self, req: Any) -> dict[str, Any]:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict):
                raise RequestError("a request is a JSON object")
            op = req.get("op")
            handler = self.ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise RequestError(f"unknown op {op!r} (known: {', '.join(sorted(self.ops))})")
            result = handler(req)
            self.counts[str(op)] += 1
            return {"id": rid, "ok": True, "result": result}
        except RequestError as err:
            return error(rid, "request", str(err))
        except TargetGone as err:
            return error(rid, "gone", str(err))
        except AccessDenied as err:
            return error(rid, "access", str(err))
        except ExuviaError as err:
            return error(rid, "target", str(err))
        except OSError as err:
            return error(rid, "os", f"{err.strerror or err}")
        except Exception as err:  # noqa: BLE001 - a response, never a traceback
            return error(rid, "internal", f"{type(err).__name__}: {err}")

    # -- ops ---------------------------------------------------------------------
    def hello(self, _req: dict[str, Any]) -> dict[str, Any]:
        present, where = shell_in(self.procfs, self.pid)
        return {
            "protocol": PROTOCOL,
            "version": __version__,
            "agent_pid": os.getpid(),
            "pid": self.pid,
            "found_by": self.found_by,
            "members": list(self.members),
            "started_ns": process_start_ns(self.pid, self.procfs),
            "view_note": self.root.view_note,
            "upper_note": self.root.upper_note,
            "changed_known": self.root.upper_fd is not None,
            "shell": {"present": present, "where": where},
            "max_chunk": MAX_CHUNK,
        }

    def processes(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"rows": [fields(r) for r in self.sampler.sample()]}

    def list_dir(self, req: dict[str, Any]) -> dict[str, Any]:
        rows = []
        entries = self.root.list_dir(_path(req))
        for e in entries[: self.max_entries]:
            rows.append(
                {
                    "path": fs(e.path),
                    "name": fs(e.name),
                    "st": None if e.st is None else fields(e.st),
                    "link_target": fs(e.link_target),
                    "changed": e.changed,
                    "error": e.error,
                }
            )
        return {"entries": rows, "not_listed": max(len(entries) - self.max_entries, 0)}

    def changed(self, req: dict[str, Any]) -> dict[str, Any]:
        limit = _int(req, "limit", MAX_CHANGED, 1, MAX_CHANGED)
        rows = [
            {"path": fs(c.path), "kind": c.kind, "size": c.size, "mtime_ns": c.mtime_ns}
            for c in self.root.changed(limit)
        ]
        return {"entries": rows, "note": self.root.upper_note}

    def read(self, req: dict[str, Any]) -> dict[str, Any]:
        path = _path(req)
        offset = _int(req, "offset", 0, 0, 1 << 62)
        length = _int(req, "length", MAX_CHUNK, 0, MAX_CHUNK)
        data, size = self.root.read_head(path, length, offset)
        return {"data": base64.b64encode(data).decode("ascii"), "size": size, "offset": offset}

    def sha256(self, req: dict[str, Any]) -> dict[str, Any]:
        digest, n = self.root.sha256(_path(req))
        return {"sha256": digest, "bytes": n}

    def sockets(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"rows": [fields(s) for s in sample_sockets(self.ctx)]}

    def stats(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"requests": dict(self.counts), "started_ns": self.started_ns}


def error(rid: Any, kind: str, message: str) -> dict[str, Any]:
    return {"id": rid, "ok": False, "error": {"kind": kind, "message": message}}


TOO_LONG = b"\x00too long"  # never a real line: requests are JSON text


class LineReader:
    """Lines from a file descriptor, each at most ``limit`` bytes, with a timeout."""

    def __init__(self, fd: int, limit: int = MAX_LINE) -> None:
        self.fd = fd
        self.limit = limit
        self.buf = bytearray()
        self.discarding = False
        self.eof = False

    def next(self, timeout: float) -> bytes | None:
        """The next line (without newline), TOO_LONG for an over-long one (skipped,
        never held whole in memory), None on EOF or timeout (``eof`` tells which)."""
        deadline = time.monotonic() + timeout
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                if self.discarding or len(line) > self.limit:
                    self.discarding = False
                    return TOO_LONG
                return line
            if len(self.buf) > self.limit:
                self.buf.clear()
                self.discarding = True
            if self.eof:
                if self.buf and not self.discarding:
                    line = bytes(self.buf)
                    self.buf.clear()
                    return line
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            self.buf += chunk


def write_line(out: BinaryIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n")
    out.flush()


def serve_loop(server: Server, inp: int, out: BinaryIO, idle: float) -> str:
    """Answer requests until EOF, ``bye`` or ``idle`` seconds of silence; why it ended."""
    reader = LineReader(inp)
    while True:
        line = reader.next(idle)
        if line is None:
            return "stdin closed" if reader.eof else f"no request for {idle:g}s"
        if line is TOO_LONG:
            write_line(out, error(None, "request", f"request longer than {MAX_LINE} bytes"))
            continue
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError as err:
            write_line(out, error(None, "request", f"not JSON: {err}"))
            continue
        if isinstance(req, dict) and req.get("op") == "bye":
            write_line(out, {"id": req.get("id"), "ok": True, "result": server.stats({})})
            return "bye"
        write_line(out, server.handle(req))


def mark_busy(state_dir: str) -> Path | None:
    """A ``serve.<pid>`` marker: the container's ``wait`` stays while it exists."""
    marker = Path(state_dir) / f"serve.{os.getpid()}"
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        return None
    return marker


def unmark(marker: Path | None) -> None:
    if marker is None:
        return
    with contextlib.suppress(OSError):
        marker.unlink()
    with contextlib.suppress(OSError):
        (marker.parent / "done").touch()


def run_serve(
    server_for: Callable[[], Server],
    state_dir: str,
    idle: float,
    emit: Callable[..., None],
) -> int:
    """Open the target, answer until done; 0 on a clean end, 2 when the target
    cannot be opened (the error is also written as a JSON response line)."""
    out = sys.stdout.buffer
    marker = mark_busy(state_dir)
    try:
        try:
            server = server_for()
        except (ExuviaError, OSError, ValueError) as err:
            kind = "target"
            if isinstance(err, AccessDenied):
                kind = "access"
            elif isinstance(err, TargetGone):
                kind = "gone"
            with contextlib.suppress(OSError):
                write_line(out, error(None, kind, str(err)))
            emit("error", kind=kind, message=str(err))
            return 2
        emit("serving", pid=server.pid, how=server.found_by, agent_pid=os.getpid(), idle=idle)
        try:
            why = serve_loop(server, sys.stdin.fileno(), out, idle)
        except (BrokenPipeError, ConnectionResetError):
            why = "the client went away"
        finally:
            server.close()
        emit("exit", reason=why, requests=dict(server.counts))
        return 0
    finally:
        unmark(marker)
