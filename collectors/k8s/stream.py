"""The agent's bundle over the exec stream: stdout bytes to a local file as they
arrive, stderr as the agent's JSON events, the exit status at the end.

Channel 1 (stdout) is the bundle, exactly as the agent wrote it; it is written
to the local file frame by frame (memory stays flat) and hashed on the way, so
the client can compare the stream's SHA-256 with the one the agent reports.
Nothing in here interprets the bundle; collectors.k8s.relay does, afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from forensics.errors import ExuviaError

STDOUT, STDERR, STATUS = 1, 2, 3
MAX_STDERR = 4 << 20


class Frames(Protocol):
    def frames(self) -> Any: ...  # Iterator[tuple[int, bytes]]

    def close(self) -> None: ...


@dataclass
class StreamResult:
    """What came over the stream and how it ended."""

    nbytes: int = 0
    sha256: str = ""
    exit_code: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: bytes = b""
    broken: str | None = None
    seconds: float = 0.0

    def event(self, name: str) -> dict[str, Any] | None:
        """The last event of that name the agent reported."""
        for ev in reversed(self.events):
            if ev.get("event") == name:
                return dict(ev)
        return None


def exit_code(status: dict[str, Any]) -> int | None:
    """The exit code in an exec status (channel 3), None when it has none."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return None
    return None


def parse_events(stderr: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and "event" in ev:
            out.append(ev)
    return out


def receive(
    channel: Frames,
    out: BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> StreamResult:
    """Copy the agent's stdout into ``out`` until the stream ends; never raises
    for a broken stream (``result.broken`` says why), only for a failing ``out``."""
    res = StreamResult()
    digest = hashlib.sha256()
    err = bytearray()
    status = bytearray()
    t0 = time.monotonic()
    last = 0.0
    try:
        for ch, data in channel.frames():
            if ch == STDOUT:
                out.write(data)
                digest.update(data)
                res.nbytes += len(data)
                now = time.monotonic()
                if progress is not None and now - last > 0.25:
                    last = now
                    progress(res.nbytes)
            elif ch == STDERR:
                if len(err) < MAX_STDERR:
                    err += data[: MAX_STDERR - len(err)]
            elif ch == STATUS:
                status += data
    except ExuviaError as e:
        res.broken = str(e)
    finally:
        channel.close()
        out.flush()
    res.seconds = time.monotonic() - t0
    res.sha256 = digest.hexdigest()
    res.stderr = bytes(err)
    res.events = parse_events(res.stderr)
    if status:
        try:
            parsed = json.loads(bytes(status))
            res.status = parsed if isinstance(parsed, dict) else {"raw": str(parsed)}
        except ValueError:
            res.status = {"raw": bytes(status).decode("utf-8", "replace")}
        res.exit_code = exit_code(res.status)
    elif res.broken is None:
        res.broken = "the stream closed without the agent's exit status"
    if res.broken is None and res.exit_code is None:
        res.broken = f"the agent failed: {res.status.get('message') or res.status}"
    return res


def cut(channel: Any) -> None:
    """Cut an exec channel's connection under the thread reading it (Ctrl-C): its
    read fails at once, and :func:`receive` returns what came, ``broken``. Safe
    in a signal handler (one shutdown(2), no lock)."""
    raw = getattr(getattr(getattr(channel, "_ws", None), "sock", None), "sock", None)
    with contextlib.suppress(OSError, AttributeError):
        if raw is not None:
            raw.shutdown(socket.SHUT_RDWR)
