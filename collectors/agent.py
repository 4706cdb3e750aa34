"""The in-pod agent: ``python -m collectors.agent`` (or ``exuvia agent``).

It runs inside the collector image, in an ephemeral container that shares the
target container's PID namespace (or, node-level, in a privileged pod with
``hostPID``). It imports only ``collectors`` and ``forensics`` (never textual,
never the ``kubernetes`` client).

Three commands:

``wait [--idle S] [--linger S]``
    The container's main process. It does nothing but wait, so the client can
    ``exec`` captures into the container (whose output then never passes
    through the container log). It exits ``--linger`` seconds after the last
    capture finished, or ``--idle`` seconds after start if none ever started;
    so nothing keeps running once the work is done.

``capture --container-id ID [--target-json JSON] [acquisition options]``
    Finds the target's init process through the shared PID namespace
    (collectors.k8s.findpid), runs the same collectors as a local capture, and
    writes the bundle to **stdout**, as binary, nothing else. Diagnostics go to
    **stderr** as JSON lines (``{"event": ...}``); the last one, ``sealed``,
    carries the manifest's and the stream's SHA-256 so the client can check the
    transfer end to end. Exit 0 complete, 3 sealed but incomplete, 4 access
    denied (the profile does not let this agent read the target, or, with
    ``--memory``, its /proc/PID/mem: checked before anything is written), 2 any
    other error. ``--memory MODE [--memory-max BYTES] [--memory-pids PID,…]``
    runs collectors.memory on the target's processes (pids as the agent sees
    them) into the same stream.

``serve (--container-id ID | --pid PID) [--idle S]``
    Live triage requests, one JSON line in on stdin, one out on stdout
    (collectors.agent_serve). Exits on EOF, ``bye``, or ``--idle`` seconds
    without a request; while it runs, ``wait`` counts it as busy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from collectors.memory import MODES
from forensics import __version__
from forensics.errors import AccessDenied, ExuviaError, TargetGone

if TYPE_CHECKING:
    from collectors.memory.acquire import MemoryOptions
    from collectors.targets.base import TargetInfo

# Every agent process starts a Python interpreter in the pod: ``wait`` (the
# container's main process) and each exec'd ``capture`` or ``serve``. On a node
# running many agents their start-up is CPU the node pays per pod, so each command
# imports only what it runs: ``wait`` nothing but the standard library above, the
# capture and serve code is imported by their commands (tests/unit/test_k8s_agent.py
# checks the ``wait`` path's modules).

STATE_DIR = "/tmp/exuvia-agent"  # noqa: S108 - inside the agent's own container
PR_SET_DUMPABLE = 4
EXIT_INCOMPLETE = 3
EXIT_DENIED = 4
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stderr for the client."""
    line = json.dumps({"event": event, **fields}, sort_keys=True, default=str)
    with contextlib.suppress(OSError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


# -- wait ------------------------------------------------------------------------
def _live_captures(state: Path) -> list[int]:
    live: list[int] = []
    for marker in [*state.glob("capture.*"), *state.glob("serve.*")]:
        pid = marker.name.split(".", 1)[1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            live.append(int(pid))
        else:
            with contextlib.suppress(OSError):
                marker.unlink()  # a capture killed before it could clean up
                (state / "done").touch()
    return live


def wait(idle: float, linger: float, state_dir: str = STATE_DIR, poll: float = 0.5) -> int:
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    started = time.time()
    emit("waiting", pid=os.getpid(), idle=idle, linger=linger, version=__version__)
    while True:
        time.sleep(poll)
        if _live_captures(state):
            continue
        try:
            finished = (state / "done").stat().st_mtime
        except FileNotFoundError:
            if time.time() - started >= idle:
                emit("exit", reason=f"no capture within {idle:g}s")
                return 0
            continue
        if time.time() - finished >= linger:
            emit("exit", reason=f"last capture finished {linger:g}s ago")
            return 0


# -- capture ---------------------------------------------------------------------
def _non_dumpable() -> str:
    """Keep same-uid processes of the target from ptracing the agent."""
    import ctypes  # noqa: PLC0415 - the capture and serve commands only

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            return f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(ctypes.get_errno())}"
    except (OSError, AttributeError) as err:
        return f"prctl unavailable: {err}"
    return "non-dumpable"


def _status(procfs: str, pid: int | str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(f"{procfs}/{pid}/status", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                if key in ("Uid", "Gid", "CapPrm", "CapEff", "NoNewPrivs"):
                    out[key] = val.strip()
    except OSError:
        pass
    return out


def access_problem(procfs: str, pid: int) -> str | None:
    """Why this agent cannot read the target's root, or None when it can."""
    try:
        fd = os.open(f"{procfs}/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        pass
    except OSError as err:
        return f"cannot open {procfs}/{pid}/root: {err.strerror}"
    else:
        os.close(fd)
        return None
    them, me = _status(procfs, pid), _status(procfs, "self")
    return (
        f"the kernel refuses this agent access to /proc/{pid}/root: the target runs as "
        f"uid {_first(them, 'Uid')} gid {_first(them, 'Gid')} with permitted capabilities "
        f"{them.get('CapPrm', '?')}, the agent as uid {_first(me, 'Uid')} gid "
        f"{_first(me, 'Gid')} with effective capabilities {me.get('CapEff', '?')}; without "
        "CAP_SYS_PTRACE the agent must run as the same uid and gid with at least the "
        "target's capabilities (use --profile auto, or --run-as UID:GID when the pod spec "
        "does not say which user the image runs as)"
    )


YAMA_SCOPE = "/sys/kernel/yama/ptrace_scope"


def _yama(procfs: str) -> str | None:
    """The node's Yama ptrace_scope (not namespaced), or None without Yama."""
    try:
        with open(f"{procfs}{YAMA_SCOPE}", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def memory_problem(procfs: str, pid: int) -> str | None:
    """Why this agent cannot open the target's /proc/PID/mem (the kernel's ptrace
    access check, PTRACE_MODE_ATTACH_FSCREDS: nothing is attached), or None."""
    try:
        fd = os.open(f"{procfs}/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:
        pass
    except OSError as err:
        return f"cannot open {procfs}/{pid}/mem: {err.strerror}"
    else:
        os.close(fd)
        return None
    them, me = _status(procfs, pid), _status(procfs, "self")
    scope = _yama(procfs)
    yama = (
        f"; the node's Yama ptrace_scope is {scope}, which lets only CAP_SYS_PTRACE"
        " (or an ancestor) open another process's memory"
        if scope not in (None, "0")
        else ""
    )
    return (
        f"--memory: the kernel refuses this agent /proc/{pid}/mem: the target runs as uid "
        f"{_first(them, 'Uid')} gid {_first(them, 'Gid')} with permitted capabilities "
        f"{them.get('CapPrm', '?')}, the agent as uid {_first(me, 'Uid')} gid {_first(me, 'Gid')} "
        f"with effective capabilities {me.get('CapEff', '?')}{yama}; use --node-level --memory"
    )


def _memory_options(args: argparse.Namespace) -> MemoryOptions | None:
    if args.memory is None:
        return None
    from collectors.k8s.findpid import own_container  # noqa: PLC0415
    from collectors.memory.acquire import MemoryOptions  # noqa: PLC0415

    pids = tuple(int(p) for p in args.memory_pids.split(",") if p) if args.memory_pids else None
    own = tuple(own_container(args.procfs)) if args.mode == "ephemeral" else ()
    return MemoryOptions(mode=args.memory, max_size=args.memory_max, pids=pids, exclude=own)


def _first(status: dict[str, str], key: str) -> str:
    """The real id of a Uid:/Gid: line (``1000 1000 1000 1000`` -> ``1000``)."""
    parts = status.get(key, "").split()
    return parts[0] if parts else "?"


def _size(text: str) -> int:
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    unit = t[-1:] if t[-1:] in _SIZE_UNITS else ""
    return int(float(t[: len(t) - len(unit)]) * _SIZE_UNITS[unit])


def _target(args: argparse.Namespace, pid: int, how: str, members: tuple[int, ...]) -> TargetInfo:
    from collectors.k8s.findpid import own_container  # noqa: PLC0415
    from collectors.targets.base import TargetInfo  # noqa: PLC0415
    from collectors.targets.pid import process_facts, process_start_ns  # noqa: PLC0415

    given: dict[str, Any] = json.loads(args.target_json) if args.target_json else {}
    known = set(TargetInfo.__dataclass_fields__)
    fields = {k: v for k, v in given.items() if k in known and k not in ("pid", "runtime_facts")}
    fields.setdefault("uri", "k8s://")
    facts: dict[str, Any] = dict(given.get("runtime_facts") or {})
    with contextlib.suppress(ExuviaError):
        facts["process"] = process_facts(pid, args.procfs)
    facts["found_by"] = how
    facts["container_processes"] = list(members)
    facts["agent"] = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "procfs": args.procfs,
        "mode": args.mode,
        "container_processes": own_container(args.procfs) if args.mode == "ephemeral" else [],
    }
    # the kernel's start time (clock ticks) beats the API's startedAt (seconds)
    api_started = fields.pop("started_ns", None)
    facts["api_started_ns"] = api_started
    info = TargetInfo(runtime="k8s", pid=pid, runtime_facts=facts, **fields)
    info.started_ns = process_start_ns(pid, args.procfs) or api_started
    if args.mode == "node":
        info.upperdir = node_upperdir(args.procfs, pid)
    return info


def node_upperdir(procfs: str, pid: int) -> str | None:
    """Node-level only: the target's overlay upper layer, seen from the runtime.

    The upperdir in the target's mountinfo is a path in the container
    runtime's mount namespace. With hostPID the target's parent is the
    runtime's shim: its ``root`` is where that path is valid (the node's init,
    ``<procfs>/1``, is the fallback).
    """
    from collectors.fs.mounts import parse_mountinfo, root_mount  # noqa: PLC0415

    try:
        with open(f"{procfs}/{pid}/mountinfo", "rb") as fh:
            root = root_mount(parse_mountinfo(fh.read()))
    except OSError:
        return None
    upper = root.overlay.get("upperdir") if root is not None and root.fstype == "overlay" else None
    if not upper:
        return None
    try:
        with open(f"{procfs}/{pid}/stat", "rb") as fh:
            ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        ppid = 1
    for holder in dict.fromkeys((ppid, 1)):
        path = f"{procfs}/{holder}/root{upper}"
        if os.path.isdir(path):
            return path
    return None


def capture(args: argparse.Namespace, out: BinaryIO) -> int:
    state = Path(args.state_dir)
    marker = state / f"capture.{os.getpid()}"
    try:
        state.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError as err:
        emit("warning", message=f"cannot mark the capture busy in {state}: {err.strerror}")
    try:
        return _capture(args, out)
    finally:
        with contextlib.suppress(OSError):
            marker.unlink()
        with contextlib.suppress(OSError):
            (state / "done").touch()


def _capture(args: argparse.Namespace, out: BinaryIO) -> int:
    from collectors.capture import Capture, CaptureOptions  # noqa: PLC0415
    from collectors.k8s.findpid import NotFound, find_target  # noqa: PLC0415

    dumpable = _non_dumpable()
    try:
        found = find_target(args.procfs, args.container_id, allow_pid1=args.mode == "ephemeral")
    except (NotFound, ValueError) as err:
        emit("error", kind="target", message=str(err))
        return 2
    problem = access_problem(args.procfs, found.pid)
    if problem:
        emit(
            "error",
            kind="access",
            message=problem,
            target=_status(args.procfs, found.pid),
            agent=_status(args.procfs, "self"),
        )
        return EXIT_DENIED
    try:
        target = _target(args, found.pid, found.how, found.members)
    except (ValueError, TypeError) as err:
        emit("error", kind="usage", message=f"bad --target-json: {err}")
        return 2
    target.runtime_facts["agent"]["dumpable"] = dumpable
    memory = _memory_options(args)
    if memory is not None:
        problem = memory_problem(args.procfs, found.pid)
        if problem:  # before a byte of the bundle: never a bundle silently without memory
            emit("error", kind="access", message=problem, target=_status(args.procfs, found.pid),
                 agent=_status(args.procfs, "self"))  # fmt: skip
            return EXIT_DENIED
    emit("target", pid=found.pid, how=found.how, members=list(found.members), agent_pid=os.getpid())
    opts = CaptureOptions(
        output=Path("-"),
        examiner=args.examiner or "exuvia-agent",
        case=args.case,
        files=args.files,
        max_file_size=_size(args.max_file_size),
        compress=args.compress,
        redact=args.redact,
        procfs=args.procfs,
        argv=[sys.executable, "-m", "collectors.agent", *args.argv_seen],
        threads=args.threads,
        memory=memory,
    )
    cap = Capture(target, opts)
    try:
        manifest_sha, stream_sha, nbytes = cap.write(out, output="stdout")
        out.flush()
    except BrokenPipeError:
        emit("error", kind="stream", message="the client went away (broken pipe)")
        return 2
    except ExuviaError as err:
        emit("error", kind="capture", message=str(err))
        return 2
    emit(
        "sealed",
        manifest_sha256=manifest_sha,
        stream_sha256=stream_sha,
        bytes=nbytes,
        complete=not cap.incomplete,
        incomplete_reason="; ".join(cap.incomplete),
        counts=dict(cap.counts),
        warnings=list(cap.warnings),
    )
    return 0 if not cap.incomplete else EXIT_INCOMPLETE


# -- command line ------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="agent_command", metavar="COMMAND")
    sub.required = True
    w = sub.add_parser("wait", help="wait for captures to be exec'd, then exit when idle")
    w.add_argument("--idle", type=float, default=300.0, help="exit if no capture by then (s)")
    w.add_argument("--linger", type=float, default=30.0, help="exit this long after the last (s)")
    w.add_argument("--state-dir", default=STATE_DIR, help=argparse.SUPPRESS)
    c = sub.add_parser("capture", help="capture the target and write the bundle to stdout")
    c.add_argument("--container-id", help="the target's containerID (containerd://…)")
    c.add_argument("--target-json", help="identity facts from the client (JSON)")
    c.add_argument("--mode", choices=("ephemeral", "node"), default="ephemeral")
    c.add_argument("--procfs", default="/proc")
    c.add_argument("--examiner")
    c.add_argument("--case")
    c.add_argument("--files", choices=("none", "changed", "small", "all"), default="changed")
    c.add_argument("--max-file-size", default="64M")
    c.add_argument("--compress", choices=("zstd", "none"), default="zstd")
    c.add_argument("--no-redact", dest="redact", action="store_false")
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--memory", choices=MODES, default=None, help="process memory as ELF cores")
    c.add_argument("--memory-max", type=int, default=None, metavar="BYTES")
    c.add_argument(
        "--memory-pids", default=None, metavar="PID,…", help="pids as the agent sees them"
    )
    c.add_argument("--state-dir", default=STATE_DIR, help=argparse.SUPPRESS)
    s = sub.add_parser("serve", help="answer live triage requests (JSON lines on stdin/stdout)")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--container-id", help="the target's containerID (containerd://…)")
    which.add_argument("--pid", type=int, help="the target's init pid in --procfs (local use)")
    s.add_argument("--mode", choices=("ephemeral", "node"), default="ephemeral")
    s.add_argument("--procfs", default="/proc")
    s.add_argument("--idle", type=float, default=None, help="exit after this silence (s)")
    s.add_argument("--state-dir", default=STATE_DIR, help=argparse.SUPPRESS)
    s.add_argument("--max-entries", type=int, default=None, help=argparse.SUPPRESS)


def _serve(args: argparse.Namespace) -> int:
    from collectors.agent_serve import DEFAULT_IDLE, MAX_ENTRIES, Server, run_serve  # noqa: PLC0415
    from collectors.k8s.findpid import Found, NotFound, find_target  # noqa: PLC0415

    dumpable = _non_dumpable()
    idle = DEFAULT_IDLE if args.idle is None else args.idle
    max_entries = MAX_ENTRIES if args.max_entries is None else args.max_entries

    def open_target() -> Server:
        if args.pid is not None:
            found = Found(args.pid, "--pid", ())
        else:
            try:
                found = find_target(
                    args.procfs, args.container_id, allow_pid1=args.mode == "ephemeral"
                )
            except NotFound as err:
                raise ExuviaError(str(err)) from None
        if not os.path.isdir(f"{args.procfs}/{found.pid}"):
            raise TargetGone(f"process {found.pid} is not in {args.procfs} (gone?)")
        problem = access_problem(args.procfs, found.pid)
        if problem:
            raise AccessDenied(problem)
        how = f"{found.how} ({dumpable})"
        return Server(args.procfs, found.pid, how, found.members, max_entries)

    return run_serve(open_target, args.state_dir, idle, emit)


def run(args: argparse.Namespace) -> int:
    if args.agent_command == "wait":
        return wait(args.idle, args.linger, args.state_dir)
    if args.agent_command == "serve":
        return _serve(args)
    if sys.stdout.isatty():
        emit("error", kind="usage", message="refusing to write a binary bundle to a terminal")
        return 2
    return capture(args, sys.stdout.buffer)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m collectors.agent",
        description="exuvia's in-pod collector agent (see docs/kubernetes.md).",
    )
    add_arguments(p)
    raw = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(raw)
    args.argv_seen = raw
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
