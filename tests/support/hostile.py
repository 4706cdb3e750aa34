"""The hostile helper program (hostile.c) and ways to run it inside a runc container."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tui.demo.launch import LabContainer
from tui.demo.rootfs import find_compiler

SOURCE = Path(__file__).with_name("hostile.c")
IN_CONTAINER = "/hostile"


def build_static(source: Path, out_dir: Path) -> Path:
    """Compile a C test program statically (like the demo target) into
    ``out_dir/<its stem>``, once; the binary appears under its name only when whole."""
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / source.stem
    if not binary.exists():
        tmp = out_dir / f"{source.stem}.partial"
        subprocess.run(
            [find_compiler(), "-static", "-O2", "-Wall", "-o", str(tmp), str(source)],
            check=True,
            capture_output=True,
        )
        tmp.replace(binary)
    return binary


def build_hostile(out_dir: Path) -> Path:
    """Compile hostile.c into ``out_dir/hostile``."""
    return build_static(SOURCE, out_dir)


def install(box: LabContainer, binary: Path) -> None:
    """Copy the helper into the container's root (its overlay upper layer)."""
    dest = f"{box.root}{IN_CONTAINER}"
    shutil.copyfile(binary, dest)
    os.chmod(dest, 0o755)


def run_inside(box: LabContainer, *args: str, log: Path) -> int:
    """Start ``/hostile ARGS`` in the runc container, detached; returns its host pid."""
    assert box.runtime == "runc"
    pidfile = log.with_suffix(".pid")
    with log.open("ab") as out:
        subprocess.run(
            ["runc", "exec", "-d", "--pid-file", str(pidfile), box.container_id,
             IN_CONTAINER, *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True, timeout=30,
        )  # fmt: skip
    deadline = time.monotonic() + 60  # runc writes it at once; a loaded machine is slow
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise RuntimeError(f"no pid file from runc exec {args}")


__all__ = ["IN_CONTAINER", "build_hostile", "install", "run_inside"]
