"""Where extractors put what they find: records (rows) and problems (counted).

Extractors never write storage: they hand rows to a :class:`Sink` (plaso's
mediator idea). A record is one artifact record or log line; the store turns
each record into its events (a filesystem record into up to four MACB events,
any other record into one). Record ids follow emission order, so the same
bundle always gives the same ids.

Row shapes (the ``records`` table's columns, see :mod:`forensics.timeline.store`):

* :data:`FileRow`: flags, entity (path), member id, line, the record's JSON text,
  mtime, atime, ctime, btime;
* :data:`EventRow`: source, kind bit, ts, receive ts, flags, entity, message,
  member id, line, attrs (JSON or None).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

FileRow = tuple[Any, ...]
EventRow = tuple[Any, ...]

#: at most this many problems are kept with their details (all are counted)
MAX_PROBLEMS = 10_000
BATCH = 20_000


class Sink:
    """Collects rows in emission order and counts problems; subclasses store them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.problems: list[tuple[str, str, int, str]] = []
        self.members: dict[str, int] = {}
        self.file_rows: list[FileRow] = []
        self.event_rows: list[EventRow] = []
        self.warnings: list[str] = []
        #: what a bundle cut off before its manifest was read up to (build.py)
        self.cut_off: dict[str, Any] | None = None
        #: how many rows a fast producer gathers before it flushes (read after each flush)
        self.batch = BATCH

    def member(self, name: str) -> int:
        mid = self.members.get(name)
        if mid is None:
            mid = self.members[name] = len(self.members) + 1
        return mid

    def file(self, row: FileRow) -> None:
        if self.event_rows:
            self.flush()
        self.file_rows.append(row)
        if len(self.file_rows) >= self.batch:
            self.flush()

    def event(self, row: EventRow) -> None:
        if self.file_rows:
            self.flush()
        self.event_rows.append(row)
        if len(self.event_rows) >= self.batch:
            self.flush()

    def problem(self, what: str, member: str, line: int, detail: str) -> None:
        """Something that could not be used: counted under ``what``, detail kept (capped)."""
        self.counts[what] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((what, member, line, detail[:500]))

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def begin_files(self) -> list[FileRow]:
        """For a fast producer of file rows: flush pending event rows and return the
        list to append to (call :meth:`flush` whenever it holds :attr:`batch` rows,
        and read :attr:`batch` again after)."""
        if self.event_rows:
            self.flush()
        return self.file_rows

    def flush(self) -> None:
        """Hand the pending rows on, in emission order (subclasses store them).

        The lists are emptied in place, so a producer may keep references to them.
        """
        self.file_rows.clear()
        self.event_rows.clear()


class MemorySink(Sink):
    """Keeps every row in order: ``rows`` holds ("file"|"event", row) pairs (for tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, Any]] = []

    def flush(self) -> None:
        self.rows.extend(("file", r) for r in self.file_rows)
        self.rows.extend(("event", r) for r in self.event_rows)
        super().flush()

    def events(self) -> list[EventRow]:
        self.flush()
        return [r for k, r in self.rows if k == "event"]

    def files(self) -> list[FileRow]:
        self.flush()
        return [r for k, r in self.rows if k == "file"]
