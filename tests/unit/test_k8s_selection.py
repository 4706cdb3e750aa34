"""Fleet targets: selectors, workloads, -A, containers; bad input is one line."""

from __future__ import annotations

import pytest

from collectors.k8s.selection import check_selector, is_fleet, parse_fleet
from forensics.errors import TargetError


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("app=web", "app=web"),
        (" app = web , tier!=db", "app=web,tier!=db"),
        ("app==web", "app==web"),
        ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
        ("env in (prod, staging),!canary", "env in (prod,staging),!canary"),
        ("env notin (dev)", "env notin (dev)"),
        ("app", "app"),
        ("app=", "app="),
    ],
)
def test_selectors_in_kubectl_syntax(given: str, normal: str) -> None:
    assert check_selector(given) == normal


@pytest.mark.parametrize(
    "bad", ["", "app=we b", "=web", "env in ()", "env in (a", "env in a,b)", "-app=web",
            "a/b/c=d", "app=" + "x" * 64, "app=web;rm"],
)  # fmt: skip
def test_bad_selectors_are_one_line_errors(bad: str) -> None:
    with pytest.raises(TargetError) as err:
        check_selector(bad)
    assert "\n" not in str(err.value) and "selector" in str(err.value)


def test_a_selector_in_a_namespace() -> None:
    r = parse_fleet("k8s://prod", selector="app=web")
    assert (r.namespace, r.selector, r.all_namespaces, r.workload_kind) == (
        "prod",
        "app=web",
        False,
        None,
    )
    assert r.container_mode == "default" and r.target == "k8s://prod -l app=web"
    assert r.as_dict()["workload"] is None


def test_a_selector_in_the_default_namespace_and_in_all() -> None:
    assert parse_fleet("k8s://", selector="app=web").namespace is None
    r = parse_fleet("k8s://", selector="app=web", all_namespaces=True)
    assert r.all_namespaces and r.namespace is None and r.target.endswith("-A")
    with pytest.raises(TargetError, match="every namespace"):
        parse_fleet("k8s://prod", selector="app=web", all_namespaces=True)
    with pytest.raises(TargetError, match="needs a label selector"):
        parse_fleet("k8s://", all_namespaces=True)


@pytest.mark.parametrize(
    ("kind", "api", "canonical"),
    [("deployment", "apps/v1", "Deployment"), ("deploy", "apps/v1", "Deployment"),
     ("statefulsets", "apps/v1", "StatefulSet"), ("sts", "apps/v1", "StatefulSet"),
     ("daemonset", "apps/v1", "DaemonSet"), ("ds", "apps/v1", "DaemonSet"),
     ("job", "batch/v1", "Job"), ("Deployment", "apps/v1", "Deployment")],
)  # fmt: skip
def test_workloads(kind: str, api: str, canonical: str) -> None:
    uri = f"k8s://prod/{kind}/web"
    assert is_fleet(uri, selector=None, all_namespaces=False)
    r = parse_fleet(uri, all_containers=True)
    assert (r.namespace, r.workload_api, r.workload_kind, r.workload_name) == (
        "prod",
        api,
        canonical,
        "web",
    )
    assert r.container_mode == "all"
    assert r.as_dict()["workload"] == {"kind": canonical, "name": "web"}


@pytest.mark.parametrize("kind", ["replicaset", "cronjob", "service", "pods"])
def test_an_unknown_kind_lists_the_valid_ones(kind: str) -> None:
    uri = f"k8s://prod/{kind}/web"
    assert is_fleet(uri, selector=None, all_namespaces=False)
    with pytest.raises(TargetError) as err:
        parse_fleet(uri)
    msg = str(err.value)
    assert f"unknown workload kind {kind!r}" in msg
    assert "deployment, statefulset, daemonset, job" in msg and "\n" not in msg


def test_the_single_pod_form_is_not_a_fleet() -> None:
    for uri in ("k8s://web-0", "k8s://prod/web-0", "k8s://prod/web-0/app"):
        assert not is_fleet(uri, selector=None, all_namespaces=False)
    assert is_fleet("k8s://prod", selector="app=web", all_namespaces=False)
    with pytest.raises(TargetError, match="names one pod"):
        parse_fleet("k8s://prod/web-0", selector="app=web")


def test_containers_and_conflicts() -> None:
    r = parse_fleet("k8s://prod", selector="app", container="sidecar")
    assert (r.container_mode, r.container) == ("named", "sidecar")
    assert r.as_dict()["containers"] == {"mode": "named", "name": "sidecar"}
    with pytest.raises(TargetError, match="exclude each other"):
        parse_fleet("k8s://prod", selector="app", container="x", all_containers=True)
    with pytest.raises(TargetError, match="bad container name"):
        parse_fleet("k8s://prod", selector="app", container="Bad_Name")
    with pytest.raises(TargetError, match="no -l or -A"):
        parse_fleet("k8s://prod/deployment/web", selector="app=web")
    with pytest.raises(TargetError, match="bad namespace"):
        parse_fleet("k8s://Prod", selector="app=web")
    with pytest.raises(TargetError, match="bad Deployment name"):
        parse_fleet("k8s://prod/deployment/Web")
    with pytest.raises(TargetError, match="bad fleet target"):
        parse_fleet("k8s://a/b/c/d", selector="x")
