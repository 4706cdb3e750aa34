"""Tail the runtime's stdout/stderr log of a target (its host-side file).

``LogTail.poll()`` returns the complete lines written since the last call (the
first call: the last ``backlog`` bytes). Envelopes (CRI, k8s-file, json-file)
are unwrapped into (time, stream, text); a raw log gives text only. The file is
opened read-only with O_NOATIME where allowed; a file that was rotated or
truncated is reopened from its start.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from collectors.fs.walk import O_NOATIME
from forensics.textsafe import fsdecode_safe
from forensics.timeline.logs import parse_cri, parse_docker

MAX_LINE = 64 << 10
READ_CAP = 4 << 20


@dataclass(frozen=True, slots=True)
class LogLine:
    ts_ns: int | None
    stream: str  # stdout, stderr, or "" when the format does not say
    text: str


def parse_line(raw: bytes, fmt: str | None) -> LogLine:
    text = fsdecode_safe(raw[:MAX_LINE])
    if fmt in ("cri", "k8s-file"):
        parsed = parse_cri(text)
        if parsed is not None:
            return LogLine(parsed[0], parsed[1], parsed[3])
    elif fmt == "json-file":
        doc = parse_docker(text)
        if doc is not None:
            return LogLine(doc[0], doc[1], doc[3])
    return LogLine(None, "", text)


class LogTail:
    def __init__(self, path: str, fmt: str | None, backlog: int = 64 << 10) -> None:
        self.path = path
        self.fmt = fmt
        self.backlog = backlog
        self._fd: int | None = None
        self._ino: int | None = None
        self._pos = 0
        self._rest = b""

    def _open(self) -> None:
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            self._fd = os.open(self.path, flags | O_NOATIME)
        except PermissionError:
            self._fd = os.open(self.path, flags)
        st = os.fstat(self._fd)
        self._ino = st.st_ino
        self._pos = max(0, st.st_size - self.backlog)
        self._rest = b""
        if self._pos:  # start at a line boundary
            chunk = os.pread(self._fd, min(self.backlog, MAX_LINE), self._pos)
            nl = chunk.find(b"\n")
            self._pos += nl + 1 if nl >= 0 else 0

    def poll(self) -> list[LogLine]:
        """New complete lines; raises OSError when the file cannot be opened."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        try:
            st = os.stat(self.path)
            if st.st_ino != self._ino or st.st_size < self._pos:
                self.close()
                self._open()
                self._pos = 0 if st.st_ino != self._ino else self._pos
        except FileNotFoundError:
            pass  # rotated away: keep reading the old file
        assert self._fd is not None
        data = os.pread(self._fd, READ_CAP, self._pos)
        self._pos += len(data)
        buf = self._rest + data
        *lines, self._rest = buf.split(b"\n")
        if len(self._rest) > MAX_LINE:  # a runaway line: show it cut
            lines.append(self._rest)
            self._rest = b""
        return [parse_line(ln, self.fmt) for ln in lines if ln]

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
