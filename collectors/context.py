"""What every collector is given: where procfs is and which process is the target.

Roots are parameters (psutil's PROCFS_PATH idea), so tests and the in-pod agent
can point collectors anywhere.
"""

from __future__ import annotations

import platform
import socket
from dataclasses import dataclass
from typing import Any


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


def examiner_host() -> dict[str, Any]:
    """The machine the capture runs on, as a manifest records it."""
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "machine": platform.machine(),
    }
