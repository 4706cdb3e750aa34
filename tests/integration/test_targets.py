"""Target resolvers against real shell-less containers of every runtime on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from collectors.targets import resolve
from forensics.errors import RuntimeToolError, TargetError, TargetGone
from tui.demo.lab import start_demo_container
from tui.demo.launch import RUNC_IMAGE_NAME, LabContainer
from tui.demo.rootfs import (
    AFTER_START_FILE,
    APP_LOG,
    CHANGED_CONFIG,
    DEFAULT_PORT,
    FAKE_SECRETS,
    READY_MARK,
    TARGET_PATH,
)

RUNTIMES = ["runc", "podman", "containerd", "docker"]
EXPECTED_LOG_FORMAT = {
    "runc": "raw",  # stdout/stderr redirected to a host file
    "podman": "k8s-file",
    "containerd": "raw",  # --log-uri file://: the shim copies raw output
    "docker": "k8s-file",  # Podman's API says json-file but writes k8s-file lines
}
RECENT_NS = 10 * 60 * 1_000_000_000


def _target(request: pytest.FixtureRequest, runtime: str) -> LabContainer:
    handle: LabContainer = request.getfixturevalue(f"{runtime}_target")
    return handle


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(x) for x in fh.read().split()]


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as fh:
        return fh.read().strip()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_resolves_running_container(request: pytest.FixtureRequest, runtime: str) -> None:
    handle = _target(request, runtime)
    info = resolve(handle.uri)
    now = time.time_ns()

    assert info.uri == handle.uri
    assert info.runtime == runtime
    assert info.pid == handle.pid
    assert os.readlink(f"/proc/{info.pid}/exe") == TARGET_PATH
    assert os.readlink(f"/proc/{info.pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert info.container_id == handle.container_id
    assert info.name == handle.name
    assert info.image == handle.image
    assert info.status == "running"
    assert info.runtime_version
    assert info.started_ns is not None and now - RECENT_NS < info.started_ns <= now
    assert info.created_ns is not None and now - RECENT_NS < info.created_ns <= now
    assert info.log_format == EXPECTED_LOG_FORMAT[runtime]
    assert info.log_paths and all(os.path.isfile(p) for p in info.log_paths)
    with open(info.log_paths[0], encoding="utf-8", errors="replace") as fh:
        assert READY_MARK in fh.read()
    # secrets from the image's environment never reach the runtime facts
    facts = json.dumps(info.runtime_facts)
    assert info.runtime_facts
    for secret in FAKE_SECRETS.values():
        assert secret not in facts
    assert "API_TOKEN=<omitted>" in facts


@pytest.mark.parametrize("runtime", ["containerd", "docker"])
def test_image_identity_from_oci_archive(
    request: pytest.FixtureRequest, runtime: str, target_oci: Any
) -> None:
    info = resolve(_target(request, runtime).uri)
    assert info.image == target_oci.ref
    assert info.image_id == target_oci.config_digest
    assert info.image_digest == target_oci.manifest_digest


def test_podman_image_and_upperdir(podman_target: LabContainer) -> None:
    info = resolve(podman_target.uri)
    assert info.image_id and len(info.image_id) == 64
    assert info.image_digest and info.image_digest.startswith("sha256:")
    assert info.upperdir and os.path.isdir(info.upperdir)
    # files written or changed after start are in the upper layer
    assert os.path.isfile(info.upperdir + AFTER_START_FILE)
    assert os.path.isfile(info.upperdir + CHANGED_CONFIG)
    assert info.runtime_facts["inspect"]["Id"] == podman_target.container_id


def test_docker_upperdir_and_engine(docker_target: LabContainer) -> None:
    info = resolve(docker_target.uri)
    assert info.upperdir and os.path.isfile(info.upperdir + AFTER_START_FILE)
    assert info.runtime_version and "4." in info.runtime_version
    assert info.runtime_facts["engine"]["ApiVersion"]


def test_runc_facts_and_logs(runc_target: LabContainer) -> None:
    info = resolve(runc_target.uri)
    assert info.image == RUNC_IMAGE_NAME
    assert info.log_paths == [runc_target.log_path]
    assert info.upperdir is None  # the filesystem collector reads mountinfo
    assert info.runtime_facts["state"]["bundle"] == runc_target.bundle
    assert info.runtime_facts["config"]["process"]["args"] == [TARGET_PATH]


def test_containerd_log_from_shim(containerd_target: LabContainer) -> None:
    info = resolve(containerd_target.uri)
    assert info.log_paths == [containerd_target.log_path]
    assert info.runtime_facts["namespace"] == "exuvia-test"
    assert info.runtime_facts["task"]["STATUS"] == "RUNNING"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pid_uri_on_container_init(request: pytest.FixtureRequest, runtime: str) -> None:
    handle = _target(request, runtime)
    by_runtime = resolve(handle.uri)
    info = resolve(f"pid://{handle.pid}")
    assert info.runtime == "pid"
    assert info.pid == handle.pid
    assert info.container_id is None and info.name is None and info.image is None
    assert info.status in ("sleeping", "running")
    assert info.runtime_facts["exe"] == TARGET_PATH
    assert info.runtime_facts["other_pid_ns"] is True
    assert info.started_ns is not None and by_runtime.started_ns is not None
    assert abs(info.started_ns - by_runtime.started_ns) < 2_000_000_000
    if runtime == "runc":
        assert info.log_paths == [handle.log_path]


def test_pid_uri_on_host_process() -> None:
    info = resolve(f"pid://{os.getpid()}")
    assert info.runtime == "pid"
    assert info.runtime_facts["other_pid_ns"] is False
    with open(f"/proc/{os.getpid()}/stat") as fh:
        assert fh.read()  # sanity
    assert info.started_ns is not None and abs(info.started_ns - time.time_ns()) < 3600 * 10**9


def test_target_staged_activity(runc_target: LabContainer) -> None:
    """What the target program promises (tui/demo/target.c): tests rely on it."""
    root = runc_target.root
    with open(root + APP_LOG) as fh:
        log = fh.read()
    for needle in ("INFO main[1]: starting", "listening tcp=0.0.0.0:8080", READY_MARK):
        assert needle in log
    assert os.path.isfile(root + AFTER_START_FILE)
    with open(root + CHANGED_CONFIG) as fh:
        assert "feature_x = on" in fh.read()
    kids = {_comm(p): p for p in _children(runc_target.pid)}
    assert set(kids) == {"worker", ".x", "kworker-memfd"}
    assert os.readlink(f"/proc/{kids['.x']}/exe") == "/tmp/.x (deleted)"
    assert os.readlink(f"/proc/{kids['kworker-memfd']}/exe").startswith("/memfd:kworker")
    with open(f"/proc/{runc_target.pid}/net/tcp") as fh:
        listening = [ln.split()[1] for ln in fh.readlines()[1:] if ln.split()[3] == "0A"]
    assert f"00000000:{DEFAULT_PORT:04X}" in listening
    with open(f"/proc/{runc_target.pid}/environ", "rb") as fh:
        env = fh.read().split(b"\0")
    assert b"API_TOKEN=" + FAKE_SECRETS["API_TOKEN"].encode() in env


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("runc://exuvia-no-such-container", "not found"),
        ("podman://exuvia-no-such-container", "no podman container"),
        ("containerd://exuvia-test/exuvia-no-such-container", "no containerd container"),
        ("docker://exuvia-no-such-container", "no docker container"),
    ],
)
def test_nonexistent_container(request: pytest.FixtureRequest, uri: str, needle: str) -> None:
    runtime = uri.split(":", 1)[0]
    _target(request, runtime)  # the runtime (and its service) is up
    with pytest.raises(TargetError) as exc:
        resolve(uri)
    assert not isinstance(exc.value, TargetGone)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


# how each runtime lists its containers (names or ids), to check stop() removed them
LIST_CONTAINERS = {
    "runc": ["runc", "list", "-q"],
    "podman": ["podman", "ps", "-a", "--format", "{{.Names}}"],
    "containerd": ["ctr", "-n", "exuvia-test", "containers", "ls", "-q"],
    "docker": ["podman", "ps", "-a", "--format", "{{.Names}}"],
}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stopped_container_then_cleanup(
    request: pytest.FixtureRequest, lab: Any, runtime: str
) -> None:
    _target(request, runtime)  # DOCKER_HOST set for docker
    handle: LabContainer = getattr(lab, runtime)()
    assert resolve(handle.uri).pid == handle.pid
    handle.halt()
    with pytest.raises(TargetGone) as exc:
        resolve(handle.uri)
    assert "not running" in str(exc.value) or "no task" in str(exc.value)
    assert "\n" not in str(exc.value)

    handle.stop()
    listed = subprocess.run(LIST_CONTAINERS[runtime], capture_output=True, text=True, check=True)
    assert handle.name not in listed.stdout.split()
    with pytest.raises(TargetError):
        resolve(handle.uri)
    if handle.bundle:
        assert not os.path.exists(handle.bundle)
    with open("/proc/self/mountinfo") as fh:
        assert handle.name not in fh.read()


def test_pid_errors() -> None:
    with pytest.raises(TargetError, match="bad PID"):
        resolve("pid://abc")
    with pytest.raises(TargetGone, match="does not exist"):
        resolve("pid://999999999")


def test_unknown_scheme_lists_valid_ones() -> None:
    with pytest.raises(TargetError) as exc:
        resolve("lxc://web")
    for scheme in ("pid://", "runc://", "podman://", "docker://", "containerd://", "k8s://"):
        assert scheme in str(exc.value)


def test_docker_without_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(RuntimeToolError, match="cannot reach the Docker Engine"):
        resolve("docker://web")


def test_start_demo_container_cleans_up(target_rootfs: Any, tmp_path: Any) -> None:
    """``exuvia demo``'s entry point: a ready runc target, gone without a trace on exit."""
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("needs root and runc")
    with start_demo_container(tmp_path) as handle:
        info = resolve(handle.uri)
        assert info.runtime == "runc" and info.pid == handle.pid
        assert handle.is_ready()
        bundle = handle.bundle
    assert bundle and not os.path.exists(bundle)
    listed = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True, check=True)
    assert handle.name not in listed.stdout.split()
    with open("/proc/self/mountinfo") as fh:
        assert handle.name not in fh.read()
