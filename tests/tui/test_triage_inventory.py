"""The picker's inventory finds running shell-less containers of every runtime."""

from __future__ import annotations

import pytest

from collectors.inventory import list_containers
from collectors.targets.docker import list_local as docker_list_local
from tests.tui.triage_support import *  # noqa: F403 - fixtures

pytestmark = pytest.mark.integration


def test_inventory_lists_every_runtime_once_with_no_shell(
    runc_target, podman_target, containerd_target, docker_target
) -> None:  # type: ignore[no-untyped-def]
    inv = list_containers()
    by_pid = {c.pid: c for c in inv.containers}
    expect = {
        runc_target.pid: ("runc", runc_target.uri),
        podman_target.pid: ("podman", f"podman://{podman_target.name}"),
        containerd_target.pid: ("containerd", None),
        # podman serves the Docker API here and lists the same container first
        docker_target.pid: ("podman", None),
    }
    for pid, (runtime, uri) in expect.items():
        row = by_pid.get(pid)
        assert row is not None, (pid, inv)
        assert row.runtime == runtime, row
        if uri:
            assert row.uri == uri
        assert row.shell is False and "no sh" in row.shell_basis, row
        assert row.created_ns and row.image
    ctr = by_pid[containerd_target.pid]
    assert ctr.uri.startswith("containerd://") and ctr.uri.endswith(containerd_target.container_id)
    # each pid once, however many runtimes report it
    assert len(by_pid) == len(inv.containers)


def test_docker_lister_alone_sees_the_docker_container(docker_target) -> None:  # type: ignore[no-untyped-def]
    rows = {r.pid: r for r in docker_list_local()}
    row = rows[docker_target.pid]
    assert row.runtime == "docker" and row.uri == f"docker://{docker_target.name}"
    assert row.restarts == 0
