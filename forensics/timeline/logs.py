"""Log members (runtime stdout/stderr logs, the target's own log files and the
container logs a k8s:// capture fetched through the API) into ``log.line`` events.

Each line is placed by its own timestamp (:mod:`forensics.timeline.logtime`).
A line without one is kept and flagged ``TIME_INFERRED``: placed by the
runtime's receive time where the log format has one (CRI, k8s-file,
json-file), else by the previous line's time, else (lines before the first
timed one) by the next line's time, else by the log file's or the capture's
time. The ``time_from`` attribute says which. Lines longer than 1 MiB are cut
and flagged; invalid UTF-8 is replaced and flagged; malformed envelopes and
absurd timestamps are counted.

Kubernetes API logs (``logs/k8s/<container>[.previous].log``, format
``k8s-timestamps``: each line ``<RFC 3339 ns> <text>`` as the kubelet serves
them with ``timestamps=true``) carry the runtime's receive time the same way; the
API merges stdout and stderr, so their stream is ``stdio``. When the same bundle
also holds the runtime's own copy of a container's log (``logs/runtime/*``, CRI),
the API's copy of a line already read from it (same receive time, same text, same
container) is dropped and counted (``log_lines_duplicate``): the runtime's copy
says which stream the line was written to, the API's does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from forensics.bundle.format import decode_path
from forensics.timeline.bundleio import MemberStream, iter_lines
from forensics.timeline.events import Flag, Kind, Source
from forensics.timeline.fs import _int, parse_json_line, parse_json_text
from forensics.timeline.logtime import INVALID, LogClock, rfc3339_ns
from forensics.timeline.sink import Sink

MAX_LINE = 1 << 20
MAX_PENDING = 10_000
ENVELOPES = ("cri", "k8s-file", "json-file", "k8s-timestamps")
K8S_LOGS_MEMBER = "artifacts/k8s/logs.jsonl"
_SOURCE = int(Source.LOG)
_KIND = int(Kind.LOG_LINE)
_INFERRED = int(Flag.TIME_INFERRED)
_INVALID = int(Flag.TIME_INVALID)
_TRUNCATED = int(Flag.TRUNCATED)
_BADUTF8 = int(Flag.INVALID_UTF8)


@dataclass(frozen=True)
class LogSource:
    """A log member: where it came from and how its lines are wrapped."""

    member: str
    origin: str  # "runtime", "target" or "k8s-api"
    fmt: str  # "raw" (no envelope), "cri", "k8s-file", "json-file", "k8s-timestamps"
    entity: str
    mtime_ns: int | None = None
    path: str | None = None
    #: more attributes for every line (a k8s-api log: its container, previous or not)
    labels: tuple[tuple[str, Any], ...] = ()


def log_sources(logs_jsonl: bytes | None, target: Any, entity: str) -> dict[str, LogSource]:
    """The log members a bundle declares (``artifacts/logs.jsonl``), by member name."""
    out: dict[str, LogSource] = {}
    default_fmt = "raw"
    if isinstance(target, dict) and isinstance(target.get("log_format"), str):
        default_fmt = target["log_format"]
    for raw in (logs_jsonl or b"").split(b"\n"):
        if not raw.strip():
            continue
        rec, _why = parse_json_line(raw)
        if not isinstance(rec, dict) or not isinstance(rec.get("member"), str):
            continue
        member = rec["member"]
        if rec.get("origin") == "runtime":
            fmt = str(rec["format"]) if isinstance(rec.get("format"), str) else default_fmt
            host = rec.get("host_path") if isinstance(rec.get("host_path"), str) else None
            out[member] = LogSource(member, "runtime", fmt, entity, _int(rec.get("mtime_ns")), host)
        else:
            path = rec.get("path")
            if not isinstance(path, str):
                path = decode_path(member.removeprefix("files")).decode("utf-8", "replace")
            out[member] = LogSource(member, "target", "raw", path, None, path)
    return out


def k8s_log_sources(k8s_logs_jsonl: bytes | None) -> dict[str, LogSource]:
    """The container logs a k8s:// capture read through the API (``artifacts/k8s/logs.jsonl``)."""
    out: dict[str, LogSource] = {}
    for raw in (k8s_logs_jsonl or b"").split(b"\n"):
        if not raw.strip():
            continue
        rec, _why = parse_json_line(raw)
        if not isinstance(rec, dict) or not isinstance(rec.get("member"), str):
            continue
        if rec["member"].startswith("logs/k8s/"):  # only the client's own members
            out[rec["member"]] = k8s_source(rec["member"], rec)
    return out


def k8s_source(member: str, rec: dict[str, Any] | None = None) -> LogSource:
    """A ``logs/k8s/*`` member, from its ``log_source`` record (or its name alone)."""
    rec = rec or {}
    container = rec.get("container") if isinstance(rec.get("container"), str) else None
    previous = rec.get("previous") is True
    if container is None:
        container = member.removeprefix("logs/k8s/").removesuffix(".log")
        previous = container.endswith(".previous")
        container = container.removesuffix(".previous")
    fmt = str(rec["format"]) if isinstance(rec.get("format"), str) else "k8s-timestamps"
    labels: tuple[tuple[str, Any], ...] = (("container", container), ("previous", previous))
    if isinstance(rec.get("type"), str):
        labels += (("container_type", rec["type"]),)
    return LogSource(member, "k8s-api", fmt, f"container:{container}", labels=labels)


