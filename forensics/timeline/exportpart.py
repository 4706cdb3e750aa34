"""The second half of a large export, written by a second process on the second core.

``python -m forensics.timeline.exportchild STORE FORMAT HOST TS ID OUT`` writes the
lines of every event from (TS, ID) on, in timeline order (no header), to OUT (a
temporary file of the export, see :func:`forensics.timeline.export.write_export`),
and prints how many. The exporting process writes the events before (TS, ID)
meanwhile, then appends OUT: an export's wall time is about halved on two
idle cores; the bytes are those of one process writing everything.
``python -m forensics.timeline.exportchild --case SPEC`` does the same for a
case's merged export from a time on (:func:`forensics.timeline.case.write_case_export`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from forensics.errors import OutputError

#: a whole-timeline export of at least this many events is written by two processes
PARALLEL_MIN = 200_000


class ChildPart:
    """A second process, ``python -m MODULE ARGS…``, writing its part of an export to
    ``out`` and printing its line count; waited for by :meth:`finish`."""

    def __init__(self, module: str, args: Sequence[str], out: Path) -> None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

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


class PartWriter(ChildPart):
    """One bundle's second half, from the event (TS, ID) on (:mod:`.exportchild`)."""

    def __init__(self, store: Path, fmt: str, host: str, key: tuple[int, int], out: Path):
        args = [str(store), fmt, host, str(key[0]), str(key[1]), str(out)]
        super().__init__("forensics.timeline.exportchild", args, out)


def write_in_two(
    f: IO[str], out: str | Path, start: Callable[[Path], ChildPart], first: Callable[[], int]
) -> int:
    """Write an export's first half to ``f`` with ``first`` while the second process
    ``start(part)`` writes the rest to a temporary file beside ``out``, then append
    that file: the bytes of one process writing everything, in about half the wall
    time on two idle cores. Returns the line count of both halves."""
    dest = Path(out)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    part = Path(name)
    writer = start(part)
    try:
        n = first()
        n += writer.finish()
        f.flush()
        with part.open("rb") as src:
            shutil.copyfileobj(src, f.buffer, 1 << 20)  # type: ignore[attr-defined]
    finally:
        writer.abort()
    return n
