"""Started lab containers: the handle every launcher returns, and the runc launcher.

A :class:`LabContainer` knows its runtime, id, name, host init PID and how to
clean up after itself completely (``stop()``, or use it as a context manager).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from forensics.errors import RuntimeToolError

from .rootfs import AFTER_START_FILE, APP_LOG, IMAGE_ENV, READY_MARK, TARGET_PATH
from .staging import RuncSetup

Step = Callable[[], None]

# Docker's default capability set: what a real container usually gets.
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
RUNC_IMAGE_NAME = "exuvia-demo/target:runc"


def unique_name(prefix: str = "exuvia-lab") -> str:
    """A fresh container name/id: ``exuvia-lab-1a2b3c4d``."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(argv: list[str], *, timeout: float = 60, check: bool = True) -> str:
    """Run a tool for the lab; RuntimeToolError with its last stderr line on failure."""
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as err:
        raise RuntimeToolError(f"{argv[0]} is not installed") from err
    except subprocess.TimeoutExpired as err:
        raise RuntimeToolError(f"{' '.join(argv[:3])} timed out after {timeout:g}s") from err
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else "no message"
        raise RuntimeToolError(f"{' '.join(argv[:3])} failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``cond`` until true or ``timeout`` seconds pass; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


@dataclass
class LabContainer:
    """A started target container. ``stop()`` removes every trace of it."""

    runtime: str
    container_id: str
    name: str
    pid: int
    uri: str
    image: str | None = None
    log_path: str | None = None
    bundle: str | None = None
    _halt: Step | None = field(default=None, repr=False)
    _cleanup: list[Step] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def root(self) -> str:
        """The container's root filesystem as seen through /proc."""
        return f"/proc/{self.pid}/root"

    def is_ready(self) -> bool:
        """The target logged "ready" and wrote its after-start file."""
        try:
            with open(f"{self.root}{APP_LOG}", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return False
        return READY_MARK in text and os.path.exists(f"{self.root}{AFTER_START_FILE}")

    def wait_ready(self, timeout: float = 20.0) -> LabContainer:
        """Block until ready; RuntimeToolError if the target exits or times out."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if not pid_alive(self.pid):
                raise RuntimeToolError(
                    f"{self.runtime} target {self.name} exited before it was ready"
                    + (f" (log: {self.log_path})" if self.log_path else "")
                )
            if time.monotonic() > deadline:
                raise RuntimeToolError(
                    f"{self.runtime} target {self.name} not ready after {timeout:g}s"
                )
            time.sleep(0.05)
        return self

    def halt(self) -> None:
        """Stop the target's processes but keep the container (it shows as stopped)."""
        if self._halt is not None:
            self._halt()
        wait_until(lambda: not pid_alive(self.pid), 10)

    def stop(self) -> None:
        """Stop and remove the container and everything made for it (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[str] = []
        for step in reversed(self._cleanup):
            try:
                step()
            except (RuntimeToolError, OSError) as err:
                errors.append(str(err))
        if errors:
            raise RuntimeToolError(f"cleaning up {self.name}: " + "; ".join(errors))

    def __enter__(self) -> LabContainer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def require_root(what: str) -> None:
    """RuntimeToolError unless running as root."""
    if os.geteuid() != 0:
        raise RuntimeToolError(f"{what} needs root")


# --- runc --------------------------------------------------------------------


def runc_config(
    args: list[str], env: list[str], hostname: str, setup: RuncSetup | None = None
) -> dict[str, object]:
    """An OCI runtime config for the target: no terminal, no rlimits, own namespaces."""
    setup = setup or RuncSetup()
    caps = list(DEFAULT_CAPS) + [c for c in setup.add_caps if c not in DEFAULT_CAPS]
    sets = ("bounding", "effective", "permitted") + (("ambient", "inheritable")
                                                    if setup.add_caps else ())  # fmt: skip
    network: dict[str, str] = {"type": "network"}
    if setup.netns:
        network["path"] = setup.netns
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": setup.user[0], "gid": setup.user[1]},
            "args": args,
            "env": env,
            "cwd": "/",
            "capabilities": {k: caps for k in sets},
            # no "rlimits": this sandbox cannot set them (no CAP_SYS_RESOURCE)
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "annotations": {
            "org.opencontainers.image.ref.name": RUNC_IMAGE_NAME,
            "io.exuvia.lab": "true",
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            *setup.mounts,
        ],
        "linux": {
            "namespaces": [network, *({"type": t} for t in ("pid", "ipc", "uts", "mount"))],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"],
        },
    }


def _runc_state(cid: str) -> dict[str, object] | None:
    try:
        data = json.loads(run(["runc", "state", cid], timeout=15))
    except (RuntimeToolError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def start_runc(
    rootfs: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    name: str | None = None,
    env: list[str] | None = None,
    ready_timeout: float = 20.0,
    setup: RuncSetup | None = None,
) -> LabContainer:
    """Run the target under runc on an overlay of ``rootfs``, detached.

    The bundle lives in ``workdir/<id>/`` (config.json, upper/, work/, the
    overlay mount rootfs/ and stdio.log, the container's stdout+stderr).
    """
    require_root("running a runc container")
    if shutil.which("runc") is None:
        raise RuntimeToolError("runc is not installed")
    cid = name or unique_name()
    bundle = Path(workdir).resolve() / cid
    lower = Path(rootfs).resolve()
    handle = LabContainer("runc", cid, cid, 0, f"runc://{cid}", image=RUNC_IMAGE_NAME)
    handle.bundle = str(bundle)
    for step in setup.cleanup if setup is not None else []:
        handle._cleanup.append(step)
    try:
        for sub in ("upper", "work", "rootfs"):
            (bundle / sub).mkdir(parents=True)
        handle._cleanup.append(lambda: shutil.rmtree(bundle, ignore_errors=True))
        merged = bundle / "rootfs"
        opts = f"lowerdir={lower},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)])
        handle._cleanup.append(lambda: _unmount(merged))
        config = runc_config([TARGET_PATH], list(env or IMAGE_ENV), "exuvia-demo", setup)
        (bundle / "config.json").write_text(json.dumps(config, indent=2))
        log = bundle / "stdio.log"
        handle.log_path = str(log)
        handle._cleanup.append(lambda: _runc_remove(cid))
        with open(log, "ab") as out:
            proc = subprocess.run(
                [
                    "runc",
                    "run",
                    "-d",
                    "--bundle",
                    str(bundle),
                    "--pid-file",
                    str(bundle / "init.pid"),
                    cid,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=60,
                check=False,
            )
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise RuntimeToolError(f"runc run failed (exit {proc.returncode}): {tail[0]}")
        handle.pid = int((bundle / "init.pid").read_text().strip())
        handle._halt = lambda: _runc_kill(cid)
        handle.wait_ready(ready_timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


def _runc_kill(cid: str, timeout: float = 5.0) -> None:
    def stopped() -> bool:
        state = _runc_state(cid)
        return state is None or state.get("status") == "stopped"

    if stopped():
        return
    run(["runc", "kill", cid, "TERM"], check=False)
    if not wait_until(stopped, timeout):
        run(["runc", "kill", "--all", cid, "KILL"], check=False)
        wait_until(stopped, timeout)


def _runc_remove(cid: str) -> None:
    if _runc_state(cid) is None:
        return
    _runc_kill(cid)
    run(["runc", "delete", "-f", cid])


def _unmount(path: Path) -> None:
    if not os.path.ismount(path):
        return
    proc = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and os.path.ismount(path):
        # busy (a process still holds it): detach lazily, it goes when released
        run(["umount", "-l", str(path)])
