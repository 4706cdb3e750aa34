"""The memory-acquisition test program (memtarget.c), built statically."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.hostile import build_static
from tui.demo.launch import LabContainer

SOURCE = Path(__file__).with_name("memtarget.c")
IN_CONTAINER = "/memtarget"


def build_memtarget(out_dir: Path) -> Path:
    """Compile memtarget.c statically (like hostile.c) into ``out_dir/memtarget``."""
    return build_static(SOURCE, out_dir)


def run_memtarget(box: LabContainer, *args: str, log: Path, env: tuple[str, ...] = ()) -> int:
    """Start ``/memtarget ARGS`` in the runc container, detached, its standard output
    and error appended to ``log`` (a host file); returns its host pid."""
    assert box.runtime == "runc"
    pidfile = log.with_suffix(".pid")
    envs = [x for e in env for x in ("--env", e)]
    with log.open("ab") as out:
        subprocess.run(
            ["runc", "exec", "-d", "--pid-file", str(pidfile), *envs, box.container_id,
             IN_CONTAINER, *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True, timeout=30,
        )  # fmt: skip
    deadline = time.monotonic() + 60  # runc writes it at once; a loaded machine is slow
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise RuntimeError(f"no pid file from runc exec {args}")


__all__ = ["IN_CONTAINER", "build_memtarget", "run_memtarget"]
