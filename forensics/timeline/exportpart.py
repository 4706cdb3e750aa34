"""The second half of a large export, written by a second process on the second core.

``python -m forensics.timeline.exportchild STORE FORMAT HOST TS ID OUT`` writes the
lines of every event from (TS, ID) on, in timeline order (no header), to OUT (a
temporary file of the export, see :func:`forensics.timeline.export.write_export`),
and prints how many. The exporting process writes the events before (TS, ID)
meanwhile, then appends OUT: an export's wall time is about halved on two
idle cores; the bytes are those of one process writing everything.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from forensics.errors import OutputError

#: a whole-timeline export of at least this many events is written by two processes
PARALLEL_MIN = 200_000


class PartWriter:
    """The second process, started on (TS, ID) and waited for by :meth:`finish`."""

    def __init__(self, store: Path, fmt: str, host: str, key: tuple[int, int], out: Path):
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forensics.timeline.exportchild", str(store), fmt, host,
             str(key[0]), str(key[1]), str(out)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )  # fmt: skip

    def finish(self) -> int:
        """Wait for the part; returns its line count (OutputError when it failed)."""
        out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            raise OutputError(f"writing the export's second half failed: {last}")
        return int(out.strip().splitlines()[-1])

    def abort(self) -> None:
        """Stop the process if it still runs; remove its file."""
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.communicate()
        with contextlib.suppress(FileNotFoundError):
            self.out.unlink()
