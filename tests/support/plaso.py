"""plaso (log2timeline) in its own virtualenv, for the interop test and the benchmark.

plaso pins many libraries of its own, so it is installed from the package index
into a virtualenv of its own, once: /var/cache/exuvia-bench/plaso-venv (or
``$EXUVIA_PLASO_VENV``). :func:`plaso_bin` installs it when missing and returns
the venv's bin directory; :class:`PlasoMissing` says why it could not.

    bin = plaso_bin()
    log2timeline(bin, body, storage); psort_jsonl(bin, storage, out)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("EXUVIA_PLASO_VENV", "/var/cache/exuvia-bench/plaso-venv"))
INSTALL_TIMEOUT = 1800


class PlasoMissing(RuntimeError):
    """plaso is not installed and could not be installed (the reason, one line)."""


def _python() -> str:
    # plaso's wheels need a CPython the index has builds for; this one is used
    return shutil.which("python3") or sys.executable


def plaso_bin(venv: Path = VENV) -> Path:
    """The bin directory holding ``log2timeline`` and ``psort`` (installed if missing)."""
    bin_dir = venv / "bin"
    if (bin_dir / "log2timeline").exists() and (bin_dir / "psort").exists():
        return bin_dir
    try:
        if not (bin_dir / "pip").exists():
            subprocess.run([_python(), "-m", "venv", str(venv)], check=True, timeout=300)
        proc = subprocess.run(
            [str(bin_dir / "pip"), "install", "-q", "plaso"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise PlasoMissing(f"could not create the plaso virtualenv in {venv}: {err}") from err
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise PlasoMissing(f"pip install plaso failed (exit {proc.returncode}): {last}")
    if not (bin_dir / "log2timeline").exists():
        raise PlasoMissing(f"pip installed plaso but {bin_dir}/log2timeline is missing")
    return bin_dir


def log2timeline_argv(bin_dir: Path, body: Path, storage: Path) -> list[str]:
    """Parse a TSK bodyfile with plaso's bodyfile parser only, into ``storage``."""
    return [
        str(bin_dir / "log2timeline"),
        "--quiet",
        "--status_view",
        "none",
        "--parsers",
        "bodyfile",
        "--storage_file",
        str(storage),
        "--unattended",
        str(body),
    ]


def psort_argv(bin_dir: Path, storage: Path, out: Path) -> list[str]:
    """Write every event of ``storage`` as JSON lines to ``out``."""
    return [
        str(bin_dir / "psort"),
        "--quiet",
        "--status_view",
        "none",
        "-o",
        "json_line",
        "-w",
        str(out),
        "--unattended",
        str(storage),
    ]
