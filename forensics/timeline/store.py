"""The timeline's SQLite store: one database file, built by two processes.

Tables (schema version :data:`SCHEMA_VERSION`):

``records``
    one row per artifact record or log line, in bundle order (``id``). A
    filesystem record keeps its path (``entity``), its four times, its JSON
    text (``raw``), and, worked out once when it is extracted, its checked
    display fields (``attrs``, compact JSON: type, mode, owner, size...) and its
    events' ``message`` (not in the full-text index: the path is); any other
    record keeps its one event's ``ts``, ``kind``, ``message``, ``attrs`` (JSON)
    and, for a log line, the runtime's receive time (``aux_ts``).
    (Entities are found through the full-text index, then compared exactly: an
    index on them would cost more to build than the rest of the records.)
``events``
    one row per event: ``id`` = record id * 4 + slot (slot 0..3 = the m, a, c,
    b time of a file, 0 otherwise), ``ts`` (UTC ns), ``kinds`` (bit set, see
    :class:`~forensics.timeline.events.Kind`), ``source``, ``flags``. Indexed
    on ``ts``: ``ORDER BY ts, id`` is the timeline's order.
``fts``
    FTS5 over each record's entity and message (contentless; rowid = record id).
``l2t_v1`` (optional)
    not made by the build: the first l2tcsv export of the store adds it, the
    l2tcsv formats of each file record (:mod:`forensics.timeline.l2tsql`).
``members``, ``problems``, ``meta``
    member names for refs; what could not be used (the first
    :data:`~forensics.timeline.sink.MAX_PROBLEMS`; every one is counted in the
    meta); build facts as JSON values.

How it is built: the extracting process writes records into small chunk files
of :data:`CHUNK_RECORDS` rows and hands each, when full, to an indexing
process (:mod:`forensics.timeline.indexer`), which copies it into the store
and derives that range's events and full-text index in a few SQL statements.
Extraction (Python) and indexing (SQLite's C code) so run on two cores. A process,
not a thread: measured here, two threads running SQLite statements in one
process did not run in parallel (SQLite's process-wide mutexes), two processes did.
"""

# ruff: noqa: S608 - SQL text is built only from this module's constants and from
# whitelisted integers; every value from a user or a bundle is a bound parameter.

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from forensics.errors import OutputError
from forensics.timeline.events import SOURCE_BY_NUM
from forensics.timeline.sink import BATCH, Sink

SCHEMA_VERSION = 2
CHUNK_RECORDS = 100_000
#: a live build's chunks once it holds LIVE_FIRST_BATCH records (until then every flush goes)
LIVE_CHUNK_RECORDS = BATCH
#: and the file rows of its first chunk: a screenful and more, without waiting for BATCH
LIVE_FIRST_BATCH = 2_000
#: a recorded time at or after this (2100-01-01) or before 1970 is flagged TIME_SUSPECT
SUSPECT_AFTER_NS = 4_102_444_800 * 1_000_000_000
_SUSPECT = 512

