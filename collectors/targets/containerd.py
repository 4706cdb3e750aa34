"""``containerd://[NAMESPACE/]ID``: a containerd container with a running task (``ctr``).

The namespace defaults to "default" (Kubernetes uses "k8s.io"). ``ctr`` honours
``$CONTAINERD_ADDRESS`` for a non-default socket.

Logs: containerd keeps no log path for a task started with ``--log-uri
file://...``; its shim holds the file open, so the file is found among the
shim's open file descriptors (the init process's parent). For containers the
CRI plugin created, the CRI metadata extension names the log file.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from typing import Any

from forensics.errors import ExuviaError, RuntimeToolError, TargetError, TargetGone

from .base import LocalContainer, TargetInfo
from .cmd import ToolFailed, parse_time, run_json, run_tool, trim_facts
from .pid import add_fallback_logs, process_start_ns, read_stat, require_process, sniff_log_format

DEFAULT_NAMESPACE = "default"
CRI_METADATA_EXT = "io.cri-containerd.container.metadata"
_SPEC_DROP = frozenset({"seccomp"})
_O_ACCMODE = 0o3
_O_WRONLY = 0o1
_O_APPEND = 0o2000
# The shim's own files (its log fifo, state) live here; a task's log never does.
_SHIM_PRIVATE = ("/run/containerd/", "/var/run/containerd/", "/var/lib/containerd/")


def split_ref(ref: str) -> tuple[str, str]:
    """``[NS/]ID`` -> (namespace, id)."""
    ns, sep, cid = ref.strip().partition("/")
    if not sep:
        ns, cid = DEFAULT_NAMESPACE, ns
    if not ns or not cid or "/" in cid:
        raise TargetError(f"bad containerd target {ref!r}: expected containerd://[NAMESPACE/]ID")
    return ns, cid


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of a ``ctr ... ls`` table (columns split on runs of spaces)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        cells = line.split()
        rows.append(dict(zip(header, cells, strict=False)))
    return rows


def parse_ctr_version(text: str) -> str | None:
    """The server's version from ``ctr version`` (the client's if no server answered)."""
    client = server = None
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Client:", "Server:"):
            section = stripped[:-1]
        elif stripped.startswith("Version:") and section:
            val = stripped.split(":", 1)[1].strip()
            if section == "Server":
                server = val
            else:
                client = val
    return server or client


def cri_metadata(info: dict[str, Any]) -> dict[str, Any] | None:
    """The CRI plugin's container metadata (JSON inside a protobuf Any), if present."""
    ext = (info.get("Extensions") or {}).get(CRI_METADATA_EXT)
    if not isinstance(ext, dict):
        return None
    value = ext.get("value") or ext.get("Value")
    if not isinstance(value, str):
        return None
    try:
        data = json.loads(base64.b64decode(value))
    except (ValueError, TypeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("Metadata"), dict):
        meta: dict[str, Any] = data["Metadata"]
        return meta
    return None


def shim_log_files(pid: int, procfs: str = "/proc") -> list[str]:
    """Log files a containerd shim (parent of ``pid``) writes for its task.

    Regular files the shim holds open write-only with O_APPEND, outside
    containerd's own state directories.
    """
    try:
        ppid = read_stat(pid, procfs)["ppid"]
        with open(f"{procfs}/{ppid}/comm", encoding="utf-8", errors="replace") as fh:
            comm = fh.read().strip()
        fds = os.listdir(f"{procfs}/{ppid}/fd")
    except (OSError, TargetError):
        return []
    if not comm.startswith("containerd-shim"):
        return []
    found: list[str] = []
    for fd in sorted(fds, key=lambda s: int(s) if s.isdigit() else 0):
        link = f"{procfs}/{ppid}/fd/{fd}"
        try:
            target = os.readlink(link)
            if not target.startswith("/") or target.startswith(_SHIM_PRIVATE):
                continue
            if not stat.S_ISREG(os.stat(link).st_mode):
                continue
            with open(f"{procfs}/{ppid}/fdinfo/{fd}", encoding="ascii") as fh:
                flags_line = next((ln for ln in fh if ln.startswith("flags:")), "")
            flags = int(flags_line.split(":", 1)[1].strip() or "0", 8)
        except (OSError, ValueError):
            continue
        if flags & _O_ACCMODE == _O_WRONLY and flags & _O_APPEND and target not in found:
            found.append(target)
    return found


def info_from_ctr(
    uri: str, ns: str, info: dict[str, Any], task: dict[str, str], version: str | None
) -> TargetInfo:
    """TargetInfo from ``ctr containers info`` JSON and the task's row (no /proc reads)."""
    facts: dict[str, Any] = {"namespace": ns, "task": task}
    keep = {k: v for k, v in info.items() if k != "Extensions"}
    facts["container"] = trim_facts(keep, drop=_SPEC_DROP)
    meta = cri_metadata(info)
    log_paths: list[str] = []
    log_format = None
    name = info.get("ID")
    if meta is not None:
        facts["cri_metadata"] = trim_facts(meta, drop=_SPEC_DROP)
        if meta.get("LogPath"):
            log_paths, log_format = [str(meta["LogPath"])], "cri"
        config = meta.get("Config")
        cri_meta = config.get("metadata") if isinstance(config, dict) else None
        if isinstance(cri_meta, dict) and cri_meta.get("name"):
            name = str(cri_meta["name"])
    pid_text = task.get("PID", "0")
    return TargetInfo(
        uri=uri,
        runtime="containerd",
        pid=int(pid_text) if pid_text.isdigit() else 0,
        container_id=info.get("ID"),
        name=name,
        image=info.get("Image") or None,
        created_ns=parse_time(info.get("CreatedAt")),
        runtime_version=version,
        status=task.get("STATUS", "").lower() or None,
        log_paths=log_paths,
        log_format=log_format,
        runtime_facts=facts,
    )


