"""Build small real Go programs for tests (module with a dependency from the proxy).

The build cache and module cache live in one directory shared by every test
session (``$EXUVIA_GO_CACHE``, default ``<tmp>/exuvia-go-cache``), so only the
first build downloads and compiles anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

GO = shutil.which("go") or "/usr/local/go/bin/go"
DEP = "github.com/google/uuid"
DEP_VERSION = "v1.6.0"

MAIN = """package main

import (
\t"fmt"
\t"os"

\t"github.com/google/uuid"
)

func main() {
\tfmt.Println(uuid.NewSHA1(uuid.NameSpaceURL, []byte(os.Args[0])).String())
}
"""


def have_go() -> bool:
    return Path(GO).is_file() and os.access(GO, os.X_OK)


def go_env() -> dict[str, str]:
    cache = Path(os.environ.get("EXUVIA_GO_CACHE", Path(tempfile.gettempdir()) / "exuvia-go-cache"))
    env = dict(os.environ)
    env.update(
        {
            "GOPATH": str(cache / "gopath"),
            "GOMODCACHE": str(cache / "gopath" / "pkg" / "mod"),
            "GOCACHE": str(cache / "build"),
            "GOFLAGS": "-mod=mod",
            "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local",
            "GOSUMDB": "off",  # only the module proxy is reachable here
        }
    )
    return env


def build_go(
    out_dir: Path, name: str = "goapp", ldflags: str = "", module: str = "example.com/exuvia/goapp"
) -> Path:
    """Build a tiny module that depends on github.com/google/uuid; returns the binary."""
    src = out_dir / f"{name}-src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text(f"module {module}\n\ngo 1.22\n\nrequire {DEP} {DEP_VERSION}\n")
    (src / "main.go").write_text(MAIN)
    out = out_dir / name
    argv = [GO, "build", "-trimpath", "-o", str(out)]
    if ldflags:
        argv.append(f"-ldflags={ldflags}")
    proc = subprocess.run(
        argv, cwd=src, env=go_env(), capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go build failed: {proc.stderr.strip()[-2000:]}")
    return out


def go_version_m(binary: Path) -> tuple[str, str]:
    """(Go version, the indented lines) as ``go version -m`` prints them."""
    proc = subprocess.run(
        [GO, "version", "-m", str(binary)],
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go version -m failed: {proc.stderr.strip()}")
    first, _, rest = proc.stdout.partition("\n")
    version = first.split(": ", 1)[1]
    lines = [line.removeprefix("\t") for line in rest.rstrip("\n").split("\n")]
    return version, "\n".join(lines)
