"""Lab launchers for Podman, containerd and Docker (served by ``podman system service``).

Images come from local files only (there is no registry): ``podman import`` of a
rootfs tar, or an OCI image layout tar loaded with ``podman load`` / ``ctr
images import``. Services these launchers start (containerd, the Docker API
socket) are stopped again only if they started them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

from collectors.targets.docker import DockerAPI
from forensics.errors import ExuviaError, RuntimeToolError

from .launch import LabContainer, pid_alive, require_root, run, unique_name, wait_until
from .rootfs import IMAGE_ENV, TARGET_PATH

# This sandbox (and many CI runners) has no systemd and cannot raise rlimits.
PODMAN_GLOBAL = ["podman", "--cgroup-manager=cgroupfs", "--events-backend=file"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
CTR_NAMESPACE = "exuvia-test"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
DOCKER_SOCKET = "/run/exuvia-test/docker.sock"


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise RuntimeToolError(f"{tool} is not installed")


# --- podman ------------------------------------------------------------------


def podman_import(
    rootfs: str | os.PathLike[str], ref: str, tar_path: str | os.PathLike[str]
) -> str:
    """``podman import`` a tar of ``rootfs`` as ``ref`` with the target's Env and Entrypoint.

    Returns the image id.
    """
    require_root("podman import")
    _need("podman")
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(os.listdir(rootfs)):
            tar.add(os.path.join(rootfs, entry), arcname=entry)
    changes = [f'ENTRYPOINT ["{TARGET_PATH}"]', "WORKDIR /"]
    changes += [f"ENV {kv}" for kv in IMAGE_ENV]
    argv = [*PODMAN_GLOBAL, "import"]
    for change in changes:
        argv += ["--change", change]
    out = run([*argv, "--quiet", str(tar_path), ref], timeout=120)
    return out.strip().splitlines()[-1] if out.strip() else ""


def podman_load(oci_tar: str | os.PathLike[str]) -> str:
    """``podman load`` an OCI image layout tar; returns podman's "Loaded image" line."""
    _need("podman")
    return run([*PODMAN_GLOBAL, "load", "-q", "-i", str(oci_tar)], timeout=120).strip()


def podman_remove_image(ref: str) -> None:
    """Remove an image from podman's store (no error if it is gone)."""
    run([*PODMAN_GLOBAL, "rmi", "-f", ref], check=False, timeout=120)


