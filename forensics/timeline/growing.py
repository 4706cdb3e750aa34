"""Reading a timeline store while it is built (`exuvia replay` of a never-opened bundle).

A live build (``open_timeline(..., growing=hooks)``) writes its store in WAL
mode under the work directory's name (``.timeline-*.tmp/timeline.sqlite``, never
taken for a finished store), commits it one chunk of records at a time with the
time index already in place, and keeps what it has committed so far in the meta
row :data:`~forensics.timeline.store.BUILDING_KEY`. A reader sees whole chunks
only: the events so far in timeline order (earlier ones may still arrive), their
full-text index, their count. When the build ends the reader closes (the hook
``sealing``), the store leaves WAL and is renamed to its final name at once.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from forensics.errors import BundleError
from forensics.timeline.query import Timeline
from forensics.timeline.store import BUILDING_KEY


class GrowingTimeline(Timeline):
    """A :class:`Timeline` on a store that is still being built (read-only)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.so_far: dict[str, int] = {}
        if self.refresh() is None:
            self.close()
            raise BundleError(f"timeline store {self.path} is not being built")

    def refresh(self) -> dict[str, int] | None:
        """What is committed now: {"records": N, "events": N} (None once the build has
        finished writing it). Member names of new chunks are read too."""
        try:
            row = self.con.execute(
                "SELECT value FROM meta WHERE key = ?", (BUILDING_KEY,)
            ).fetchone()
            if row is None:
                return None
            value: Any = json.loads(row[0])
            if value.get("events") != self.so_far.get("events"):
                self._members = dict(self.con.execute("SELECT id, name FROM members"))
        except (sqlite3.Error, ValueError, AttributeError):
            return None
        self.so_far = {"records": int(value.get("records", 0)), "events": int(value["events"])}
        return self.so_far

    def bounds(self) -> tuple[int, int] | None:
        """The earliest and latest event time so far (each one step on the time index)."""
        lo = self.con.execute("SELECT min(ts) FROM events").fetchone()[0]
        hi = self.con.execute("SELECT max(ts) FROM events").fetchone()[0]
        return None if lo is None or hi is None else (int(lo), int(hi))


def open_growing(path: str | Path) -> GrowingTimeline | None:
    """The growing store at ``path`` once its first state is committed, else None."""
    try:
        return GrowingTimeline(path)
    except (BundleError, sqlite3.Error, OSError):
        return None