class LogDedup:
    """Lines of the runtime's own log copies, so the API's copies of them are dropped.

    Only the entities that also have a Kubernetes API log are remembered, and
    only lines with a receive time (the API serves exactly the runtime's).
    """

    def __init__(self, entities: set[str]) -> None:
        self.entities = entities
        self.lines: dict[str, set[tuple[int, str]]] = {e: set() for e in entities}

    def lines_of(self, entity: str) -> set[tuple[int, str]] | None:
        return self.lines.get(entity)


def runtime_source(member: str, target: Any, entity: str) -> LogSource:
    """A runtime log member the bundle did not declare (its logs.jsonl is missing)."""
    fmt = "raw"
    if isinstance(target, dict) and isinstance(target.get("log_format"), str):
        fmt = target["log_format"]
    return LogSource(member, "runtime", fmt, entity)


def parse_cri(text: str) -> tuple[int, str, bool, str] | None:
    """CRI / k8s-file: ``TIME STREAM TAG CONTENT`` -> (ns, stream, partial, content)."""
    parts = text.split(" ", 3)
    if len(parts) < 3:
        return None
    ns = rfc3339_ns(parts[0])
    if ns is None or parts[1] not in ("stdout", "stderr"):
        return None
    tag = parts[2].split(":", 1)[0]
    if tag not in ("F", "P"):
        return None
    return ns, parts[1], tag == "P", parts[3] if len(parts) == 4 else ""


def parse_docker(text: str) -> tuple[int | None, str, bool, str] | None:
    """docker json-file: ``{"log": ..., "stream": ..., "time": ...}``."""
    rec, _why = parse_json_text(text)
    if not isinstance(rec, dict) or not isinstance(rec.get("log"), str):
        return None
    log = str(rec["log"])
    stream = str(rec["stream"]) if isinstance(rec.get("stream"), str) else "stdout"
    t = rec.get("time")
    ns = rfc3339_ns(t) if isinstance(t, str) else None
    partial = not log.endswith("\n")
    return ns, stream, partial, log[:-1] if not partial else log


def parse_k8s_timestamps(text: str) -> tuple[int, str, bool, str] | None:
    """The API's ``timestamps=true`` form: ``TIME TEXT`` -> (ns, "stdio", False, text).

    The kubelet writes the time of a line's first piece once, so a line the
    runtime split into partial pieces arrives whole.
    """
    head, _sep, content = text.partition(" ")
    ns = rfc3339_ns(head)
    if ns is None:
        return None
    return ns, "stdio", False, content


class _LogWriter:
    """Places lines in time and hands them to the sink."""

    def __init__(self, src: LogSource, sink: Sink, mid: int, fallback_ns: int | None) -> None:
        self.src = src
        self.sink = sink
        self.mid = mid
        self.fallback_ns = fallback_ns
        self.prev: int | None = None
        self.pending: list[tuple[int, int, str, str, int | None, dict[str, Any] | None]] = []
        self._attrs: dict[tuple[str, str], str] = {}
        self.counts = sink.counts

    def attrs(self, stream: str, time_from: str, extra: dict[str, Any] | None) -> str:
        key = (stream, time_from)
        if extra is None:
            cached = self._attrs.get(key)
            if cached is not None:
                return cached
        d: dict[str, Any] = {"stream": stream, "format": self.src.fmt, "origin": self.src.origin}
        d.update(self.src.labels)
        if time_from:
            d["time_from"] = time_from
        if extra:
            d.update(extra)
        text = json.dumps(d, ensure_ascii=False)
        if extra is None:
            self._attrs[key] = text
        return text

    def emit(
        self,
        ts: int,
        recv: int | None,
        flags: int,
        *,
        line: int,
        content: str,
        stream: str,
        time_from: str,
        extra: dict[str, Any] | None,
    ) -> None:
        self.sink.event(
            (
                _SOURCE,
                _KIND,
                ts,
                recv,
                flags,
                self.src.entity,
                content,
                self.mid,
                line,
                self.attrs(stream, time_from, extra),
            )
        )

    def untimed(
        self, flags: int, line: int, content: str, stream: str, extra: dict[str, Any] | None
    ) -> None:
        """A line with no time at all: previous line's, or wait for the next one's."""
        flags |= _INFERRED
        if self.prev is not None:
            self.counts["log_lines_previous_time"] += 1
            self.emit(
                self.prev,
                None,
                flags,
                line=line,
                content=content,
                stream=stream,
                time_from="previous line",
                extra=extra,
            )
            return
        self.pending.append((flags, line, content, stream, None, extra))
        if len(self.pending) >= MAX_PENDING:
            self.drain(None)

    def drain(self, ts: int | None) -> None:
        """Place the lines waiting for a time: at ``ts`` (the next line's), or the fallback."""
        if ts is None:
            ts = self.fallback_ns if self.fallback_ns is not None else 0
            what = "log file time" if self.src.mtime_ns is not None else "capture time"
            counter = "log_lines_fallback_time"
        else:
            what, counter = "next line", "log_lines_next_time"
        for flags, line, content, stream, _recv, extra in self.pending:
            self.counts[counter] += 1
            self.emit(
                ts, None, flags, line=line, content=content, stream=stream, time_from=what,
                extra=extra,
            )  # fmt: skip
        self.pending = []


