"""The process collector: one "process" record per process in the target's PID namespace.

Membership is decided by the inode of ``/proc/N/ns/pid`` (equal to the target's).
Each process is read through ``<procfs>/<pid>/…`` only, every read capped. A
process that exits or whose pid is reused while it is being read yields a Skip
instead of a record; one unreadable file yields a Skip and a None field.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from typing import Any

from collectors import procfs
from collectors.context import CollectContext
from forensics.errors import AccessDenied, TargetGone
from forensics.records import Record, Skip, skip_from_oserror
from forensics.textsafe import bytes_field, fsdecode_safe

COLLECTOR = "processes"
MAPS_CAP = 8 << 20  # maps of big runtimes (JVM) exceed 1 MiB
FDINFO_CAP = 4096  # only the first lines (pos, flags, mnt_id, ino) are used
FDINFO_MAX_FDS = 10_000  # fdinfo is one more open per fd; past this, targets only

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
REDACTED = "<redacted>"


def target_pidns(ctx: CollectContext) -> int:
    """The inode of the target's PID namespace.

    Raises TargetGone if the target has exited, AccessDenied if it is not ours
    to read.
    """
    try:
        return procfs.pidns_inode(ctx.procfs, ctx.pid)
    except OSError as err:
        if procfs.is_gone(err):
            raise TargetGone(f"target pid {ctx.pid} is gone from {ctx.procfs}") from err
        raise AccessDenied(
            f"cannot read the PID namespace of target pid {ctx.pid}: {err.strerror or err}"
        ) from err
    except ValueError as err:
        raise TargetGone(f"target pid {ctx.pid}: unreadable ns/pid link: {err}") from err


def namespace_members(ctx: CollectContext, collector: str) -> tuple[list[int], list[Skip]]:
    """The target first, then the other pids in its PID namespace (ascending)."""
    ns_inode = target_pidns(ctx)
    try:
        depth: int | None = procfs.nspid_depth(ctx.procfs, ctx.pid)
    except OSError:
        depth = None
    members, failed = procfs.pidns_members(ctx.procfs, ns_inode, depth)
    skips = [
        skip_from_oserror(collector, f"pid {pid}", err, "cannot tell its PID namespace")
        for pid, err in failed
    ]
    return [ctx.pid, *(p for p in members if p != ctx.pid)], skips


def last_nspid(status: dict[str, str]) -> int | None:
    chain = status.get("NSpid")
    if not chain:
        return None
    try:
        return procfs.parse_int_list(chain)[-1]
    except (ValueError, IndexError):
        return None


def redact_environ(
    pairs: list[tuple[bytes, bytes]], redact: bool
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(environ, redacted names, {name: base64 of raw value} for non-UTF-8 kept values).

    The first occurrence of a duplicated name wins, as with getenv(3).
    """
    env: dict[str, str] = {}
    redacted: list[str] = []
    raw_b64: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = fsdecode_safe(raw_name)
        if name in env:
            continue
        if redact and SECRET_NAME.search(name):
            env[name] = REDACTED
            redacted.append(name)
            continue
        env[name] = fsdecode_safe(raw_value)
        try:
            raw_name.decode("utf-8")
            raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raw_b64[name] = base64.b64encode(raw_value).decode("ascii")
    return env, redacted, raw_b64


def cmdline_fields(raw: bytes) -> dict[str, Any]:
    """``cmdline`` (list of str) plus ``cmdline_b64`` (one per arg) if any arg is not UTF-8."""
    args = procfs.split_nul(raw)
    out: dict[str, Any] = {"cmdline": [fsdecode_safe(a) for a in args]}
    try:
        for a in args:
            a.decode("utf-8")
    except UnicodeDecodeError:
        out["cmdline_b64"] = [base64.b64encode(a).decode("ascii") for a in args]
    return out


