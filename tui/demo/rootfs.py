"""Build the demo target: a static binary and a shell-less root filesystem.

The rootfs holds only the binary and a few data files (no shell, no package
manager), the shape of a distroless image. Building is deterministic: the same
binary gives the same tree, with fixed modes and times.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from forensics.errors import RuntimeToolError

TARGET_SOURCE = Path(__file__).with_name("target.c")
TARGET_PATH = "/app/target"  # where the binary lives inside the rootfs
IMAGE_EPOCH = 1577836800  # 2020-01-01T00:00:00Z: the mtime of every file in the image
DEFAULT_PORT = 8080
IMPLANT_PORT = 4444

# The image's environment. The two secrets exist for redaction tests.
IMAGE_ENV: tuple[str, ...] = (
    "PATH=/",
    "API_TOKEN=s3cr3t-demo-token",
    "DB_PASSWORD=hunter2",
    f"APP_PORT={DEFAULT_PORT}",
)
FAKE_SECRETS: dict[str, str] = {"API_TOKEN": "s3cr3t-demo-token", "DB_PASSWORD": "hunter2"}

# Paths (inside the container) the target creates or changes after start.
AFTER_START_FILE = "/tmp/after-start.txt"
CHANGED_CONFIG = "/etc/app/app.conf"
DROPPED_BINARY = "/tmp/.x"
APP_LOG = "/var/log/app/app.log"
UNIX_SOCKET = "/tmp/app.sock"
READY_MARK = "]: ready\n"  # the line "<time> INFO main[PID]: ready"

_FILES: dict[str, tuple[int, str]] = {
    "etc/app/app.conf": (
        0o644,
        "# exuvia demo application configuration\n"
        "listen = 0.0.0.0:8080\n"
        "log_file = /var/log/app/app.log\n"
        "log_level = info\n",
    ),
    "etc/passwd": (
        0o644,
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "app:x:1000:1000:demo application:/home/app:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    ),
    "etc/group": (0o644, "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
    "etc/os-release": (
        0o644,
        'PRETTY_NAME="Distroless (exuvia demo) 12"\n'
        'NAME="Distroless"\n'
        "ID=distroless\n"
        'VERSION_ID="12"\n'
        'HOME_URL="https://github.com/GoogleContainerTools/distroless"\n',
    ),
}
_DIRS: dict[str, int] = {
    "app": 0o755,
    "etc": 0o755,
    "etc/app": 0o755,
    "var": 0o755,
    "var/log": 0o755,
    "var/log/app": 0o755,
    "tmp": 0o1777,
    "proc": 0o555,
    "sys": 0o555,
    "dev": 0o755,
    "home": 0o755,
    "home/app": 0o750,
    "root": 0o700,
}


def find_compiler() -> str:
    """The C compiler to use: $CC, else gcc, else cc."""
    env_cc = os.environ.get("CC")
    for cand in (env_cc, "gcc", "cc"):
        if cand and shutil.which(cand):
            return cand
    raise RuntimeToolError("no C compiler found (install gcc, or set CC) to build the demo target")


def build_target_binary(out_dir: str | os.PathLike[str]) -> Path:
    """Compile target.c with ``-static -O2`` into ``out_dir/target`` (cached by source hash)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    binary = out / "target"
    stamp = out / "target.sha256"
    source = TARGET_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return binary
    cc = find_compiler()
    tmp = out / "target.partial"
    proc = subprocess.run(
        [cc, "-static", "-O2", "-Wall", "-o", str(tmp), str(TARGET_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit {proc.returncode}"
        raise RuntimeToolError(f"compiling the demo target with {cc} -static failed: {detail}")
    tmp.replace(binary)
    stamp.write_text(digest + "\n")
    return binary


def build_rootfs(dest: str | os.PathLike[str], binary: str | os.PathLike[str]) -> Path:
    """Create (or recreate) a shell-less rootfs at ``dest`` around ``binary``."""
    root = Path(dest)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    os.chmod(root, 0o755)
    for rel, mode in _DIRS.items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(root / rel, mode)
    for rel, (mode, text) in _FILES.items():
        path = root / rel
        path.write_text(text)
        os.chmod(path, mode)
    app = root / TARGET_PATH.lstrip("/")
    shutil.copyfile(binary, app)
    os.chmod(app, 0o755)
    if os.geteuid() == 0:
        os.chown(root / "home/app", 1000, 1000)
    # fixed times, deepest first so setting a child does not touch its parent again
    for dirpath, dirnames, filenames in sorted(os.walk(root), key=lambda t: -len(t[0])):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (IMAGE_EPOCH, IMAGE_EPOCH), follow_symlinks=False)
    os.utime(root, (IMAGE_EPOCH, IMAGE_EPOCH))
    return root


def build_demo_rootfs(workdir: str | os.PathLike[str]) -> Path:
    """Compile the target and build ``workdir/rootfs``; returns the rootfs path."""
    wd = Path(workdir)
    binary = build_target_binary(wd / "build")
    return build_rootfs(wd / "rootfs", binary)