_RECORD_COLUMNS = """
    source INTEGER NOT NULL,
    kind INTEGER,
    ts INTEGER,
    aux_ts INTEGER,
    flags INTEGER NOT NULL,
    entity TEXT NOT NULL,
    message TEXT,
    member INTEGER NOT NULL,
    line INTEGER NOT NULL,
    attrs TEXT,
    raw TEXT,
    mtime INTEGER, atime INTEGER, ctime INTEGER, btime INTEGER
"""
_RECORD_NAMES = (
    "source, kind, ts, aux_ts, flags, entity, message, member, line, attrs, raw,"
    " mtime, atime, ctime, btime"
)
_CHUNK_SCHEMA = f"""
CREATE TABLE records(id INTEGER PRIMARY KEY, {_RECORD_COLUMNS});
CREATE TABLE members(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE problems(what TEXT NOT NULL, member TEXT, line INTEGER, detail TEXT);
"""
_STORE_SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE members(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE problems(
    id INTEGER PRIMARY KEY, what TEXT NOT NULL, member TEXT, line INTEGER, detail TEXT
);
CREATE TABLE records(id INTEGER PRIMARY KEY, {_RECORD_COLUMNS});
CREATE TABLE events(
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    kinds INTEGER NOT NULL,
    source INTEGER NOT NULL,
    flags INTEGER NOT NULL
);
CREATE VIRTUAL TABLE fts USING fts5(entity, message, content='', columnsize=0);
CREATE TEMP TABLE slots(slot INTEGER PRIMARY KEY);
INSERT INTO slots VALUES (0), (1), (2), (3);
"""

_INSERT_FILE = (
    "INSERT INTO records(source, flags, entity, member, line, raw, mtime, atime, ctime, btime,"
    " message, attrs) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO records(source, kind, ts, aux_ts, flags, entity, message, member, line, attrs)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COPY_CHUNK = (
    f"INSERT INTO main.records(id, {_RECORD_NAMES})"
    f" SELECT id + :offset, {_RECORD_NAMES} FROM chunk.records ORDER BY id"
)

# One pass over a range of records in id order: up to four events per filesystem
# record (one per distinct time, letters combined), one per other record.
_DERIVE_EVENTS = f"""
INSERT INTO events(id, ts, kinds, source, flags)
SELECT id, t, k, source,
       f | (CASE WHEN t < 0 OR t >= {SUSPECT_AFTER_NS} THEN {_SUSPECT} ELSE 0 END)
FROM (
    SELECT r.id * 4 + s.slot AS id, r.source AS source, r.flags AS f,
        CASE WHEN r.source != 1 THEN r.ts
             WHEN s.slot = 0 THEN r.mtime WHEN s.slot = 1 THEN r.atime
             WHEN s.slot = 2 THEN r.ctime ELSE r.btime END AS t,
        CASE WHEN r.source != 1 THEN r.kind
             WHEN s.slot = 0 THEN 1 | (r.atime IS r.mtime) * 2 | (r.ctime IS r.mtime) * 4
                                    | (r.btime IS r.mtime) * 8
             WHEN s.slot = 1 THEN 2 | (r.ctime IS r.atime) * 4 | (r.btime IS r.atime) * 8
             WHEN s.slot = 2 THEN 4 | (r.btime IS r.ctime) * 8
             ELSE 8 END AS k
    FROM main.records r CROSS JOIN temp.slots s
    WHERE r.id > :lo AND r.id <= :hi AND (
          (r.source != 1 AND s.slot = 0 AND r.ts IS NOT NULL)
       OR (r.source = 1 AND (
            (s.slot = 0 AND r.mtime IS NOT NULL)
         OR (s.slot = 1 AND r.atime IS NOT NULL AND r.atime IS NOT r.mtime)
         OR (s.slot = 2 AND r.ctime IS NOT NULL AND r.ctime IS NOT r.mtime
                        AND r.ctime IS NOT r.atime)
         OR (s.slot = 3 AND r.btime IS NOT NULL AND r.btime IS NOT r.mtime
                        AND r.btime IS NOT r.atime AND r.btime IS NOT r.ctime))))
)
"""
_INDEX_TEXT = (
    "INSERT INTO fts(rowid, entity, message)"
    " SELECT id, entity, CASE WHEN source = 1 THEN NULL ELSE message END"
    " FROM main.records WHERE id > :lo AND id <= :hi"
)


def _pragmas(con: sqlite3.Connection, cache_mib: int) -> None:
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute(f"PRAGMA cache_size = -{cache_mib * 1024}")
    con.execute("PRAGMA temp_store = FILE")


#: the meta row of a store still being built (live): {"records": N, "events": N}
BUILDING_KEY = "building"


def _publish(con: sqlite3.Connection, records: int, events: int) -> None:
    value = json.dumps({"records": records, "events": events})
    con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (BUILDING_KEY, value))


def assemble(store: Path, chunks: Iterator[Path], live: bool = False) -> dict[str, Any]:
    """The indexing side: copy each chunk into the store (in order), derive its events
    and its full-text index, delete it; then sort the time index.

    ``live``: the store is read while it grows (:mod:`forensics.timeline.growing`):
    WAL (readers see each chunk once committed, never half of one), the time index
    kept from the start instead of sorted at the end, and the progress so far in
    the meta row :data:`BUILDING_KEY`, committed with each chunk."""
    con = sqlite3.connect(store, isolation_level=None)
    try:
        con.execute("PRAGMA page_size = 8192")
        _pragmas(con, 48)
        if live:
            con.execute("PRAGMA journal_mode = WAL")
        con.executescript(_STORE_SCHEMA)
        offset = 0
        n_events = 0
        if live:
            con.execute("CREATE INDEX events_ts ON events(ts)")
            con.execute("INSERT INTO meta VALUES ('schema', ?)", (json.dumps(SCHEMA_VERSION),))
            _publish(con, 0, 0)
        for chunk in chunks:
            con.execute("ATTACH DATABASE ? AS chunk", (str(chunk),))
            con.execute("BEGIN")
            n = con.execute(_COPY_CHUNK, {"offset": offset}).rowcount
            rng = {"lo": offset, "hi": offset + n}
            n_events += con.execute(_DERIVE_EVENTS, rng).rowcount
            con.execute(_INDEX_TEXT, rng)
            con.execute("INSERT INTO main.members SELECT * FROM chunk.members")
            con.execute(
                "INSERT INTO main.problems(what, member, line, detail)"
                " SELECT what, member, line, detail FROM chunk.problems ORDER BY rowid"
            )
            if live:
                _publish(con, offset + n, n_events)
            con.execute("COMMIT")
            con.execute("DETACH DATABASE chunk")
            chunk.unlink()
            offset += n
        con.execute("PRAGMA threads = 2")
        con.execute("CREATE INDEX IF NOT EXISTS events_ts ON events(ts)")
        # min and max each walk one edge of the index; count(*) would read it all
        t_min = con.execute("SELECT min(ts) FROM events").fetchone()[0]
        t_max = con.execute("SELECT max(ts) FROM events").fetchone()[0]
        return {"events": n_events, "records": offset, "time_min": t_min, "time_max": t_max}
    finally:
        con.close()


class Indexer:
    """The indexing process, handed finished chunk files through a pipe."""

    def __init__(self, store: Path, live: bool = False) -> None:
        self.store = store
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forensics.timeline.indexer", str(store)]
            + (["--live"] if live else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

    def send(self, chunk: Path) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{chunk}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.finish()  # raises with what the indexer said

    def end(self) -> None:
        """No more chunks: the indexer finishes (sorts the time index)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
            self.proc.stdin = None

    def finish(self) -> dict[str, Any]:
        self.end()
        out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            raise OutputError(f"indexing the timeline failed: {last}")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.stdin = None
        self.proc.communicate()


class GrowingHooks(Protocol):
    """What a live build tells the reader of its growing store."""

    def started(self, store: Path) -> None:
        """The first chunk is on its way into ``store`` (a WAL database; readable once
        its meta has :data:`BUILDING_KEY`)."""

    def sealing(self) -> None:
        """Every connection to the store must be closed when this returns: it is
        made a plain (rollback-journal) database, then moved to its final name."""


SEAL_WAIT_S = 30.0


def _seal(con: sqlite3.Connection) -> None:
    """Out of WAL (the finished store is one self-contained file). SQLite refuses while
    another connection is open, without waiting: retry while a reader finishes."""
    deadline = time.monotonic() + SEAL_WAIT_S
    while True:
        try:
            mode = con.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlite3.OperationalError:
            mode = "wal"
        if mode == "delete":
            return
        if time.monotonic() > deadline:
            raise OutputError("the timeline store is still open elsewhere: it cannot be sealed")
        time.sleep(0.02)


class StoreSink(Sink):
    """Writes rows into chunk files beside ``store`` and hands them to the indexer."""

    def __init__(
        self,
        store: Path,
        progress: Callable[[str], None] | None = None,
        growing: GrowingHooks | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self._progress = progress
        #: a live build (read while it grows): told when the first chunk is on its way
        #: and before the store is sealed (see :class:`GrowingHooks`)
        self.growing = growing
        self.indexer = Indexer(store, live=growing is not None)
        if growing is not None:
            self.batch = LIVE_FIRST_BATCH  # the first file rows come sooner
        self.records = 0
        self.by_source: Counter[int] = Counter()  # events of the one-event records
        self._chunks = 0
        self._in_chunk = 0
        self._members_sent = 0
        self._problems_sent = 0
        self.con = self._new_chunk()

    def _new_chunk(self) -> sqlite3.Connection:
        self._chunks += 1
        self._chunk_path = self.store.with_name(f"{self.store.name}.chunk{self._chunks:05d}")
        con = sqlite3.connect(self._chunk_path, isolation_level=None)
        _pragmas(con, 16)
        con.executescript(_CHUNK_SCHEMA)
        con.execute("BEGIN")
        self._in_chunk = 0
        return con

    def _hand_over(self, last: bool = False) -> None:
        """Close the chunk (with the members and problems met so far) and send it."""
        con = self.con
        members = sorted((mid, name) for name, mid in self.members.items())
        con.executemany("INSERT INTO members VALUES (?, ?)", members[self._members_sent :])
        self._members_sent = len(members)
        con.executemany(
            "INSERT INTO problems VALUES (?, ?, ?, ?)", self.problems[self._problems_sent :]
        )
        self._problems_sent = len(self.problems)
        con.execute("COMMIT")
        con.close()
        self.indexer.send(self._chunk_path)
        if self.growing is not None and self._chunks == 1:
            self.growing.started(self.store)
        if not last:
            self.con = self._new_chunk()

    def flush(self) -> None:
        if self.file_rows:
            self.con.executemany(_INSERT_FILE, self.file_rows)
            self._in_chunk += len(self.file_rows)
        if self.event_rows:
            self.con.executemany(_INSERT_EVENT, self.event_rows)
            self._in_chunk += len(self.event_rows)
            for row in self.event_rows:
                self.by_source[row[0]] += 1
        super().flush()
        if self._progress is not None:
            self._progress(f"extracting events: {self.records + self._in_chunk:,} records read")
        if self._in_chunk >= self._chunk_limit():
            self.records += self._in_chunk
            self._hand_over()

    def _chunk_limit(self) -> int:
        if self.growing is None:
            return CHUNK_RECORDS
        # live: the first rows go at once, in small batches, until there is a first
        # screen and more; then smaller chunks than a plain build's, more often
        if self.records < LIVE_FIRST_BATCH:
            return 1
        self.batch = BATCH
        return LIVE_CHUNK_RECORDS

    def finish(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Send what remains, wait for the indexer, write the meta; returns it."""
        self.flush()
        self.records += self._in_chunk
        self._hand_over(last=True)
        result = self.indexer.finish()
        full = dict(meta)
        full.update(result)
        by = {SOURCE_BY_NUM.get(k, str(k)): v for k, v in self.by_source.items()}
        fs_events = int(result["events"]) - sum(self.by_source.values())
        if fs_events:
            by["fs"] = fs_events
        full.update(
            {
                "schema": SCHEMA_VERSION,
                "by_source": dict(sorted(by.items())),
                "counts": dict(sorted(self.counts.items())),
                "warnings": self.warnings,
            }
        )
        con = sqlite3.connect(self.store, isolation_level=None)
        try:
            con.execute("BEGIN")
            con.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False, sort_keys=True)) for k, v in full.items()],
            )
            con.execute("DELETE FROM meta WHERE key = ?", (BUILDING_KEY,))
            con.execute("COMMIT")
            if self.growing is not None:
                self.growing.sealing()
                _seal(con)
        finally:
            con.close()
        return full

    def abort(self) -> None:
        """Stop after a failure: end the indexer, drop the chunk files."""
        try:
            self.indexer.abort()
        finally:
            self.con.close()
            for chunk in self.store.parent.glob(f"{self.store.name}.chunk*"):
                chunk.unlink(missing_ok=True)


def read_meta(con: sqlite3.Connection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in con.execute("SELECT key, value FROM meta"):
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out