class _Reader:
    """Reads one process's files, turning errors into Skips and None values."""

    def __init__(self, ctx: CollectContext, pid: int) -> None:
        self.base = f"{ctx.procfs}/{pid}"
        self.subject = f"pid {pid}"
        self.skips: list[Skip] = []

    def note(self, reason: str, **extra: Any) -> None:
        self.skips.append(Skip(COLLECTOR, self.subject, reason, None, extra))

    def _error(self, err: OSError, what: str) -> None:
        # ENOENT/ESRCH: the file does not exist for this process (kernel
        # thread, zombie, no audit) or the process left; the final stat check
        # tells the two apart, so no Skip here.
        if not procfs.is_gone(err):
            self.skips.append(skip_from_oserror(COLLECTOR, self.subject, err, what))

    def read(self, name: str, cap: int = procfs.MAX_READ) -> bytes | None:
        try:
            data, truncated = procfs.read_capped(f"{self.base}/{name}", cap)
        except OSError as err:
            self._error(err, f"cannot read {name}")
            return None
        if truncated:
            self.note(f"{name} truncated at {cap} bytes", file=name, cap_bytes=cap)
        return data

    def link(self, name: str) -> bytes | None:
        try:
            return procfs.readlink(f"{self.base}/{name}")
        except OSError as err:
            self._error(err, f"cannot readlink {name}")
            return None

    def link_field(self, key: str, name: str) -> dict[str, Any]:
        target = self.link(name)
        return {key: None} if target is None else bytes_field(key, target)


