"""Finding the target's init process from inside the pod, over a fake procfs tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collectors.k8s.findpid import (
    NotFound,
    bare_container_id,
    cgroup_paths,
    find_target,
    in_container,
    own_container,
)

CID = "3e4fac3e46dbca1c5af6326920b530294ab971be46bda72044d9aae04ff22e75"
AGENT = "20d815912ab073d32f6bda77bf2cc36ffef5956157c1070a53fd2444bd60b8f4"
POD = "/kubepods/besteffort/pod79722406-e992-43f5-b878-a2c7679bea74"


def proc(root: Path, pid: int | str, ppid: int, cgroup: str, comm: str = "x") -> None:
    d = root / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} 1 1 0 -1 0\n")
    (d / "cgroup").write_text(cgroup)
    (d / "comm").write_text(comm + "\n")


def v1(path: str) -> str:
    return f"12:pids:{path}\n11:memory:{path}\n1:name=systemd:{path}\n0::/\n"


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """targetContainerName: the target (1, 7, 8) and the agent (20, 21) share a namespace."""
    root = tmp_path / "proc"
    for pid, ppid in ((1, 0), (7, 1), (8, 7)):
        proc(root, pid, ppid, v1(f"{POD}/{CID}"))
    for pid, ppid in ((20, 0), (21, 0)):
        proc(root, pid, ppid, v1(f"{POD}/{AGENT}"))
    os.symlink("21", root / "self")
    return root


def test_by_container_id(shared: Path) -> None:
    found = find_target(str(shared), f"containerd://{CID}")
    assert (found.pid, found.how, found.members) == (1, "cgroup", (1, 7, 8))


def test_the_agents_own_processes(shared: Path) -> None:
    assert own_container(str(shared)) == [20, 21]


def test_pid1_without_an_id(shared: Path) -> None:
    assert find_target(str(shared)).pid == 1
    assert find_target(str(shared)).how == "pid1"


def test_node_level_needs_the_id(shared: Path) -> None:
    with pytest.raises(NotFound, match="no container ID"):
        find_target(str(shared), None, allow_pid1=False)
    with pytest.raises(NotFound, match="belongs to container 0123456789ab"):
        find_target(str(shared), "containerd://" + "0123456789ab" * 2, allow_pid1=False)


def test_on_the_node_the_init_is_the_one_whose_parent_is_outside(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    proc(root, 1, 0, v1("/"), "init")
    proc(root, 4100, 1, v1("/"), "containerd-shim")
    proc(root, 4123, 4100, v1(f"{POD}/{CID}"))
    proc(root, 4130, 4123, v1(f"{POD}/{CID}"))
    proc(root, 4140, 4100, v1(f"{POD}/{AGENT}"))  # another container of the pod
    found = find_target(str(root), CID, allow_pid1=False)
    assert found.pid == 4123 and found.members == (4123, 4130)


def test_systemd_cgroup_driver_and_cgroup_namespaces(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    scope = f"/kubepods.slice/kubepods-pod1.slice/cri-containerd-{CID}.scope"
    proc(root, 500, 1, f"0::{scope}\n")
    proc(root, 501, 500, f"0::/../cri-containerd-{CID}.scope\n")
    assert find_target(str(root), CID, allow_pid1=False).members == (500, 501)


def test_a_prefix_of_an_id_never_matches() -> None:
    assert not in_container([f"{POD}/{CID}"], CID[:12])
    assert in_container([f"/x/crio-{CID}.scope"], CID)
    assert not in_container([f"/x/crio-{CID}x.scope"], CID)


def test_pid1_that_is_ours_or_the_pause_process(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    proc(root, 1, 0, v1(f"{POD}/{AGENT}"))
    proc(root, 9, 0, v1(f"{POD}/{AGENT}"))
    os.symlink("9", root / "self")
    with pytest.raises(NotFound, match="targetContainerName"):
        find_target(str(root))
    root2 = tmp_path / "proc2"
    proc(root2, 1, 0, v1(f"{POD}/pause"), "pause")
    proc(root2, 9, 0, v1(f"{POD}/{AGENT}"))
    os.symlink("9", root2 / "self")
    with pytest.raises(NotFound, match="pause process"):
        find_target(str(root2))


def test_helpers() -> None:
    assert bare_container_id(f"containerd://{CID}") == CID
    assert bare_container_id(f"cri-o://{CID.upper()}") == CID
    with pytest.raises(ValueError, match="not a container ID"):
        bare_container_id("containerd://../../etc")
    assert cgroup_paths(b"12:pids:/a\n0::/b\nbad\n") == ["/a", "/b"]
