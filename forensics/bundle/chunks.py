"""Records in chunk members behind the checkpoints (format 2.0).

A collector's records go to ``artifacts/<collector>/NNNNNN.jsonl``, a new chunk
every :data:`CHUNK_RECORDS` records or :data:`CHUNK_BYTES` bytes, and whatever
is pending is written out right before each checkpoint (the writer calls
:meth:`RecordChunks.flush` first). So every record a capture produced before
its last checkpoint is in a member that checkpoint vouches for: a capture
killed mid-walk keeps its records, not only its copied files.

Readers accept chunks and the single ``artifacts/<collector>.jsonl`` of 1.x
bundles alike (:func:`forensics.bundle.format.record_collector`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from forensics.bundle.format import ARTIFACT_DIR

if TYPE_CHECKING:
    from forensics.bundle.writer import BundleWriter, MemberEntry

CHUNK_RECORDS = 4096
CHUNK_BYTES = 4 << 20
#: records between looks at the clock
_CLOCK_EVERY = 256


def chunk_name(collector: str, seq: int) -> str:
    return f"{ARTIFACT_DIR}{collector}/{seq:06d}.jsonl"


class RecordChunks:
    """One collector's records, written as chunk members of ``writer``."""

    def __init__(
        self,
        writer: BundleWriter,
        collector: str,
        *,
        max_records: int = CHUNK_RECORDS,
        max_bytes: int = CHUNK_BYTES,
        max_seconds: float | None = None,
    ) -> None:
        self._w = writer
        self.collector = collector
        self._max_records = max_records
        self._max_bytes = max_bytes
        # no record waits longer than the writer waits between checkpoints
        self._max_s = writer.checkpoint_seconds if max_seconds is None else max_seconds
        self._buf: list[bytes] = []
        self._bytes = 0
        self._since = time.monotonic()
        self.records = 0
        self.entries: list[MemberEntry] = []
        writer.before_checkpoint(self.flush)

    def add(self, line: bytes) -> None:
        """One record: a JSON object ending with a newline."""
        self._buf.append(line)
        self._bytes += len(line)
        self.records += 1
        n = len(self._buf)
        if (
            n >= self._max_records
            or self._bytes >= self._max_bytes
            or (n % _CLOCK_EVERY == 0 and time.monotonic() - self._since >= self._max_s)
        ):
            self.flush()

    def flush(self) -> None:
        """Write what is pending as the next chunk (nothing when nothing is)."""
        if not self._buf:
            return
        data = b"".join(self._buf)
        self._buf, self._bytes = [], 0
        self._since = time.monotonic()
        name = chunk_name(self.collector, len(self.entries) + 1)
        self.entries.append(self._w.add_bytes(name, data))

    def close(self) -> list[MemberEntry]:
        """Write the last chunk (an empty one if the collector had no records, so
        the collector's presence shows) and stop listening for checkpoints."""
        self._w.forget_checkpoint_hook(self.flush)
        self.flush()
        if not self.entries:
            self.entries.append(self._w.add_bytes(chunk_name(self.collector, 1), b""))
        return self.entries
