"""--memory through an ephemeral agent: what the namespace admits, decided before
anything is added (collectors/k8s/memory_access.py). The kernel's side of the rule
is tested for real in tests/integration/test_memory_access_kernel.py, the cluster's
in tests/e2e/test_k8s_memory.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from collectors.capture import CaptureOptions
from collectors.k8s.capture import agent_argv
from collectors.k8s.client import AdmissionRejected
from collectors.k8s.memory_access import (
    PTRACE,
    RUNTIME_DEFAULT_CAPS,
    MemoryRefused,
    decide,
    memory_warnings,
    permitted,
    without_ptrace,
)
from collectors.memory.acquire import MemoryOptions

RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
PSA_POD_SC = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def pod(
    target_sc: dict[str, Any] | None = None, pod_sc: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7"},
        "spec": {
            "securityContext": pod_sc or {},
            "containers": [{"name": "app", "securityContext": target_sc or {}}],
        },
    }


class DryRun:
    """The pods/ephemeralcontainers patch, judged by a PodSecurity level."""

    def __init__(self, level: str | None) -> None:
        self.level = level
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def add_ephemeral_container(
        self, namespace: str, name: str, container: dict[str, Any], resource_version: str,
        *, dry_run: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        self.calls.append((container, {"dry_run": dry_run, "rv": resource_version}))
        if self.level is None:
            return {}
        raise AdmissionRejected(
            f'pods "{name}" is forbidden: violates PodSecurity "{self.level}:latest": '
            f'non-default capabilities (container "{container["name"]}" must not include '
            '"SYS_PTRACE" in securityContext.capabilities.add)',
            "patch",
            "pods/ephemeralcontainers",
        )


def run(level: str | None, p: dict[str, Any], profile: str = "auto", run_as: Any = None) -> Any:
    api = DryRun(level)
    got = decide(api, p, "app", image="img", profile=profile, run_as=run_as, pull_policy="Never")
    return got, api


def test_permitted_capabilities_as_the_kernel_sees_them_after_exec() -> None:
    assert permitted({}, 0) == RUNTIME_DEFAULT_CAPS
    assert permitted({"capabilities": {"drop": ["ALL"], "add": ["CAP_NET_BIND_SERVICE"]}}, 0) == {
        "NET_BIND_SERVICE"
    }
    assert permitted({"capabilities": {"drop": ["NET_RAW"]}}, 0) == RUNTIME_DEFAULT_CAPS - {
        "NET_RAW"
    }
    assert permitted({"capabilities": {"add": ["SYS_ADMIN"]}}, 1000) == frozenset()  # no ambient
    assert permitted({"privileged": True}, 0) == {"ALL"}


def test_privileged_namespace_gets_sys_ptrace_through_a_dry_run() -> None:
    got, api = run(None, pod())
    assert got.extra_caps == (PTRACE,) and got.policy is None
    ((container, how),) = api.calls
    assert how == {"dry_run": True, "rv": "7"}
    assert PTRACE in container["securityContext"]["capabilities"]["add"]


def test_baseline_root_target_with_default_caps_is_read_by_a_matching_root_agent() -> None:
    got, _api = run("baseline", pod())
    assert got.extra_caps == () and got.policy == "baseline:latest"
    assert "own uid" in got.how


def test_baseline_target_with_a_dropped_cap_still_matches_under_auto() -> None:
    p = pod({"capabilities": {"drop": ["NET_RAW"]}})
    assert run("baseline", p)[0].extra_caps == ()
    # profile baseline does not copy the drop: the agent has more, which is enough
    assert without_ptrace({}, p, p["spec"]["containers"][0]) is None


def test_restricted_target_with_its_uid_in_the_spec_is_read_as_that_uid() -> None:
    p = pod(RESTRICTED_SC, {**PSA_POD_SC, "runAsUser": 65534, "runAsGroup": 65534})
    got, _api = run("restricted", p)
    assert got.extra_caps == () and got.policy == "restricted:latest"


def test_restricted_target_of_an_unnamed_uid_is_refused_in_one_line() -> None:
    p = pod(RESTRICTED_SC, PSA_POD_SC)
    with pytest.raises(MemoryRefused) as err:
        run("restricted", p)
    msg = str(err.value)
    assert "\n" not in msg
    assert 'PodSecurity "restricted:latest" of namespace ns forbids SYS_PTRACE' in msg
    assert "--node-level --memory" in msg and "--run-as" in msg
    # --run-as names it: then the agent runs as it
    assert run("restricted", p, run_as=(1000, 1000))[0].extra_caps == ()


def test_mismatches_the_kernel_refuses_are_refused_up_front() -> None:
    target = {"runAsUser": 1000}
    with pytest.raises(
        MemoryRefused, match="agent would run as uid 0, the target runs as uid 1000"
    ):
        run("baseline", pod(target), profile="baseline")
    extra = pod({"capabilities": {"add": ["SYS_TIME"]}})
    with pytest.raises(MemoryRefused, match="capabilities the agent would lack: SYS_TIME"):
        run("baseline", extra, profile="baseline")
    assert run("baseline", extra, profile="auto")[0].extra_caps == ()  # auto copies the add
    with pytest.raises(MemoryRefused, match="uid 65532, the target runs as uid 0"):
        run("restricted", pod({"runAsUser": 0}), profile="restricted")


def test_profiles_with_ptrace_need_no_dry_run() -> None:
    for profile in ("general", "sysadmin"):
        got, api = run("restricted", pod(), profile=profile)
        assert got.extra_caps == () and api.calls == []


def test_another_admission_refusal_is_left_as_it_is() -> None:
    class Webhook(DryRun):
        def add_ephemeral_container(self, *a: Any, **kw: Any) -> dict[str, Any]:
            raise AdmissionRejected("denied by webhook: no debugging", "patch", "pods")

    with pytest.raises(AdmissionRejected, match="webhook"):
        decide(Webhook(None), pod(), "app", image="i", profile="auto", run_as=None,
               pull_policy="Never")  # fmt: skip


def test_agent_argv_carries_the_memory_options() -> None:
    mem = MemoryOptions(mode="all", max_size=1 << 20, pids=(1, 7))
    opts = CaptureOptions(output=Path("x.exv"), examiner="e", memory=mem)
    argv = agent_argv(opts, "containerd://abc", {}, "ephemeral")
    i = argv.index("--memory")
    assert argv[i : i + 6] == ["--memory", "all", "--memory-max", "1048576", "--memory-pids", "1,7"]
    assert "--memory" not in agent_argv(
        CaptureOptions(output=Path("x"), examiner="e"), "c", {}, "node"
    )


def test_memory_warnings_never_silent() -> None:
    assert memory_warnings(False, {}) == []
    assert memory_warnings(True, {"memory": None}) == [
        "--memory was asked but the agent captured no memory (see the incomplete reason)"
    ]
    mem = {"processes": [{"pid": 1}], "not_captured": [{"pid": 9, "reason": "process exited"}]}
    assert memory_warnings(True, {"memory": mem}) == [
        "memory of pid 9 not captured: process exited"
    ]


def test_the_agent_parses_the_memory_options_and_leaves_its_own_processes_out() -> None:
    import argparse  # noqa: PLC0415

    from collectors.agent import _memory_options, add_arguments  # noqa: PLC0415

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["capture", "--memory", "all", "--memory-max", "4096",
                         "--memory-pids", "1,7", "--mode", "node"])  # fmt: skip
    assert _memory_options(args) == MemoryOptions(mode="all", max_size=4096, pids=(1, 7))
    assert _memory_options(p.parse_args(["capture"])) is None
    own = _memory_options(p.parse_args(["capture", "--memory", "anon"]))
    assert own is not None and own.pids is None
    assert os.getpid() in own.exclude  # ephemeral: the agent's container's processes (cgroup)