def extract_log(
    stream: MemberStream,
    src: LogSource,
    sink: Sink,
    clock: LogClock,
    fallback_ns: int | None,
    *,
    dedup: LogDedup | None = None,
) -> None:
    """Every line of one log member; with ``dedup``, a runtime log's lines are
    remembered and a k8s-api log's lines already seen there are dropped."""
    name = stream.name
    w = _LogWriter(src, sink, sink.member(name), src.mtime_ns or fallback_ns)
    counts = sink.counts
    fmt = src.fmt
    cri = fmt in ("cri", "k8s-file")
    docker = fmt == "json-file"
    k8s = fmt == "k8s-timestamps"
    remember: set[tuple[int, str]] | None = None
    seen: set[tuple[int, str]] | None = None
    if dedup is not None:
        lines = dedup.lines_of(src.entity)
        if src.origin == "k8s-api":
            seen = lines or None
        elif src.origin == "runtime":
            remember = lines
    dedup_on = remember is not None or seen is not None
    default_stream = "stdio" if src.origin in ("runtime", "k8s-api") else "file"
    line_of = clock.line
    parts: list[str] = []
    parts_len = 0
    part_start: tuple[int, int | None, str, int] | None = None  # line, recv, stream, flags
    lineno = 0
    for raw in iter_lines(stream, MAX_LINE):
        lineno += 1
        flags = 0
        extra: dict[str, Any] | None = None
        if type(raw) is not bytes:
            flags = _TRUNCATED
            extra = {"length": getattr(raw, "full", len(raw))}
            counts["log_lines_truncated"] += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            flags |= _BADUTF8
            counts["log_lines_invalid_utf8"] += 1
        if text.endswith("\r"):
            text = text[:-1]
        recv: int | None = None
        out_stream = default_stream
        content = text
        first = lineno
        if cri or docker or k8s:
            if k8s:
                env: tuple[int | None, str, bool, str] | None = parse_k8s_timestamps(text)
            else:
                env = parse_cri(text) if cri else parse_docker(text)
            if env is None:
                sink.problem("log_envelope_malformed", name, lineno, text[:200])
            else:
                recv, out_stream, partial, content = env
                if partial:
                    if part_start is None:
                        part_start = (lineno, recv, out_stream, flags)
                    if parts_len < MAX_LINE:
                        parts.append(content)
                        parts_len += len(content)
                    continue
                if part_start is not None:
                    parts.append(content)
                    content = "".join(parts)
                    first, recv, out_stream, pflags = part_start
                    flags |= pflags
                    counts["log_lines_joined"] += 1
                    parts, parts_len, part_start = [], 0, None
                    if len(content) > MAX_LINE:
                        extra = {"length": len(content)}
                        content = content[:MAX_LINE]
                        flags |= _TRUNCATED
                if dedup_on and recv is not None:
                    if remember is not None:
                        remember.add((recv, content))
                    elif seen is not None and (recv, content) in seen:
                        counts["log_lines_duplicate"] += 1
                        continue
        elif not text:
            counts["log_lines_blank"] += 1
            continue
        _place(w, line_of, content, recv, flags, line=first, stream=out_stream, extra=extra)
    if part_start is not None:  # the log ends inside a partial line: keep what there is
        lineno_first, recv, out_stream, pflags = part_start
        _place(
            w, line_of, "".join(parts), recv, pflags, line=lineno_first, stream=out_stream,
            extra=None,
        )  # fmt: skip
    w.drain(None)


def _place(
    w: _LogWriter,
    line_of: Any,
    content: str,
    recv: int | None,
    flags: int,
    *,
    line: int,
    stream: str,
    extra: dict[str, Any] | None,
) -> None:
    lineno = line
    counts = w.counts
    counts["log_lines"] += 1
    st = line_of(content)
    if st is not None and st is not INVALID:
        if w.pending:
            w.drain(st.ns)
        w.prev = st.ns
        counts["log_lines_own_time"] += 1
        w.emit(
            st.ns, recv, flags | st.flags, line=lineno, content=content, stream=stream,
            time_from="", extra=extra,
        )  # fmt: skip
        return
    if st is INVALID:
        flags |= _INVALID
        counts["log_lines_time_invalid"] += 1
        w.sink.problem("log_time_invalid", w.src.member, lineno, content[:200])
    if recv is not None:
        if w.pending:
            w.drain(recv)
        w.prev = recv
        counts["log_lines_receive_time"] += 1
        w.emit(
            recv, recv, flags | _INFERRED, line=lineno, content=content, stream=stream,
            time_from="receive time", extra=extra,
        )  # fmt: skip
        return
    w.untimed(flags, lineno, content, stream, extra)
