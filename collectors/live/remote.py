"""The client side of ``agent serve``: the live views of a target the agent can see.

:class:`RemoteTarget` answers with the same row types the local collectors
return (ProcRow, SocketRow, DirEntry, ChangedEntry), so the triage dashboard's
widgets show a pod exactly like a local container. Its root
(:class:`RemoteRoot`) has the surface of collectors.fs.browse.TargetRoot that
the dashboard uses. The bytes travel over a :class:`Transport`: a local
subprocess (:class:`SubprocessTransport`, tests and local use) or the pod's
exec stream (collectors.k8s.livepod).

Requests are answered one at a time (a lock): a hash of a big file delays the
next process sample until it is done. Failures come out as the project's
errors: ``gone`` -> TargetGone, ``access`` -> AccessDenied, anything else,
including a broken or silent transport, -> ExuviaError.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from collectors.fs.browse import ChangedEntry, DirEntry
from collectors.fs.statx import Stat
from collectors.live.processes import ProcRow
from collectors.live.sockets import SocketRow
from forensics.errors import AccessDenied, ExuviaError, TargetGone

MAX_RESPONSE = 64 << 20  # a process list or a big directory, never unbounded


class Transport(Protocol):
    def send(self, data: bytes) -> None: ...

    def recv(self) -> bytes:
        """The next bytes of the agent's stdout; b"" when it has ended."""
        ...

    def close(self) -> None: ...

    def diagnostics(self) -> str:
        """What the agent said on stderr (its JSON events), for error messages."""
        ...


class SubprocessTransport:
    """``agent serve`` as a local child process (pipes)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as err:
            raise ExuviaError(f"cannot start the agent: {err.strerror}") from err
        self._err = bytearray()
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if len(self._err) < 1 << 20:
                self._err += line

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise ExuviaError(f"the agent went away ({err})") from err

    def recv(self) -> bytes:
        assert self.proc.stdout is not None
        return os.read(self.proc.stdout.fileno(), 1 << 16)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self._t.join(timeout=2)

    def diagnostics(self) -> str:
        return bytes(self._err).decode("utf-8", "replace").strip()


def raise_for(err: dict[str, Any]) -> None:
    kind = str(err.get("kind") or "error")
    msg = str(err.get("message") or "the agent failed")
    if kind == "gone":
        raise TargetGone(msg)
    if kind == "access":
        raise AccessDenied(msg)
    raise ExuviaError(f"agent: {msg}" if kind in ("internal", "request") else msg)


class AgentLink:
    """Numbered requests and their responses over a transport."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._next = 0
        self.closed = False
        self.sent: Counter[str] = Counter()

    def _line(self) -> bytes:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            if len(self._buf) > MAX_RESPONSE:
                raise ExuviaError(f"agent response longer than {MAX_RESPONSE} bytes")
            chunk = self.t.recv()
            if not chunk:
                self.closed = True
                said = self.t.diagnostics()
                raise ExuviaError(
                    "the agent ended" + (f": {said.splitlines()[-1]}" if said else "")
                )
            self._buf += chunk

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        with self._lock:
            if self.closed:
                raise ExuviaError("the agent connection is closed")
            self._next += 1
            rid = self._next
            self.t.send(json.dumps({"id": rid, "op": op, **args}).encode() + b"\n")
            self.sent[op] += 1
            while True:
                try:
                    resp = json.loads(self._line())
                except ValueError as err:
                    raise ExuviaError(f"agent sent something that is not JSON: {err}") from err
                if not isinstance(resp, dict):
                    continue
                if resp.get("id") is None and resp.get("ok") is False:
                    raise_for(resp.get("error") or {})  # the agent could not start
                if resp.get("id") != rid:
                    continue  # a late answer to an abandoned request
                if not resp.get("ok"):
                    raise_for(resp.get("error") or {})
                result = resp.get("result")
                return result if isinstance(result, dict) else {}

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(ExuviaError, OSError):
                self.call("bye")
        self.closed = True
        self.t.close()


