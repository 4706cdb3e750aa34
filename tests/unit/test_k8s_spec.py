"""The agent's container spec, its security profiles and reuse."""

from __future__ import annotations

import re
from typing import Any

import pytest

from collectors.k8s.spec import (
    AGENT_COMMAND,
    DEFAULT_IMAGE,
    PROFILES,
    agent_name,
    effective_security,
    ephemeral_container,
    node_pod,
    parse_run_as,
    reusable,
    security_context,
)
from forensics import __version__
from forensics.errors import ExuviaError

RESTRICTED_TARGET = {
    "name": "app",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "runAsUser": 1000,
        "readOnlyRootFilesystem": True,
    },
}
POD_SC = {"runAsNonRoot": True, "runAsUser": 2000, "runAsGroup": 3000, "fsGroup": 4000,
          "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip


def pod(sc: dict[str, Any] | None = None, target: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"securityContext": sc or {}, "containers": [target or {"name": "app"}]},
    }


def test_defaults() -> None:
    assert f"ghcr.io/exuvia/collector:{__version__}" == DEFAULT_IMAGE
    assert PROFILES == ("auto", "general", "baseline", "restricted", "sysadmin")
    assert re.fullmatch(r"exuvia-[0-9a-f]{6}", agent_name())
    assert agent_name("abc") == "exuvia-abc"


def test_effective_security_is_pod_then_container() -> None:
    eff = effective_security(pod(POD_SC), RESTRICTED_TARGET)
    assert eff["runAsUser"] == 1000  # the container overrides the pod
    assert eff["runAsGroup"] == 3000 and eff["runAsNonRoot"] is True
    assert eff["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "fsGroup" not in eff  # not a container-level setting


def test_auto_copies_the_targets_identity_and_capabilities_but_not_its_rootfs_lock() -> None:
    sc, notes = security_context("auto", pod(POD_SC), RESTRICTED_TARGET)
    assert sc == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "runAsUser": 1000,
    }
    assert notes == []
    # a target that says nothing: the agent says nothing either, with a note
    sc, notes = security_context("auto", pod(), {"name": "app"})
    assert sc == {} and "--run-as" in notes[0]


def test_auto_copy_is_not_shared_with_the_pod() -> None:
    target = {"name": "app", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
    sc, _ = security_context("auto", pod(), target)
    sc["capabilities"]["add"].append("SYS_ADMIN")
    assert target["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]


@pytest.mark.parametrize(
    ("profile", "want"),
    [
        ("general", {"capabilities": {"add": ["SYS_PTRACE"]}}),
        ("baseline", {}),
        ("sysadmin", {"privileged": True}),
        (
            "restricted",
            {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
                "runAsUser": 1000,
                "runAsGroup": 3000,
            },
        ),
    ],
)
def test_fixed_profiles(profile: str, want: dict[str, Any]) -> None:
    sc, _ = security_context(profile, pod(POD_SC), RESTRICTED_TARGET)
    assert sc == want


def test_restricted_without_a_known_uid_uses_nonroot_and_says_so() -> None:
    sc, notes = security_context("restricted", pod(), {"name": "app"})
    assert sc["runAsUser"] == 65532 and "65532" in notes[0]


def test_run_as() -> None:
    assert parse_run_as("1000") == (1000, None)
    assert parse_run_as("1000:2000") == (1000, 2000)
    for bad in ("root", "1000:", "-1", "1:2:3"):
        with pytest.raises(ExuviaError, match="--run-as"):
            parse_run_as(bad)
    sc, notes = security_context("auto", pod(), {"name": "app"}, (1001, 1002))
    assert sc == {"runAsUser": 1001, "runAsGroup": 1002, "runAsNonRoot": True}
    assert notes == ["--run-as 1001:1002"]
    sc, _ = security_context("baseline", pod(), {"name": "app"}, (0, None))
    assert sc == {"runAsUser": 0}


def test_unknown_profile() -> None:
    with pytest.raises(ExuviaError, match="unknown profile 'debug'"):
        security_context("debug", pod(), {"name": "app"})


def test_ephemeral_container_spec() -> None:
    spec = ephemeral_container(
        name="exuvia-abc123", image="img:1", target_container="app", profile="auto",
        pod=pod(POD_SC), target=RESTRICTED_TARGET, pull_policy="Never", idle=60, linger=5,
    )  # fmt: skip
    c = spec.container
    assert c["name"] == "exuvia-abc123" and c["image"] == "img:1"
    assert c["targetContainerName"] == "app" and c["imagePullPolicy"] == "Never"
    assert c["command"] == AGENT_COMMAND
    assert c["args"] == ["wait", "--idle", "60", "--linger", "5"]
    assert c["stdin"] is False and c["tty"] is False
    assert c["securityContext"]["runAsUser"] == 1000
    assert "resources" not in c and "ports" not in c  # not allowed in ephemeral containers
    bare = ephemeral_container(
        name="exuvia-x", image="i", target_container="app", profile="baseline", pod=pod(),
        target={"name": "app"},
    )  # fmt: skip
    assert "securityContext" not in bare.container


def test_node_pod() -> None:
    body = node_pod(name="exuvia-node-1", namespace="ops", node="n1", image="img", target_uri="k")
    spec = body["spec"]
    assert spec["nodeName"] == "n1" and spec["hostPID"] is True
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert c["securityContext"] == {"privileged": True} and c["command"] == AGENT_COMMAND
    assert body["metadata"]["annotations"]["exuvia.io/target"] == "k"
    assert "hostNetwork" not in spec and "volumes" not in spec


def running_pod(*containers: tuple[str, str, str, str, dict[str, Any]]) -> dict[str, Any]:
    p = pod()
    p["spec"]["ephemeralContainers"] = [
        {"name": n, "targetContainerName": t, "image": i, **({"securityContext": sc} if sc else {})}
        for n, t, i, _s, sc in containers
    ]
    p["status"] = {
        "ephemeralContainerStatuses": [
            {"name": n, "state": {s: {}}} for n, _t, _i, s, _sc in containers
        ]
    }
    return p


def test_reuse_only_a_running_agent_with_the_same_target_image_and_profile() -> None:
    p = running_pod(
        ("exuvia-old", "app", "img", "terminated", {}),
        ("debugger", "app", "img", "running", {}),
        ("exuvia-other", "sidecar", "img", "running", {}),
        ("exuvia-v0", "app", "img:0", "running", {}),
        ("exuvia-priv", "app", "img", "running", {"privileged": True}),
        ("exuvia-good", "app", "img", "running", {}),
    )
    found = reusable(p, "app", "img", {})
    assert found is not None and found[0]["name"] == "exuvia-good"
    assert reusable(p, "app", "img", {"privileged": True})[0]["name"] == "exuvia-priv"  # type: ignore[index]
    assert reusable(p, "app", "img:2", {}) is None
    assert reusable(pod(), "app", "img", {}) is None