def _status_fields(st: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, src in (("uid", "Uid"), ("gid", "Gid")):
        try:
            out[key] = procfs.parse_ids(st[src])
        except (KeyError, ValueError):
            out[key] = None
    try:
        out["nspid_chain"] = procfs.parse_int_list(st.get("NSpid", ""))
    except ValueError:
        out["nspid_chain"] = []
    out["nspid"] = out["nspid_chain"][-1] if out["nspid_chain"] else None
    state = st.get("State", "")
    out["state_name"] = state[state.find("(") + 1 : state.rfind(")")] if "(" in state else None
    for key, src in (
        ("cap_eff", "CapEff"),
        ("cap_prm", "CapPrm"),
        ("cap_bnd", "CapBnd"),
        ("cap_inh", "CapInh"),
        ("cap_amb", "CapAmb"),
    ):
        out[key] = st.get(src)
    try:
        out["cap_eff_names"] = procfs.decode_caps(st["CapEff"])
    except (KeyError, ValueError):
        out["cap_eff_names"] = None
    seccomp = st.get("Seccomp")
    out["seccomp"] = int(seccomp) if seccomp and seccomp.isdigit() else None
    out["seccomp_mode"] = procfs.SECCOMP_MODES.get(out["seccomp"]) if seccomp else None
    filters = st.get("Seccomp_filters")
    out["seccomp_filters"] = int(filters) if filters and filters.isdigit() else None
    tracer = st.get("TracerPid", "").strip()
    out["tracer_pid"] = int(tracer) if tracer.isdigit() else None
    nnp = st.get("NoNewPrivs")
    out["no_new_privs"] = (nnp == "1") if nnp is not None else None
    return out


def _fds(ctx: CollectContext, pid: int, r: _Reader) -> list[dict[str, Any]] | None:
    fds: list[dict[str, Any]] = []
    try:
        for fd, target in procfs.iter_fds(ctx.procfs, pid):
            if fd < 0:
                r.note(
                    f"more than {procfs.MAX_FDS} fds; the rest were not listed",
                    cap_fds=procfs.MAX_FDS,
                )
                break
            if target is None:
                continue  # closed while we listed
            entry: dict[str, Any] = {"fd": fd, **bytes_field("target", target)}
            if len(fds) == FDINFO_MAX_FDS:
                r.note(f"fdinfo read for the first {FDINFO_MAX_FDS} fds only")
            elif len(fds) < FDINFO_MAX_FDS:
                try:
                    info, _ = procfs.read_capped(f"{r.base}/fdinfo/{fd}", FDINFO_CAP)
                    entry.update(procfs.parse_fdinfo(info))
                except OSError:
                    pass  # closed meanwhile, or not permitted: the target is enough
            fds.append(entry)
    except OSError as err:
        r._error(err, "cannot list fds")
        return None
    return fds


def _namespaces(r: _Reader) -> dict[str, int] | None:
    try:
        names = sorted(os.listdir(f"{r.base}/ns"))
    except OSError as err:
        r._error(err, "cannot list ns")
        return None
    out: dict[str, int] = {}
    for name in names:
        target = r.link(f"ns/{name}")
        if target is not None:
            try:
                out[name] = procfs.parse_ns_link(target)
            except ValueError:
                continue
    return out


def _int_file(r: _Reader, name: str) -> int | None:
    raw = r.read(name, 64)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _read_process(
    ctx: CollectContext, pid: int, nspid_of: dict[int, int | None], clock: tuple[int, int, int]
) -> Iterator[Record | Skip]:
    boot_ns, ticks, page = clock
    r = _Reader(ctx, pid)
    raw_stat = r.read("stat")
    if raw_stat is None:
        yield from r.skips or [Skip(COLLECTOR, r.subject, "exited during collection")]
        return
    try:
        stat = procfs.parse_stat(raw_stat)
    except ValueError as err:
        yield Skip(COLLECTOR, r.subject, f"malformed stat: {err}")
        return
    raw_status = r.read("status")
    st = procfs.parse_status(raw_status) if raw_status is not None else {}

    data: dict[str, Any] = {"pid": pid}
    data.update(_status_fields(st))
    # A parent outside the namespace shows as 0 inside it (getppid() == 0);
    # None when the parent is a member whose pid inside could not be read.
    data["ppid"] = stat.ppid
    data["nsppid"] = nspid_of.get(stat.ppid, 0)
    data.update(bytes_field("name", stat.comm))
    raw_cmd = r.read("cmdline")
    data.update(cmdline_fields(raw_cmd) if raw_cmd is not None else {"cmdline": None})
    kthread = bool(stat.flags & procfs.PF_KTHREAD)
    data["kernel_thread"] = kthread
    data.update(r.link_field("exe", "exe"))
    exe = data["exe"]
    data["exe_deleted"] = bool(exe and exe.endswith(" (deleted)"))
    data["exe_memfd"] = bool(exe and exe.startswith("/memfd:"))
    data.update(r.link_field("cwd", "cwd"))
    data.update(r.link_field("root", "root"))
    data.update(
        {
            "start_ns": procfs.start_ns(boot_ns, stat.starttime, ticks),
            "start_ticks": stat.starttime,
            "start_clock": procfs.START_CLOCK,
            "state": stat.state,
            "threads": stat.num_threads,
            "rss_bytes": stat.rss_pages * page,
            "vms_bytes": stat.vsize,
            "cpu_user_s": stat.utime / ticks,
            "cpu_system_s": stat.stime / ticks,
            "pgid": stat.pgrp,
            "sid": stat.session,
            "tty_nr": stat.tty_nr,
        }
    )
    data["fds"] = _fds(ctx, pid, r)
    raw_maps = r.read("maps", MAPS_CAP)
    data["maps"] = (
        None
        if raw_maps is None
        else [{**bytes_field("path", p), "deleted": d} for p, d in procfs.parse_maps(raw_maps)]
    )
    data["namespaces"] = _namespaces(r)
    raw_cg = r.read("cgroup")
    data["cgroup"] = None if raw_cg is None else fsdecode_safe(raw_cg).splitlines()
    raw_env = r.read("environ")
    if raw_env is None:
        data.update(environ=None, environ_redacted=[])
    else:
        env, redacted, env_b64 = redact_environ(procfs.parse_environ(raw_env), ctx.redact)
        data.update(environ=env, environ_redacted=redacted)
        if env_b64:
            data["environ_b64"] = env_b64
    data["login_uid"] = _int_file(r, "loginuid")
    data["sessionid"] = _int_file(r, "sessionid")

    # Still the same process? (gone, or pid reused by a newer process)
    try:
        again = procfs.parse_stat(procfs.read_capped(f"{r.base}/stat")[0])
    except (OSError, ValueError):
        yield Skip(COLLECTOR, r.subject, "exited during collection")
        return
    if again.starttime != stat.starttime:
        yield Skip(COLLECTOR, r.subject, "pid reused during collection")
        return
    yield from r.skips
    yield Record("process", data)


def collect_processes(ctx: CollectContext) -> Iterator[Record | Skip]:
    """Yield a "process" record per process in the target's PID namespace.

    Raises TargetGone (on first iteration) if the target has already exited.
    """
    members, skips = namespace_members(ctx, COLLECTOR)
    yield from skips
    # Pass 1: each member's pid inside the namespace, for nsppid.
    nspid_of: dict[int, int | None] = {}
    for pid in members:
        try:
            raw, _ = procfs.read_capped(f"{ctx.procfs}/{pid}/status")
        except OSError:
            nspid_of[pid] = None  # a member, pid inside unknown; pass 2 reports it
            continue
        nspid_of[pid] = last_nspid(procfs.parse_status(raw))
    clock = (procfs.boot_time_ns(), procfs.clock_ticks(), os.sysconf("SC_PAGE_SIZE"))
    for pid in members:
        yield from _read_process(ctx, pid, nspid_of, clock)
