"""k8s:// URIs and the choice of container."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.k8s.target import (
    DEFAULT_CONTAINER_ANNOTATION,
    PodRef,
    choose_container,
    parse_k8s,
    require_running,
)
from collectors.targets import parse_uri, resolve
from forensics.errors import TargetError, TargetGone


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("web-0", PodRef(None, "web-0")),
        ("prod/web-0", PodRef("prod", "web-0")),
        ("prod/web-0/app", PodRef("prod", "web-0", "app")),
        ("prod/web.v2-0/sidecar-1", PodRef("prod", "web.v2-0", "sidecar-1")),
    ],
)
def test_parse(ref: str, want: PodRef) -> None:
    assert parse_k8s(ref) == want


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "use k8s://[NAMESPACE/]POD[/CONTAINER]"),
        ("a/b/c/d", "use k8s://[NAMESPACE/]POD[/CONTAINER]"),
        ("ns//pod", "use k8s://[NAMESPACE/]POD[/CONTAINER]"),
        ("Prod/web", "bad namespace 'Prod'"),
        ("prod/Web", "bad pod name 'Web'"),
        ("prod/web/App_1", "bad container name 'App_1'"),
        ("ns.dot/web", "bad namespace 'ns.dot'"),
        ("x" * 64 + "/web", "at most 63"),
    ],
)
def test_parse_rejects(ref: str, message: str) -> None:
    with pytest.raises(TargetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_k8s(ref)


def test_uri_round_trip() -> None:
    assert PodRef(None, "web").uri("prod", "app") == "k8s://prod/web/app"
    assert PodRef("a", "b", "c").uri() == "k8s://a/b/c"


def test_the_scheme_resolves_to_an_explanation_not_a_local_process() -> None:
    assert parse_uri("k8s://ns/pod") == ("k8s", "ns/pod")
    with pytest.raises(TargetError, match="through the Kubernetes API"):
        resolve("k8s://ns/pod")
    with pytest.raises(TargetError, match="bad namespace"):
        resolve("k8s://NS/pod")


def pod(names: list[str], annotation: str | None = None, inits: list[str] | None = None) -> Any:
    meta: dict[str, Any] = {"name": "p", "namespace": "ns"}
    if annotation:
        meta["annotations"] = {DEFAULT_CONTAINER_ANNOTATION: annotation}
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": n} for n in names],
            "initContainers": [{"name": n} for n in inits or []],
            "ephemeralContainers": [{"name": "exuvia-abc123"}],
        },
    }


def test_choose_container() -> None:
    assert choose_container(pod(["app"]), None) == ("app", "the pod's only container")
    name, why = choose_container(pod(["app", "sidecar"]), None)
    assert name == "app" and "first of 2" in why
    name, why = choose_container(pod(["app", "sidecar"], annotation="sidecar"), None)
    assert name == "sidecar" and DEFAULT_CONTAINER_ANNOTATION in why
    # an annotation naming nothing is ignored
    assert choose_container(pod(["app", "b"], annotation="gone"), None)[0] == "app"
    assert choose_container(pod(["app", "b"]), "b") == ("b", "named in the target URI")
    assert choose_container(pod(["app"], inits=["init"]), "init")[0] == "init"


def test_choose_container_rejects() -> None:
    with pytest.raises(TargetError, match=r"no container 'nope'; its containers: app, b"):
        choose_container(pod(["app", "b"]), "nope")
    with pytest.raises(TargetError, match="that is an ephemeral container"):
        choose_container(pod(["app"]), "exuvia-abc123")
    with pytest.raises(TargetError, match="has no containers"):
        choose_container(pod([]), None)


def with_state(state: dict[str, Any], cid: str | None = "containerd://abc") -> Any:
    p = pod(["app"])
    p["status"] = {
        "phase": "Running",
        "containerStatuses": [{"name": "app", "state": state, "containerID": cid}],
    }
    return p


def test_require_running() -> None:
    st = require_running(with_state({"running": {"startedAt": "2026-01-01T00:00:00Z"}}), "app")
    assert st["containerID"] == "containerd://abc"
    with pytest.raises(TargetGone, match=r"not running \(CrashLoopBackOff: back-off"):
        require_running(
            with_state({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}), "app"
        )
    with pytest.raises(TargetGone, match="terminated: Error, exit code 1"):
        require_running(with_state({"terminated": {"reason": "Error", "exitCode": 1}}), "app")
    with pytest.raises(TargetGone, match="no container ID"):
        require_running(with_state({"running": {}}, cid=None), "app")
    with pytest.raises(TargetGone, match="no status yet"):
        require_running(pod(["app"]), "app")
