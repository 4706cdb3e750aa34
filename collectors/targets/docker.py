"""``docker://NAME|ID``: a container of a Docker Engine, over its API's unix socket.

The socket is ``$DOCKER_HOST`` (``unix:///path``) or ``/var/run/docker.sock``.
Plain HTTP/1.1 over AF_UNIX with the standard library; no Docker SDK. Any
Docker-compatible engine works (Podman's ``podman system service`` included).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlencode

from forensics.errors import AccessDenied, ExuviaError, RuntimeToolError, TargetError, TargetGone

from .base import LocalContainer, TargetInfo
from .cmd import parse_time, trim_facts
from .pid import add_fallback_logs, require_process, sniff_log_format

DEFAULT_SOCKET = "/var/run/docker.sock"
_LOG_DRIVERS = {"json-file": "json-file", "k8s-file": "k8s-file"}


def socket_path(docker_host: str | None = None) -> str:
    """The engine's unix socket path from ``docker_host`` or $DOCKER_HOST."""
    host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not path.startswith("/"):
            raise RuntimeToolError(f"DOCKER_HOST {host!r}: the socket path must be absolute")
        return path
    if host.startswith("/"):
        return host
    raise RuntimeToolError(
        f"DOCKER_HOST {host!r} is not supported: exuvia talks to Docker over a local "
        "unix socket only (unix:///var/run/docker.sock)"
    )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class DockerAPI:
    """A minimal Docker Engine API client (JSON in, JSON out)."""

    def __init__(self, docker_host: str | None = None, *, timeout: float = 30.0) -> None:
        self.path = socket_path(docker_host)
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """Send one request; returns (HTTP status, parsed JSON body or text or None)."""
        url = path + ("?" + urlencode(query) if query else "")
        headers = {"Host": "docker"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = _UnixHTTPConnection(self.path, self.timeout)
        try:
            conn.request(method, url, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
        except FileNotFoundError as err:
            raise RuntimeToolError(
                f"cannot reach the Docker Engine: {self.path} does not exist "
                "(is the daemon running? set DOCKER_HOST=unix:///path/to/docker.sock)"
            ) from err
        except PermissionError as err:
            raise AccessDenied(f"cannot connect to {self.path}: permission denied") from err
        except (OSError, http.client.HTTPException) as err:
            raise RuntimeToolError(
                f"cannot talk to the Docker Engine at {self.path}: {err}"
            ) from err
        finally:
            conn.close()
        if not raw:
            return status, None
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path: str) -> Any:
        """GET ``path``; RuntimeToolError unless 2xx (404 is returned as None)."""
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise RuntimeToolError(
                f"Docker API GET {path} failed (HTTP {status}): {_message(data)}"
            )
        return data

    def version(self) -> dict[str, Any]:
        data = self.get("/version")
        return data if isinstance(data, dict) else {}

    def inspect_container(self, ref: str) -> dict[str, Any] | None:
        data = self.get(f"/containers/{quote(ref, safe='')}/json")
        return data if isinstance(data, dict) else None

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        data = self.get(f"/images/{quote(ref, safe='')}/json")
        return data if isinstance(data, dict) else None


def _message(data: Any) -> str:
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"]).strip().splitlines()[0]
    return str(data or "no message").strip()[:200]


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def engine_version(version: dict[str, Any]) -> str | None:
    """The engine version: "28.2.2", or "Podman Engine 4.3.1" for another engine."""
    ver = version.get("Version")
    names = [
        str(c.get("Name"))
        for c in version.get("Components") or []
        if isinstance(c, dict) and c.get("Name")
    ]
    engine = names[0] if names else "Engine"
    if not ver:
        return None
    return str(ver) if engine == "Engine" else f"{engine} {ver}"


def info_from_inspect(
    uri: str,
    inspect: dict[str, Any],
    version: dict[str, Any],
    image: dict[str, Any] | None = None,
) -> TargetInfo:
    """TargetInfo from the Engine API's container (and image) inspect (no /proc reads)."""
    state = inspect.get("State") or {}
    driver = str(_get(inspect, "HostConfig", "LogConfig", "Type") or "")
    log_path = inspect.get("LogPath") or None
    fmt = _LOG_DRIVERS.get(driver) if log_path else None
    digest = None
    for rd in (image or {}).get("RepoDigests") or []:
        if isinstance(rd, str) and "@" in rd:
            digest = rd.split("@", 1)[1]
            break
    facts: dict[str, Any] = {"inspect": trim_facts(inspect)}
    facts["engine"] = {k: version.get(k) for k in ("Version", "ApiVersion", "Os", "Arch")}
    facts["engine"]["Components"] = [
        {"Name": c.get("Name"), "Version": c.get("Version")}
        for c in version.get("Components") or []
        if isinstance(c, dict)
    ]
    name = inspect.get("Name")
    return TargetInfo(
        uri=uri,
        runtime="docker",
        pid=int(state.get("Pid") or 0),
        container_id=inspect.get("Id"),
        name=str(name).lstrip("/") if name else None,
        image=_get(inspect, "Config", "Image"),
        image_id=inspect.get("Image"),
        image_digest=digest,
        created_ns=parse_time(inspect.get("Created")),
        started_ns=parse_time(state.get("StartedAt")),
        runtime_version=engine_version(version),
        status=state.get("Status"),
        log_paths=[str(log_path)] if fmt else [],
        log_format=fmt,
        upperdir=_get(inspect, "GraphDriver", "Data", "UpperDir"),
        runtime_facts=facts,
    )


def resolve_docker(ref: str, uri: str, procfs: str = "/proc") -> TargetInfo:
    """``docker://NAME|ID``."""
    name = ref.strip()
    if not name:
        raise TargetError("docker:// needs a container name or id")
    api = DockerAPI()
    inspect = api.inspect_container(name)
    if inspect is None:
        raise TargetError(f"no docker container named {name!r} (engine at {api.path})")
    state = inspect.get("State") or {}
    if not state.get("Running") or not state.get("Pid"):
        raise TargetGone(
            f"docker container {name!r} is not running (status: {state.get('Status')})"
        )
    try:
        version = api.version()
    except ExuviaError:
        version = {}
    image = None
    if inspect.get("Image"):
        try:
            image = api.inspect_image(str(inspect["Image"]))
        except ExuviaError:
            image = None
    info = info_from_inspect(uri, inspect, version, image)
    require_process(info.pid, procfs, f"docker container {name!r}")
    if info.log_paths:
        # engines differ: Podman's API says json-file but writes k8s-file lines
        info.log_format = sniff_log_format(info.log_paths[0]) or info.log_format
    add_fallback_logs(info, procfs)
    return info


def list_local(procfs: str = "/proc") -> list[LocalContainer]:
    """Running containers of the Docker Engine on $DOCKER_HOST (``GET /containers/json``)."""
    api = DockerAPI(timeout=10.0)
    if not os.path.exists(api.path):
        raise RuntimeToolError(f"no Docker Engine ({api.path} does not exist)")
    rows = api.get("/containers/json")
    out: list[LocalContainer] = []
    for item in rows if isinstance(rows, list) else []:
        if not isinstance(item, dict) or not item.get("Id"):
            continue
        cid = str(item["Id"])
        inspect = api.inspect_container(cid) or {}
        pid = int(_get(inspect, "State", "Pid") or 0)
        if pid <= 0:
            continue
        names = item.get("Names") or []
        name = str(names[0]).lstrip("/") if isinstance(names, list) and names else cid[:12]
        created = item.get("Created")
        restarts = inspect.get("RestartCount")
        out.append(
            LocalContainer(
                runtime="docker",
                container_id=cid,
                name=name,
                image=str(item.get("Image") or "") or None,
                pid=pid,
                uri=f"docker://{name}",
                status=str(item.get("State") or "") or None,
                created_ns=int(created) * 1_000_000_000 if isinstance(created, int) else None,
                restarts=int(restarts) if isinstance(restarts, int) else None,
            )
        )
    return out