def start_podman(
    image: str,
    *,
    name: str | None = None,
    ready_timeout: float = 20.0,
    env: list[str] | None = None,
) -> LabContainer:
    """``podman run -d`` the target image with a k8s-file log (``env``: added variables)."""
    require_root("running a podman container")
    _need("podman")
    cname = name or unique_name()
    argv = [*PODMAN_GLOBAL, "run", "-d", "--name", cname, "--log-driver", "k8s-file", *ULIMITS]
    for kv in env or []:
        argv += ["--env", kv]
    handle = LabContainer("podman", "", cname, 0, f"podman://{cname}", image=image)

    def remove() -> None:
        run([*PODMAN_GLOBAL, "rm", "-f", "-t", "3", cname], check=False, timeout=60)

    def halt() -> None:
        run([*PODMAN_GLOBAL, "stop", "-t", "3", cname], timeout=60)

    handle._cleanup.append(remove)
    try:
        handle.container_id = run([*argv, image], timeout=120).strip()
        info = json.loads(run([*PODMAN_GLOBAL, "container", "inspect", cname]))[0]
        handle.pid = int(info["State"]["Pid"])
        handle.log_path = (info.get("HostConfig") or {}).get("LogConfig", {}).get("Path")
        handle._halt = halt
        handle.wait_ready(ready_timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


# --- containerd ----------------------------------------------------------------


class ContainerdService:
    """Makes sure containerd answers; stops it on ``close()`` only if we started it."""

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir)
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def answers() -> bool:
        if not os.path.exists(CONTAINERD_SOCKET):
            return False
        try:
            run(["ctr", "--connect-timeout", "2s", "version"], timeout=10)
        except RuntimeToolError:
            return False
        return True

    def ensure(self, timeout: float = 30.0) -> ContainerdService:
        require_root("containerd")
        _need("ctr")
        _need("containerd")
        if self.answers():
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "containerd.log", "ab")
        self.proc = subprocess.Popen(
            ["containerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        if not wait_until(self.answers, timeout, 0.2):
            self.close()
            raise RuntimeToolError(
                f"containerd did not answer within {timeout:g}s "
                f"(log: {self.workdir}/containerd.log)"
            )
        return self

    def close(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
            self.proc = None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a service we started, SIGKILL it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def ctr(*args: str, timeout: float = 60, check: bool = True) -> str:
    """Run ``ctr -n exuvia-test ARGS``."""
    return run(["ctr", "-n", CTR_NAMESPACE, *args], timeout=timeout, check=check)


def ctr_import(oci_tar: str | os.PathLike[str]) -> None:
    """Import an OCI image layout tar into the exuvia-test namespace."""
    ctr("images", "import", str(oci_tar), timeout=120)


def ctr_remove_image(ref: str) -> None:
    """Remove an image from the exuvia-test namespace (and the namespace if empty)."""
    ctr("images", "rm", "--sync", ref, check=False)  # --sync: wait for garbage collection
    run(["ctr", "namespaces", "rm", CTR_NAMESPACE], check=False)


def _ctr_task_status(cid: str) -> str | None:
    out = ctr("tasks", "ls", check=False)
    for line in out.splitlines()[1:]:
        cells = line.split()
        if cells and cells[0] == cid:
            return cells[2] if len(cells) > 2 else None
    return None


def _ctr_halt(cid: str, timeout: float = 5.0) -> None:
    def stopped() -> bool:
        return _ctr_task_status(cid) in (None, "STOPPED")

    if stopped():
        return
    ctr("tasks", "kill", "-s", "SIGTERM", cid, check=False)
    if not wait_until(stopped, timeout, 0.1):
        ctr("tasks", "kill", "-a", "-s", "SIGKILL", cid, check=False)
        wait_until(stopped, timeout, 0.1)


def _ctr_remove(cid: str) -> None:
    _ctr_halt(cid)
    if _ctr_task_status(cid) is not None:
        ctr("tasks", "delete", "-f", cid)
    ctr("containers", "delete", cid, check=False)
    leftover = ctr("containers", "ls", "-q", check=False).split()
    if cid in leftover:
        raise RuntimeToolError(f"containerd container {cid} was not deleted")


def start_containerd(
    image: str,
    log_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    ready_timeout: float = 20.0,
    env: list[str] | None = None,
) -> LabContainer:
    """``ctr run -d --log-uri file://...`` the target image (already imported)."""
    require_root("running a containerd container")
    cid = name or unique_name()
    log = Path(log_dir).resolve() / f"{cid}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = LabContainer(
        "containerd",
        cid,
        cid,
        0,
        f"containerd://{CTR_NAMESPACE}/{cid}",
        image=image,
        log_path=str(log),
    )
    handle._cleanup.append(lambda: log.unlink(missing_ok=True))
    handle._cleanup.append(lambda: _ctr_remove(cid))
    try:
        envs = [a for kv in env or [] for a in ("--env", kv)]
        ctr("run", "-d", "--log-uri", f"file://{log}", *envs, image, cid, timeout=120)
        for line in ctr("tasks", "ls").splitlines()[1:]:
            cells = line.split()
            if cells and cells[0] == cid:
                handle.pid = int(cells[1])
        if handle.pid <= 0:
            raise RuntimeToolError(f"ctr run {cid}: no task appeared")
        handle._halt = lambda: _ctr_halt(cid)
        handle.wait_ready(ready_timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


# --- docker (Podman's Docker-compatible API) ----------------------------------------------


class DockerService:
    """A Docker Engine API on a unix socket: an existing one, or ``podman system service``."""

    def __init__(self, workdir: str | os.PathLike[str], socket_path: str = DOCKER_SOCKET) -> None:
        self.workdir = Path(workdir)
        self.socket_path = socket_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def api(self) -> DockerAPI:
        return DockerAPI(self.docker_host)

    def answers(self) -> bool:
        try:
            status, _ = self.api().request("GET", "/_ping")
        except ExuviaError:
            return False
        return status == 200

    def ensure(self, timeout: float = 30.0) -> DockerService:
        require_root("the podman Docker API service")
        if self.answers():
            return self
        _need("podman")
        Path(self.socket_path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "podman-service.log", "ab")
        self.proc = subprocess.Popen(
            [*PODMAN_GLOBAL, "system", "service", "--time=0", self.docker_host],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        if not wait_until(self.answers, timeout, 0.1):
            self.close()
            raise RuntimeToolError(f"podman system service did not answer on {self.socket_path}")
        return self

    def close(self) -> None:
        if self.proc is None:
            return
        _terminate(self.proc)
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        with contextlib.suppress(OSError):  # our /run/exuvia-test, if now empty
            os.rmdir(os.path.dirname(self.socket_path))


def _api_call(
    api: DockerAPI,
    method: str,
    path: str,
    ok: tuple[int, ...],
    *,
    query: dict[str, str] | None = None,
    body: object = None,
) -> object:
    status, data = api.request(method, path, query=query, body=body)
    if status not in ok:
        msg = data.get("message") if isinstance(data, dict) else data
        raise RuntimeToolError(f"Docker API {method} {path} failed (HTTP {status}): {msg}")
    return data


def start_docker(
    image: str,
    service: DockerService,
    *,
    name: str | None = None,
    ready_timeout: float = 20.0,
    env: list[str] | None = None,
) -> LabContainer:
    """Create and start the target through the Docker Engine API (json-file log driver)."""
    api = service.api()
    cname = name or unique_name()
    handle = LabContainer("docker", "", cname, 0, f"docker://{cname}", image=image)

    def remove() -> None:
        _api_call(api, "DELETE", f"/containers/{cname}", (200, 204, 404), query={"force": "true"})

    def halt() -> None:
        _api_call(api, "POST", f"/containers/{cname}/stop", (204, 304), query={"t": "3"})

    handle._cleanup.append(remove)
    body: dict[str, object] = {
        "Image": image,
        "HostConfig": {
            "LogConfig": {"Type": "json-file", "Config": {}},
            "Ulimits": [
                {"Name": "nofile", "Soft": 1024, "Hard": 1024},
                {"Name": "nproc", "Soft": 1024, "Hard": 1024},
            ],
        },
    }
    if env:
        body["Env"] = list(env)
    try:
        created = _api_call(
            api, "POST", "/containers/create", (201,), query={"name": cname}, body=body
        )
        handle.container_id = str(created.get("Id", "")) if isinstance(created, dict) else ""
        _api_call(api, "POST", f"/containers/{cname}/start", (204, 304))
        info = api.inspect_container(cname) or {}
        handle.pid = int((info.get("State") or {}).get("Pid") or 0)
        handle.log_path = info.get("LogPath") or None
        handle._halt = halt
        handle.wait_ready(ready_timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


__all__ = [
    "ContainerdService",
    "DockerService",
    "ctr_import",
    "ctr_remove_image",
    "pid_alive",
    "podman_import",
    "podman_load",
    "podman_remove_image",
    "start_containerd",
    "start_docker",
    "start_podman",
]
