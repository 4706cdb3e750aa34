"""What one triage session knows and has done: the target, and a custody log of
the examiner's actions that every capture started from the session continues.

No Textual here: the screens call ``record()``; a capture gets ``custody_for_capture()``.
"""

from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.targets.base import TargetInfo
from forensics.custody import CustodyLog, default_operator


@dataclass
class SessionOptions:
    output_dir: Path = field(default_factory=Path.cwd)
    examiner: str = field(default_factory=default_operator)
    case: str | None = None
    procfs: str = "/proc"
    refresh_s: float = 2.0
    files: str = "changed"
    kubeconfig: str | None = None
    context: str | None = None
    k8s_image: str | None = None
    #: open a local target's dashboard on its findings view (`exuvia triage` does)
    findings_first: bool = False


class TriageSession:
    def __init__(self, opts: SessionOptions) -> None:
        self.opts = opts
        self.log = CustodyLog(examiner=opts.examiner)
        self._lock = threading.Lock()
        #: pod container uri -> (has a shell, where/why), as the agent found it
        self.pod_shell: dict[str, tuple[bool | None, str]] = {}
        self.log.record("triage.started", tool="exuvia triage", case=opts.case)

    def record(self, action: str, **details: Any) -> None:
        """Record an examiner action (thread-safe: workers record too)."""
        with self._lock:
            self.log.record(f"triage.{action}", **details)

    def custody_for_capture(self) -> CustodyLog:
        """A log holding the session's actions so far; the capture appends to it."""
        with self._lock:
            return CustodyLog(
                examiner=self.log.examiner,
                host=self.log.host,
                clock=self.log.clock,
                entries=copy.deepcopy(self.log.entries),
            )

    def actions(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.log.entries)

    def bundle_path(self, target: TargetInfo | str, stamp: str) -> Path:
        """``OUTPUT_DIR/triage-NAME-STAMP.exv``, with ``-2``, ``-3``… when a capture
        of the same second (or its .partial/.incomplete) is already there."""
        if isinstance(target, TargetInfo):
            label = target.name or target.container_id or str(target.pid)
        else:
            label = target
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(label))[:48]
        base = f"triage-{safe}-{stamp}"
        n = 1
        while True:
            name = base if n == 1 else f"{base}-{n}"
            out = self.opts.output_dir / f"{name}.exv"
            taken = (
                out,
                out.with_name(out.name + ".partial"),
                out.with_name(out.name + ".incomplete"),
            )
            if not any(os.path.lexists(p) for p in taken):
                return out
            n += 1