def _ctr(ns: str, *args: str) -> list[str]:
    return ["ctr", "-n", ns, *args]


def _image_digests(ns: str, image: str) -> tuple[str | None, str | None]:
    """(config digest, manifest/index digest) of ``image`` in ``ns``; Nones on failure."""
    try:
        rows = parse_table(run_tool(_ctr(ns, "images", "ls", f"name=={image}"), timeout=15))
        target = next((r.get("DIGEST") for r in rows if r.get("REF") == image), None)
        if not target:
            return None, None
        doc = run_json(_ctr(ns, "content", "get", target), timeout=15)
        if isinstance(doc, dict) and isinstance(doc.get("manifests"), list):
            # an index: take the first manifest for linux (our platform first)
            arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "")
            mans = [m for m in doc["manifests"] if isinstance(m, dict)]
            mans.sort(key=lambda m: (m.get("platform") or {}).get("architecture") != arch)
            if not mans:
                return None, target
            doc = run_json(_ctr(ns, "content", "get", str(mans[0]["digest"])), timeout=15)
        config = (doc.get("config") or {}).get("digest") if isinstance(doc, dict) else None
        return (str(config) if config else None), target
    except ExuviaError:
        return None, None


def resolve_containerd(ref: str, uri: str, procfs: str = "/proc") -> TargetInfo:
    """``containerd://[NAMESPACE/]ID``."""
    ns, cid = split_ref(ref)
    try:
        info = run_json(_ctr(ns, "containers", "info", cid), timeout=30)
    except ToolFailed as err:
        if "not found" in err.stderr:
            raise TargetError(f"no containerd container {cid!r} in namespace {ns!r}") from err
        raise
    if not isinstance(info, dict):
        raise TargetError(f"ctr containers info {cid} gave unexpected output")
    tasks = parse_table(run_tool(_ctr(ns, "tasks", "ls"), timeout=30))
    task = next((t for t in tasks if t.get("TASK") == cid), None)
    if task is None:
        raise TargetGone(f"containerd container {cid!r} in namespace {ns!r} has no task running")
    if task.get("STATUS") != "RUNNING":
        raise TargetGone(
            f"containerd container {cid!r} is not running (task status: {task.get('STATUS')})"
        )
    try:
        version = parse_ctr_version(run_tool(["ctr", "version"], timeout=15))
    except ExuviaError:
        version = None
    target = info_from_ctr(uri, ns, info, task, version)
    if target.image:
        target.image_id, target.image_digest = _image_digests(ns, target.image)
    require_process(target.pid, procfs, f"containerd container {cid!r}")
    target.started_ns = process_start_ns(target.pid, procfs)
    if not target.log_paths:
        logs = shim_log_files(target.pid, procfs)
        if logs:
            target.log_paths = logs
            target.log_format = sniff_log_format(logs[0]) or "raw"
    add_fallback_logs(target, procfs)
    return target


def containerd_address() -> str:
    return os.environ.get("CONTAINERD_ADDRESS") or "/run/containerd/containerd.sock"


def list_local(procfs: str = "/proc") -> list[LocalContainer]:
    """Running containerd tasks in every namespace (``ctr``).

    The socket is checked first: ``ctr`` waits ten seconds for a dead one.
    """
    addr = containerd_address()
    if not os.path.exists(addr):
        raise RuntimeToolError(f"containerd is not running ({addr} does not exist)")
    out: list[LocalContainer] = []
    for ns in run_tool(["ctr", "namespaces", "ls", "-q"], timeout=15).split():
        tasks = parse_table(run_tool(_ctr(ns, "tasks", "ls"), timeout=15))
        images = {
            r.get("CONTAINER", ""): r.get("IMAGE")
            for r in parse_table(run_tool(_ctr(ns, "containers", "ls"), timeout=15))
        }
        for t in tasks:
            cid = t.get("TASK", "")
            pid_text = t.get("PID", "0")
            if t.get("STATUS") != "RUNNING" or not pid_text.isdigit() or int(pid_text) <= 0:
                continue
            pid = int(pid_text)
            out.append(
                LocalContainer(
                    runtime="containerd",
                    container_id=cid,
                    name=cid,
                    image=images.get(cid) if images.get(cid) not in (None, "-") else None,
                    pid=pid,
                    uri=f"containerd://{ns}/{cid}",
                    status="running",
                    created_ns=process_start_ns(pid, procfs),
                )
            )
    return out
