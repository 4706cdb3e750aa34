"""Receiving the agent's stream: stdout to the file as it arrives, stderr events, status."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator

from collectors.k8s.stream import exit_code, parse_events, receive
from forensics.errors import ExuviaError

SUCCESS = json.dumps({"metadata": {}, "status": "Success"}).encode()
KILLED = json.dumps(
    {
        "status": "Failure",
        "message": "command terminated with non-zero exit code",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "137"}]},
    }
).encode()


class Frames:
    def __init__(self, frames: list[tuple[int, bytes]], fail_after: int | None = None) -> None:
        self._frames = frames
        self._fail = fail_after
        self.closed = False

    def frames(self) -> Iterator[tuple[int, bytes]]:
        for i, f in enumerate(self._frames):
            if self._fail is not None and i == self._fail:
                raise ExuviaError("exec stream broken (connection lost: reset)")
            yield f

    def close(self) -> None:
        self.closed = True


def test_a_whole_stream() -> None:
    sealed = b'{"event": "sealed", "manifest_sha256": "ab", "bytes": 6}\n'
    ch = Frames([(1, b"abc"), (2, b'{"event": "target", "pid": 1}\nnot json\n'), (1, b"def"),
                 (2, sealed), (3, SUCCESS)])  # fmt: skip
    out = io.BytesIO()
    seen: list[int] = []
    res = receive(ch, out, seen.append)
    assert out.getvalue() == b"abcdef" and res.nbytes == 6
    assert res.sha256 == hashlib.sha256(b"abcdef").hexdigest()
    assert res.exit_code == 0 and res.broken is None and ch.closed
    assert [e["event"] for e in res.events] == ["target", "sealed"]
    assert res.event("sealed") == {"event": "sealed", "manifest_sha256": "ab", "bytes": 6}
    assert res.event("error") is None
    assert seen == [3]


def test_binary_bytes_pass_unchanged() -> None:
    blob = bytes(range(256)) * 3
    out = io.BytesIO()
    res = receive(Frames([(1, blob[:100]), (1, blob[100:]), (3, SUCCESS)]), out)
    assert out.getvalue() == blob and res.nbytes == len(blob)


def test_the_agent_killed() -> None:
    res = receive(Frames([(1, b"partial"), (3, KILLED)]), io.BytesIO())
    assert res.exit_code == 137 and res.broken is None


def test_a_broken_connection_keeps_what_arrived() -> None:
    out = io.BytesIO()
    ch = Frames([(1, b"abc"), (1, b"def"), (3, SUCCESS)], fail_after=2)
    res = receive(ch, out)
    assert out.getvalue() == b"abcdef"
    assert res.broken and "connection lost" in res.broken and ch.closed
    assert res.exit_code is None


def test_a_stream_that_closes_without_status() -> None:
    res = receive(Frames([(1, b"abc")]), io.BytesIO())
    assert res.broken == "the stream closed without the agent's exit status"


def test_a_status_without_exit_code_is_a_failure() -> None:
    failure = json.dumps({"status": "Failure", "message": "container not found"}).encode()
    res = receive(Frames([(3, failure)]), io.BytesIO())
    assert res.broken == "the agent failed: container not found"


def test_helpers() -> None:
    assert exit_code({"status": "Success"}) == 0
    assert exit_code(json.loads(KILLED)) == 137
    assert exit_code({"status": "Failure"}) is None
    assert parse_events(b'{"event": "x"}\n[1]\n{"no": "event"}\n') == [{"event": "x"}]
