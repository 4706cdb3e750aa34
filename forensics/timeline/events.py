"""The timeline's event model: one frozen dataclass and its small vocabularies.

An event is a point in time (UTC nanoseconds) at which something happened to an
entity (a path, a process, a container), with the artifact record it came from
(``ref``: member name and 1-based line), so a UI can open the raw record.

Kinds and flags are bit sets in storage: a filesystem event whose modification
and change times are equal is *one* event with kinds ``file.modified`` and
``file.changed`` (mactime's ``m.c.``), exactly as sleuthkit's mactime combines
them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Flag(enum.IntFlag):
    """What a reader should know about an event's time or content."""

    NONE = 0
    #: the time is not the event's own: the runtime's receive time, the previous
    #: line's time, or the capture's time (see the ``time_from`` attribute)
    TIME_INFERRED = 1
    #: the entry changed since the container started (overlay upper layer)
    CHANGED = 2
    #: some values of the record were redacted at capture (e.g. secret env vars)
    REDACTED = 4
    #: the record carried a timestamp that could not be used (absurd or malformed)
    TIME_INVALID = 8
    #: the timestamp had no zone; the timeline's ``--tz`` was applied
    ZONE_ASSUMED = 16
    #: the timestamp had no year; it was taken from the context (log or capture time)
    YEAR_ASSUMED = 32
    #: the line was longer than the limit and was cut (its full length is kept)
    TRUNCATED = 64
    #: the line was not valid UTF-8 (invalid bytes shown as U+FFFD)
    INVALID_UTF8 = 128
    #: the entity was deleted (overlay whiteout, deleted executable)
    DELETED = 256
    #: a recorded time outside 1970..2100, kept as recorded
    TIME_SUSPECT = 512


FLAG_NAMES: dict[str, Flag] = {
    "time_inferred": Flag.TIME_INFERRED,
    "changed": Flag.CHANGED,
    "redacted": Flag.REDACTED,
    "time_invalid": Flag.TIME_INVALID,
    "zone_assumed": Flag.ZONE_ASSUMED,
    "year_assumed": Flag.YEAR_ASSUMED,
    "truncated": Flag.TRUNCATED,
    "invalid_utf8": Flag.INVALID_UTF8,
    "deleted": Flag.DELETED,
    "time_suspect": Flag.TIME_SUSPECT,
}


def flag_names(flags: int) -> list[str]:
    """The names of the flags set in ``flags``, in a stable order."""
    return [name for name, bit in FLAG_NAMES.items() if flags & bit]


class Kind(enum.IntFlag):
    """What happened. Stored as a bit set so MACB letters combine."""

    FILE_MODIFIED = 1
    FILE_ACCESSED = 2
    FILE_CHANGED = 4
    FILE_BORN = 8
    PROCESS_STARTED = 16
    LOG_LINE = 32
    CONTAINER_CREATED = 64
    CONTAINER_STARTED = 128
    CONTAINER_EXITED = 256
    CAPTURE_ACTION = 512
    K8S_EVENT = 1024
    YARA_MATCH = 2048


KIND_NAMES: dict[str, Kind] = {
    "file.modified": Kind.FILE_MODIFIED,
    "file.accessed": Kind.FILE_ACCESSED,
    "file.changed": Kind.FILE_CHANGED,
    "file.born": Kind.FILE_BORN,
    "process.started": Kind.PROCESS_STARTED,
    "log.line": Kind.LOG_LINE,
    "container.created": Kind.CONTAINER_CREATED,
    "container.started": Kind.CONTAINER_STARTED,
    "container.exited": Kind.CONTAINER_EXITED,
    "capture.action": Kind.CAPTURE_ACTION,
    "k8s.event": Kind.K8S_EVENT,
    "yara.match": Kind.YARA_MATCH,
}
KIND_BY_BIT: dict[int, str] = {int(bit): name for name, bit in KIND_NAMES.items()}
FILE_KINDS = Kind.FILE_MODIFIED | Kind.FILE_ACCESSED | Kind.FILE_CHANGED | Kind.FILE_BORN

#: plaso's timestamp descriptions, for the exports' ``timestamp_desc``/``type``
KIND_DESCRIPTIONS: dict[str, str] = {
    "file.modified": "Content Modification Time",
    "file.accessed": "Last Access Time",
    "file.changed": "Metadata Modification Time",
    "file.born": "Creation Time",
    "process.started": "Start Time",
    "log.line": "Recorded Time",
    "container.created": "Creation Time",
    "container.started": "Start Time",
    "container.exited": "End Time",
    "capture.action": "Recorded Time",
    "k8s.event": "Recorded Time",
    "yara.match": "Capture Time",
}


def kind_names(kinds: int) -> tuple[str, ...]:
    """The kind names in a bit set, lowest bit first (m, a, c, b order for files)."""
    return tuple(name for bit, name in KIND_BY_BIT.items() if kinds & bit)


def macb(kinds: int) -> str:
    """mactime's letters for a filesystem event's kinds, e.g. ``m.c.``; '' otherwise."""
    if not kinds & FILE_KINDS:
        return ""
    return (
        ("m" if kinds & Kind.FILE_MODIFIED else ".")
        + ("a" if kinds & Kind.FILE_ACCESSED else ".")
        + ("c" if kinds & Kind.FILE_CHANGED else ".")
        + ("b" if kinds & Kind.FILE_BORN else ".")
    )


class Source(enum.IntEnum):
    """Where an event comes from."""

    FS = 1
    PROC = 2
    LOG = 3
    NET = 4
    RUNTIME = 5
    CUSTODY = 6
    K8S = 7
    SCAN = 8


SOURCE_NAMES: dict[str, Source] = {s.name.lower(): s for s in Source}
SOURCE_BY_NUM: dict[int, str] = {int(s): s.name.lower() for s in Source}


@dataclass(frozen=True, slots=True)
class Ref:
    """Where the raw record is: a bundle member and its 1-based line (0: whole member)."""

    member: str
    line: int


@dataclass(frozen=True, slots=True)
class Event:
    """One timeline event.

    ``id`` is stable for a given bundle (record number * 4 + slot), and is the
    tie-break when times are equal: the same bundle always lists the same
    events in the same order. ``kind`` is the first of ``kinds``.
    """

    id: int
    ts: int
    kinds: tuple[str, ...]
    source: str
    entity: str
    message: str
    flags: Flag
    ref: Ref
    attrs: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def kind(self) -> str:
        return self.kinds[0] if self.kinds else ""

    @property
    def macb(self) -> str:
        bits = 0
        for name in self.kinds:
            bits |= KIND_NAMES[name]
        return macb(bits)

    @property
    def flag_names(self) -> list[str]:
        return flag_names(self.flags)

    @property
    def timestamp_desc(self) -> str:
        """plaso-style description of the time, e.g. 'Content Modification Time'."""
        return "; ".join(KIND_DESCRIPTIONS.get(k, k) for k in self.kinds)


def event_key(ev: Event) -> str:
    """A name for an event that survives rebuilding the store: ``member#line#slot``."""
    return f"{ev.ref.member}#{ev.ref.line}#{ev.id & 3}"
