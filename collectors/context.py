"""What every collector is given: where procfs is and which process is the target.

Roots are parameters (psutil's PROCFS_PATH idea), so tests and the in-pod agent
can point collectors anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CollectContext:
    """The target's init process as seen from the collecting host."""

    pid: int
    procfs: str = "/proc"
    redact: bool = True

    @property
    def proc_dir(self) -> str:
        """``/proc/<pid>`` under the configured procfs root."""
        return f"{self.procfs}/{self.pid}"

    @property
    def root_dir(self) -> str:
        """The target's root filesystem as the target sees it."""
        return f"{self.procfs}/{self.pid}/root"
