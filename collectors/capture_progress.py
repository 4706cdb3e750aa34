"""Progress of a capture as numbers a UI can show, and cooperative cancellation.

``ProgressTracker`` is a ``collectors.capture.Progress`` callable. Each call
turns (phase, FsStats) into a :class:`ProgressInfo` (phase, entries, files and
bytes done, rate, ETA) handed to ``sink``. When ``cancel`` is set it raises
CaptureInterrupted from inside the capture, which then seals what it has as an
``.incomplete`` bundle: the same path a SIGINT takes in `exuvia capture`.

The ETA needs a total: ``estimate`` (entries, bytes of regular files), e.g. from
collectors.fs.browse.TargetRoot.estimate. Without one, ETA is None.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from collectors.fs.acquire import FsStats
from forensics.errors import CaptureInterrupted

PHASES = ("processes", "network", "binaries", "filesystem", "logs")
CANCEL_REASON = "cancelled by the examiner"


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    phase: str
    elapsed_s: float
    entries: int = 0
    files: int = 0
    bytes_done: int = 0
    copied_files: int = 0
    rate_bps: float | None = None  # bytes hashed per second in the filesystem phase
    eta_s: float | None = None
    total_entries: int | None = None
    total_bytes: int | None = None

    @property
    def fraction(self) -> float | None:
        """Share of the filesystem walk done (by entries, else bytes), 0..1."""
        if self.phase in ("logs", "sealing", "done"):
            return 1.0
        if self.phase != "filesystem":
            return 0.0
        if self.total_entries:
            return min(1.0, self.entries / self.total_entries)
        if self.total_bytes:
            return min(1.0, self.bytes_done / self.total_bytes)
        return None


class ProgressTracker:
    def __init__(
        self,
        sink: Callable[[ProgressInfo], None],
        *,
        cancel: threading.Event | None = None,
        estimate: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.cancel = cancel or threading.Event()
        self.estimate = estimate
        self.clock = clock
        self.t0 = clock()
        self._fs_t0: float | None = None
        self._last: ProgressInfo | None = None  # later phases keep showing the walk's totals

    def __call__(self, phase: str, stats: FsStats | None) -> None:
        if self.cancel.is_set():
            raise CaptureInterrupted(CANCEL_REASON)
        self.sink(self.info(phase, stats))

    def info(self, phase: str, stats: FsStats | None) -> ProgressInfo:
        now = self.clock()
        total_e, total_b = self.estimate if self.estimate else (None, None)
        if stats is None and self._last is not None:
            return dataclasses.replace(self._last, phase=phase, elapsed_s=now - self.t0, eta_s=0.0)
        if stats is None:
            return ProgressInfo(phase, now - self.t0, total_entries=total_e, total_bytes=total_b)
        if self._fs_t0 is None:
            self._fs_t0 = now
        spent = max(now - self._fs_t0, 1e-6)
        rate = stats.hashed_bytes / spent if stats.hashed_bytes else None
        eta = None
        if total_e and stats.entries:
            # entries drive the walk's cost for small files; bytes for big ones: take the later
            left_by_entries = spent * (total_e - stats.entries) / stats.entries
            left_by_bytes = (total_b - stats.hashed_bytes) / rate if rate and total_b else 0.0
            eta = max(0.0, left_by_entries, left_by_bytes)
        self._last = ProgressInfo(
            phase,
            now - self.t0,
            entries=stats.entries,
            files=stats.files,
            bytes_done=stats.hashed_bytes,
            copied_files=stats.copied_files,
            rate_bps=rate,
            eta_s=eta,
            total_entries=total_e,
            total_bytes=total_b,
        )
        return self._last
