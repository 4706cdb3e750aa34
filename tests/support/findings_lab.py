"""A second staged incident for the findings tests: escalation in a non-root workload.

The image is the demo target's (run clean: LAB_MODE=clean) plus a program its
package metadata claims (/usr/bin/hello, a distroless dpkg status.d entry with
md5sums) and the hostile helper (tests/support/hostile.c). The workload runs
as uid 1000 with CAP_SYS_PTRACE added. Once it is up, :func:`stage` does what
an intruder with access to the container would:

* replaces /usr/bin/hello with other bytes (the package's md5 no longer matches)
  and writes /etc/ld.so.preload, both through the container's root;
* ``runc exec --user 0:0`` the helper, which rewrites its command line to
  "/usr/sbin/sshd -D" (a root process in a non-root workload, claiming to be
  another program);
* ``runc exec`` the helper as the workload's user to trace the worker
  (PTRACE_SEIZE: the worker's TracerPid becomes the helper's pid).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import hostile
from tui.demo.launch import LabContainer, start_runc
from tui.demo.rootfs import IMAGE_ENV, build_rootfs, build_target_binary, find_compiler
from tui.demo.staging import RuncSetup

HELLO = "/usr/bin/hello"
SSHD = "/usr/sbin/sshd -D"
PRELOAD_LINE = "/tmp/.libhook.so\n"
UID = 1000


@dataclass
class Staged:
    box: LabContainer
    sshd_pid: int  # host pid of the helper claiming to be sshd (root)
    tracer_pid: int  # host pid of the helper tracing the worker
    worker_pid: int


def build_image(wd: Path) -> Path:
    """The escalation lab's rootfs in ``wd/rootfs``."""
    root = build_rootfs(wd / "rootfs", build_target_binary(wd / "build"))
    (wd / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello");return 0;}\n')
    (root / "usr/bin").mkdir(parents=True)
    hello = root / HELLO.lstrip("/")
    subprocess.run(
        [find_compiler(), "-static", "-O2", "-o", str(hello), str(wd / "hello.c")], check=True
    )
    status_d = root / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    (status_d / "hello").write_text(
        "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nSource: hello\n"
        "Description: example package\n"
    )
    md5 = hashlib.md5(hello.read_bytes()).hexdigest()  # dpkg's own digest
    (status_d / "hello.md5sums").write_text(f"{md5}  usr/bin/hello\n")
    helper = hostile.build_hostile(wd / "hostile-build")
    dest = root / hostile.IN_CONTAINER.lstrip("/")
    dest.write_bytes(helper.read_bytes())
    os.chmod(dest, 0o755)
    os.chown(root / "var/log/app", UID, UID)  # the workload's own log directory
    return root


def start(wd: Path) -> LabContainer:
    setup = RuncSetup(user=(UID, UID), add_caps=["CAP_SYS_PTRACE"])
    return start_runc(
        build_image(wd), wd / "bundles", env=[*IMAGE_ENV, "LAB_MODE=clean"], setup=setup
    )


def _children(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode()
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        if ppid == pid:
            out[name] = int(entry)
    return out


def _nspid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise RuntimeError(f"no NSpid for {pid}")


def _exec(box: LabContainer, log: Path, *args: str, user: str | None = None) -> int:
    pidfile = log.with_suffix(f".{len(args)}.{time.monotonic_ns()}.pid")
    argv = ["runc", "exec", "-d", "--pid-file", str(pidfile)]
    if user is not None:
        argv += ["--user", user]
    with log.open("ab") as out:
        subprocess.run([*argv, box.container_id, *args], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, check=True, timeout=30)  # fmt: skip
    deadline = time.monotonic() + 60  # runc writes it at once; a loaded machine is slow
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise RuntimeError(f"no pid file from runc exec {args}")


def _traced_by(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def stage(box: LabContainer, log: Path) -> Staged:
    """Do the intruder's part in the running lab container (see the module doc)."""
    root = box.root
    with open(f"{root}{HELLO}", "r+b") as fh:  # same size, other bytes: a patched binary
        data = bytearray(fh.read())
        data[-64:] = b"\xcc" * 64
        fh.seek(0)
        fh.write(data)
    Path(f"{root}/etc/ld.so.preload").write_text(PRELOAD_LINE)
    worker = _children(box.pid)["worker"]
    sshd = _exec(box, log, hostile.IN_CONTAINER, "argv", SSHD, user="0:0")
    tracer = _exec(box, log, hostile.IN_CONTAINER, "trace", str(_nspid(worker)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{sshd}/cmdline", "rb") as fh:
            rewritten = fh.read().startswith(SSHD.encode())
        if rewritten and _traced_by(worker) == tracer:
            return Staged(box, sshd, tracer, worker)
        time.sleep(0.05)
    raise RuntimeError(f"staging did not take (see {log})")


__all__ = ["HELLO", "SSHD", "UID", "Staged", "stage", "start"]
