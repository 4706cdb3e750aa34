"""Real shell-less target containers for integration tests.

Session-scoped: the target binary and rootfs (built once), its images (a
``podman import`` image, and an OCI image layout tar loaded into podman and
containerd), and the services (containerd, Podman's Docker-compatible API).

Module-scoped targets, each a started and ready ``LabContainer`` (see
tui/demo/launch.py) with ``.uri``, ``.pid``, ``.container_id``, ``.name``,
``.image``, ``.log_path``:

    runc_target        runc on an overlayfs, stdout/stderr to a host file
    podman_target      podman run -d --log-driver k8s-file
    containerd_target  ctr run -d --log-uri file://...   (namespace exuvia-test)
    docker_target      created through the Docker Engine API that
                       ``podman system service`` serves (on a socket of its
                       own under /run/exuvia-test/); DOCKER_HOST is set
                       while it lives, so ``resolve("docker://NAME")`` works

``lab`` starts more (``lab.runc()``, ``lab.podman()``, ...), each stopped at the
end of the session at the latest. Without root, or with a runtime missing,
the fixtures skip with a one-line reason.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forensics.errors import RuntimeToolError
from tui.demo import runtimes as rt
from tui.demo.lab import IMAGE_REPO, oci_archive
from tui.demo.launch import LabContainer, start_runc
from tui.demo.rootfs import IMAGE_ENV, build_demo_rootfs

#: the target's environment addition for a run that stages no incident (target.c)
CLEAN_ENV = ["LAB_MODE=clean"]

FIXTURE_TIMES: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIXTURE_TIMES:
        times = ", ".join(f"{k} {v:.2f}s" for k, v in FIXTURE_TIMES.items())
        terminalreporter.write_line(f"lab fixture set-up times: {times}")


def _timed(key: str, t0: float) -> None:
    FIXTURE_TIMES[key] = FIXTURE_TIMES.get(key, 0.0) + time.monotonic() - t0


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (containers, overlay mounts)")


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def lab_tag() -> str:
    """A tag unique to this session, so parallel sessions never share images."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def target_rootfs(lab_dir: Path) -> Path:
    """The shell-less rootfs: /app/target (static) and a few data files."""
    t0 = time.monotonic()
    try:
        rootfs = build_demo_rootfs(lab_dir)
    except RuntimeToolError as err:
        if "no C compiler" in str(err):
            pytest.skip(str(err))
        raise
    _timed("build", t0)
    return rootfs


@pytest.fixture(scope="session")
def target_oci(target_rootfs: Path, lab_dir: Path, lab_tag: str) -> Any:
    """The target as an OCI image layout tar (an ``OciImage``: .path .ref .config_digest ...)."""
    return oci_archive(target_rootfs, lab_dir / "target-oci.tar", f"{IMAGE_REPO}:oci-{lab_tag}")


@pytest.fixture(scope="session")
def podman_image(target_rootfs: Path, lab_dir: Path, lab_tag: str) -> Iterator[str]:
    """A ``podman import``-ed image of the target; its reference."""
    _need_root()
    _need("podman")
    t0 = time.monotonic()
    ref = f"{IMAGE_REPO}:import-{lab_tag}"
    rt.podman_import(target_rootfs, ref, lab_dir / "target-rootfs.tar")
    _timed("podman image", t0)
    yield ref
    rt.podman_remove_image(ref)


@pytest.fixture(scope="session")
def containerd_service(lab_dir: Path) -> Iterator[rt.ContainerdService]:
    """containerd on its default socket (started here only if it was not running)."""
    _need_root()
    _need("containerd", "ctr")
    t0 = time.monotonic()
    svc = rt.ContainerdService(lab_dir / "containerd").ensure()
    _timed("containerd service", t0)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def containerd_image(containerd_service: rt.ContainerdService, target_oci: Any) -> Iterator[str]:
    t0 = time.monotonic()
    rt.ctr_import(target_oci.path)
    _timed("containerd image", t0)
    yield target_oci.ref
    rt.ctr_remove_image(target_oci.ref)


@pytest.fixture(scope="session")
def docker_service(lab_dir: Path, lab_tag: str) -> Iterator[rt.DockerService]:
    """A Docker Engine API: ``podman system service`` on /run/exuvia-test/docker-TAG.sock."""
    _need_root()
    _need("podman")
    t0 = time.monotonic()
    sock = f"/run/exuvia-test/docker-{lab_tag}.sock"  # one per session: never shared
    svc = rt.DockerService(lab_dir / "docker", sock).ensure()
    _timed("docker service", t0)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def docker_image(docker_service: rt.DockerService, target_oci: Any) -> Iterator[str]:
    """The OCI archive ``podman load``-ed (the API service shares podman's store)."""
    t0 = time.monotonic()
    rt.podman_load(target_oci.path)
    _timed("docker image", t0)
    yield target_oci.ref
    rt.podman_remove_image(target_oci.ref)


class Lab:
    """Starts lab containers on demand; ``close()`` stops any still running."""

    def __init__(self, request: pytest.FixtureRequest, lab_dir: Path) -> None:
        self._request = request
        self._dir = lab_dir
        self._handles: list[LabContainer] = []

    def _keep(self, key: str, t0: float, handle: LabContainer) -> LabContainer:
        _timed(key, t0)
        self._handles.append(handle)
        return handle

    # ``env``: variables added to the image's (e.g. CLEAN_ENV for a target that stages
    # no incident)
    def runc(self, env: list[str] | None = None) -> LabContainer:
        _need_root()
        _need("runc")
        rootfs = self._request.getfixturevalue("target_rootfs")
        t0 = time.monotonic()
        full = [*IMAGE_ENV, *env] if env else None
        return self._keep("runc start", t0, start_runc(rootfs, self._dir / "bundles", env=full))

    def podman(self, env: list[str] | None = None) -> LabContainer:
        image = self._request.getfixturevalue("podman_image")
        t0 = time.monotonic()
        return self._keep("podman start", t0, rt.start_podman(image, env=env))

    def containerd(self, env: list[str] | None = None) -> LabContainer:
        image = self._request.getfixturevalue("containerd_image")
        t0 = time.monotonic()
        return self._keep(
            "containerd start", t0, rt.start_containerd(image, self._dir / "ctr-logs", env=env)
        )

    def docker(self, env: list[str] | None = None) -> LabContainer:
        image = self._request.getfixturevalue("docker_image")
        service = self._request.getfixturevalue("docker_service")
        t0 = time.monotonic()
        return self._keep("docker start", t0, rt.start_docker(image, service, env=env))

    def close(self) -> None:
        errors = []
        for handle in reversed(self._handles):
            try:
                handle.stop()
            except RuntimeToolError as err:
                errors.append(str(err))
        self._handles.clear()
        if errors:
            raise RuntimeToolError("; ".join(errors))


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, lab_dir: Path) -> Iterator[Lab]:
    the_lab = Lab(request, lab_dir)
    yield the_lab
    the_lab.close()


@pytest.fixture(scope="module")
def runc_target(lab: Lab) -> Iterator[LabContainer]:
    handle = lab.runc()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def podman_target(lab: Lab) -> Iterator[LabContainer]:
    handle = lab.podman()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def containerd_target(lab: Lab) -> Iterator[LabContainer]:
    handle = lab.containerd()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def docker_target(lab: Lab, docker_service: rt.DockerService) -> Iterator[LabContainer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", docker_service.docker_host)
        handle = lab.docker()
        yield handle
        handle.stop()
