"""``pid://PID``: any host process, and the /proc helpers every resolver shares."""

from __future__ import annotations

import os
import re
import stat
import time
from typing import Any

from forensics.errors import AccessDenied, TargetError, TargetGone

from .base import TargetInfo

_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": "zombie",
    "X": "dead",
    "I": "idle",
    "P": "parked",
}
_K8S_FILE_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\S+ (stdout|stderr) [FP] ")


def parse_pid(text: str) -> int:
    """A PID from URI text; TargetError for anything but a positive decimal number."""
    s = text.strip()
    if not s.isdigit() or not s.isascii() or int(s) <= 0:
        raise TargetError(f"bad PID {text!r}: expected a positive number, e.g. pid://1234")
    return int(s)


def require_process(pid: int, procfs: str = "/proc", what: str | None = None) -> None:
    """TargetGone unless ``pid`` exists under ``procfs``."""
    if pid <= 0 or not os.path.exists(f"{procfs}/{pid}/stat"):
        label = f"{what}: " if what else ""
        raise TargetGone(f"{label}process {pid} does not exist (it exited or never ran)")


def read_stat(pid: int, procfs: str = "/proc") -> dict[str, Any]:
    """Fields of ``/proc/PID/stat`` we use: comm, state, ppid, starttime (ticks)."""
    try:
        with open(f"{procfs}/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except FileNotFoundError as err:
        raise TargetGone(f"process {pid} does not exist (it exited or never ran)") from err
    except PermissionError as err:
        raise AccessDenied(f"cannot read /proc/{pid}/stat: permission denied") from err
    except OSError as err:
        if err.errno == 3:  # ESRCH: exited while we read
            raise TargetGone(f"process {pid} exited") from err
        raise TargetError(f"cannot read /proc/{pid}/stat: {err.strerror or err}") from err
    # comm may hold spaces and parentheses: it ends at the last ')'
    lpar, rpar = raw.find(b"("), raw.rfind(b")")
    if lpar < 0 or rpar < lpar:
        raise TargetError(f"unreadable /proc/{pid}/stat")
    comm = raw[lpar + 1 : rpar].decode("utf-8", "replace")
    rest = raw[rpar + 2 :].split()
    # rest[0] is field 3 (state); field 22 (starttime) is rest[19]
    return {
        "comm": comm,
        "state": rest[0].decode("ascii", "replace"),
        "ppid": int(rest[1]),
        "starttime_ticks": int(rest[19]),
    }


def boot_time_ns() -> int:
    """When the system booted, UTC ns (CLOCK_REALTIME - CLOCK_BOOTTIME, no rounding)."""
    return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def process_start_ns(pid: int, procfs: str = "/proc") -> int | None:
    """When ``pid`` started, UTC ns (clock-tick resolution), or None if unreadable."""
    try:
        ticks = read_stat(pid, procfs)["starttime_ticks"]
    except TargetError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return boot_time_ns() + int(ticks) * 1_000_000_000 // hz


def stdio_log_paths(pid: int, procfs: str = "/proc") -> list[str]:
    """Host files the process's stdout/stderr (fd 1, 2) point at, if regular files.

    This is how a container started with its output redirected to a file (runc
    run -d > log) keeps its log; it is also the fallback for any runtime.
    """
    out: list[str] = []
    for fd in (1, 2):
        link = f"{procfs}/{pid}/fd/{fd}"
        try:
            target = os.readlink(link)
            st = os.stat(link)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or not target.startswith("/"):
            continue
        if target.endswith(" (deleted)") or target in out:
            continue
        out.append(target)
    return out


def sniff_log_format(path: str) -> str | None:
    """A log file's format from its first line.

    "k8s-file" (also the CRI format) or "json-file", "raw" for other text, None
    when unreadable or empty.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    line = head.split(b"\n", 1)[0]
    if not line:
        return None
    if line.startswith(b'{"log":') or line.startswith(b'{"stream":'):
        return "json-file"
    if _K8S_FILE_LINE.match(line):
        return "k8s-file"
    return "raw"


def _read_text(path: str, limit: int = 65536) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _pid_ns(pid: int | str, procfs: str) -> str | None:
    try:
        return os.readlink(f"{procfs}/{pid}/ns/pid")
    except OSError:
        return None


def process_facts(pid: int, procfs: str = "/proc") -> dict[str, Any]:
    """Small, raw facts about a process for ``runtime_facts``."""
    st = read_stat(pid, procfs)
    facts: dict[str, Any] = {"comm": st["comm"], "state": st["state"], "ppid": st["ppid"]}
    cmdline = _read_text(f"{procfs}/{pid}/cmdline", 8192)
    if cmdline is not None:
        facts["cmdline"] = cmdline.rstrip("\0").split("\0") if cmdline else []
    try:
        facts["exe"] = os.readlink(f"{procfs}/{pid}/exe")
    except OSError:
        facts["exe"] = None
    ns = _pid_ns(pid, procfs)
    facts["pid_ns"] = ns
    own = _pid_ns("self", procfs)
    facts["other_pid_ns"] = bool(ns and own and ns != own)
    cgroup = _read_text(f"{procfs}/{pid}/cgroup", 8192)
    if cgroup is not None:
        facts["cgroup"] = cgroup.splitlines()[:32]
    status = _read_text(f"{procfs}/{pid}/status", 8192) or ""
    for line in status.splitlines():
        if line.startswith(("Uid:", "Gid:")):
            key, _, val = line.partition(":")
            facts[key.lower()] = [int(v) for v in val.split()]
    return facts


def resolve_pid(ref: str, uri: str, procfs: str = "/proc") -> TargetInfo:
    """``pid://PID``: a host process (runtime "pid", no container fields)."""
    pid = parse_pid(ref)
    require_process(pid, procfs)
    facts = process_facts(pid, procfs)
    logs = stdio_log_paths(pid, procfs)
    return TargetInfo(
        uri=uri,
        runtime="pid",
        pid=pid,
        started_ns=process_start_ns(pid, procfs),
        status=_STATES.get(facts["state"], facts["state"]),
        log_paths=logs,
        log_format=(sniff_log_format(logs[0]) or "raw") if logs else None,
        runtime_facts=facts,
    )


def add_fallback_logs(info: TargetInfo, procfs: str = "/proc") -> None:
    """Fill ``log_paths`` from the init process's stdout/stderr when the runtime gave none."""
    if info.log_paths:
        return
    logs = stdio_log_paths(info.pid, procfs)
    if logs:
        info.log_paths = logs
        info.log_format = sniff_log_format(logs[0]) or "raw"