def _make(cls: Any, d: dict[str, Any]) -> Any:
    """A row (dataclass or NamedTuple) from the agent's dict: unknown fields (a newer
    agent) are dropped."""
    known = set(getattr(cls, "_fields", None) or cls.__dataclass_fields__)
    try:
        return cls(**{k: v for k, v in d.items() if k in known})
    except TypeError as err:
        raise ExuviaError(f"agent sent a {cls.__name__} this client cannot read: {err}") from err


def _bytes(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _stat(d: dict[str, Any] | None) -> Stat | None:
    if d is None:
        return None
    d = dict(d)
    d["dev"] = tuple(d["dev"])
    d["rdev"] = tuple(d["rdev"])
    result: Stat = _make(Stat, d)
    return result


class RemoteRoot:
    """The target's root through the agent (TargetRoot's browsing surface)."""

    def __init__(self, link: AgentLink, hello: dict[str, Any]) -> None:
        self.link = link
        self.view_note = f"through the agent: {hello.get('view_note')}"
        self.upper_note = str(hello.get("upper_note") or "")
        self.max_chunk = int(hello.get("max_chunk") or 65536)

    def list_dir(self, path: bytes) -> list[DirEntry]:
        res = self.link.call("list_dir", path=os.fsdecode(path))
        rows = [
            DirEntry(
                path=os.fsencode(e["path"]),
                name=os.fsencode(e["name"]),
                st=_stat(e.get("st")),
                link_target=_bytes(e.get("link_target")),
                changed=e.get("changed"),
                error=e.get("error"),
            )
            for e in res.get("entries") or []
        ]
        more = int(res.get("not_listed") or 0)
        if more:  # a visible row, not a silent cut
            name = f"… {more} more entries not listed".encode()
            rows.append(DirEntry(path.rstrip(b"/") + b"/\0more", name, None, error="not listed"))
        return rows

    def changed(self, limit: int = 10_000) -> Iterator[ChangedEntry]:
        res = self.link.call("changed", limit=min(max(limit, 1), 10_000))
        self.upper_note = str(res.get("note") or self.upper_note)
        for e in res.get("entries") or []:
            yield ChangedEntry(os.fsencode(e["path"]), e["kind"], e.get("size"), e.get("mtime_ns"))

    def read_head(self, path: bytes, limit: int = 64 << 10, offset: int = 0) -> tuple[bytes, int]:
        """Up to ``limit`` bytes from ``offset``, fetched in the agent's chunk size."""
        out = bytearray()
        size = 0
        while len(out) < limit:
            want = min(self.max_chunk, limit - len(out))
            res = self.link.call("read", path=os.fsdecode(path), offset=offset + len(out),
                                 length=want)  # fmt: skip
            data = base64.b64decode(res.get("data") or "")
            size = int(res.get("size") or 0)
            out += data
            if len(data) < want:
                break
        return bytes(out), size

    def sha256(self, path: bytes) -> tuple[str, int]:
        res = self.link.call("sha256", path=os.fsdecode(path))
        return str(res["sha256"]), int(res["bytes"])

    def close(self) -> None:
        self.link.close()


class RemoteTarget:
    """A target seen through ``agent serve``: processes, sockets, files, shell."""

    def __init__(self, transport: Transport) -> None:
        self.link = AgentLink(transport)
        try:
            self.hello = self.link.call("hello")
        except BaseException:
            self.link.close()
            raise
        self.root = RemoteRoot(self.link, self.hello)

    @property
    def shell(self) -> tuple[bool | None, str]:
        sh = self.hello.get("shell") or {}
        return sh.get("present"), str(sh.get("where") or "")

    def sample(self) -> list[ProcRow]:
        rows = []
        for r in self.link.call("processes").get("rows") or []:
            r["cmdline"] = tuple(r.get("cmdline") or ())
            rows.append(_make(ProcRow, r))
        return rows

    def sockets(self) -> list[SocketRow]:
        rows = []
        for r in self.link.call("sockets").get("rows") or []:
            r["owners"] = tuple(r.get("owners") or ())
            rows.append(_make(SocketRow, r))
        return rows

    def stats(self) -> dict[str, Any]:
        return self.link.call("stats")

    def close(self) -> None:
        self.link.close()
