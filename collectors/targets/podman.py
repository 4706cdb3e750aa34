"""``podman://NAME|ID``: a Podman container (``podman container inspect``)."""

from __future__ import annotations

from typing import Any

from forensics.errors import ExuviaError, TargetError, TargetGone

from .base import LocalContainer, TargetInfo
from .cmd import ToolFailed, omit_env_values, parse_time, run_json, trim_facts
from .pid import add_fallback_logs, require_process, sniff_log_format

# Podman log drivers whose file exuvia can read, and the format of that file.
# Podman's "json-file" is an alias: it writes the k8s-file format.
_LOG_DRIVERS = {"k8s-file": "k8s-file", "json-file": "k8s-file"}


def podman_version() -> str | None:
    """``podman version --format json`` -> Client.Version, or None."""
    try:
        data = run_json(["podman", "version", "--format", "json"], timeout=15)
    except ExuviaError:
        return None
    for side in ("Client", "Server"):
        part = data.get(side) if isinstance(data, dict) else None
        if isinstance(part, dict) and part.get("Version"):
            return str(part["Version"])
    return None


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def log_path_and_format(inspect: dict[str, Any]) -> tuple[list[str], str | None]:
    """The container's log file and its format from inspect JSON (unsniffed)."""
    cfg = _get(inspect, "HostConfig", "LogConfig") or {}
    driver = str(cfg.get("Type") or "")
    path = cfg.get("Path") or inspect.get("LogPath")
    fmt = _LOG_DRIVERS.get(driver)
    if not path or fmt is None:
        return [], None
    return [str(path)], fmt


def omit_cli_env(argv: list[Any]) -> list[Any]:
    """A create command with ``-e/--env K=V`` values omitted (names kept)."""
    out: list[Any] = []
    after_flag = False
    for arg in argv:
        if after_flag and isinstance(arg, str):
            out.append(omit_env_values([arg])[0])
        elif isinstance(arg, str) and arg.startswith("--env="):
            out.append("--env=" + omit_env_values([arg[len("--env=") :]])[0])
        else:
            out.append(arg)
        after_flag = arg in ("-e", "--env")
    return out


def info_from_inspect(uri: str, inspect: dict[str, Any], version: str | None) -> TargetInfo:
    """TargetInfo from one ``podman container inspect`` object (no /proc reads)."""
    state = inspect.get("State") or {}
    logs, fmt = log_path_and_format(inspect)
    facts = trim_facts(inspect)
    config = facts.get("Config")
    if isinstance(config, dict) and isinstance(config.get("CreateCommand"), list):
        config["CreateCommand"] = omit_cli_env(config["CreateCommand"])
    return TargetInfo(
        uri=uri,
        runtime="podman",
        pid=int(state.get("Pid") or 0),
        container_id=inspect.get("Id"),
        name=inspect.get("Name"),
        image=inspect.get("ImageName") or _get(inspect, "Config", "Image"),
        image_id=inspect.get("Image"),
        image_digest=inspect.get("ImageDigest"),
        created_ns=parse_time(inspect.get("Created")),
        started_ns=parse_time(state.get("StartedAt")),
        runtime_version=version,
        status=state.get("Status"),
        log_paths=logs,
        log_format=fmt,
        upperdir=_get(inspect, "GraphDriver", "Data", "UpperDir"),
        runtime_facts={"inspect": facts},
    )


def inspect_container(ref: str) -> dict[str, Any]:
    """``podman container inspect REF`` as one dict; TargetError if there is none."""
    try:
        data = run_json(["podman", "container", "inspect", ref], timeout=30)
    except ToolFailed as err:
        if "no such container" in err.stderr.lower():
            raise TargetError(f"no podman container named {ref!r}") from err
        raise
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise TargetError(f"no podman container named {ref!r}")
    return data[0]


def resolve_podman(ref: str, uri: str, procfs: str = "/proc") -> TargetInfo:
    """``podman://NAME|ID``."""
    name = ref.strip()
    if not name:
        raise TargetError("podman:// needs a container name or id")
    inspect = inspect_container(name)
    state = inspect.get("State") or {}
    if not state.get("Running") or not state.get("Pid"):
        raise TargetGone(
            f"podman container {name!r} is not running (status: {state.get('Status')})"
        )
    info = info_from_inspect(uri, inspect, podman_version())
    require_process(info.pid, procfs, f"podman container {name!r}")
    if info.log_paths:
        info.log_format = sniff_log_format(info.log_paths[0]) or info.log_format
    add_fallback_logs(info, procfs)
    return info


def list_local(procfs: str = "/proc") -> list[LocalContainer]:
    """Running podman containers (``podman ps --format json``)."""
    data = run_json(["podman", "ps", "--format", "json"], timeout=30)
    out: list[LocalContainer] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        pid = int(item.get("Pid") or 0)
        if pid <= 0:
            continue
        names = item.get("Names") or []
        name = str(names[0]) if isinstance(names, list) and names else str(item.get("Id", ""))[:12]
        created = item.get("Created")
        restarts = item.get("Restarts")
        out.append(
            LocalContainer(
                runtime="podman",
                container_id=str(item.get("Id") or ""),
                name=name,
                image=str(item.get("Image") or "") or None,
                pid=pid,
                uri=f"podman://{name}",
                status=str(item.get("State") or "") or None,
                created_ns=int(created) * 1_000_000_000 if isinstance(created, int) else None,
                restarts=int(restarts) if isinstance(restarts, int) else None,
            )
        )
    return out
