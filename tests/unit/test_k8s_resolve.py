"""Fleet resolution logic over API objects shaped as the server sends them.

The fake stands in for collectors/k8s/client.KubeClient (our own wrapper); the same
resolution runs against a real cluster in tests/e2e/test_k8s_fleet.py."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.k8s.resolve import resolve, seen_after, selector_of
from collectors.k8s.selection import parse_fleet
from forensics.errors import TargetError


def _obj(
    kind: str, name: str, uid: str, owner: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "prod", "uid": uid, "resourceVersion": "7"}
    if owner:
        meta["ownerReferences"] = [{**owner, "controller": True}]
    return {"kind": kind, "metadata": meta, "spec": spec}


def _ref(kind: str, name: str, uid: str, api: str = "apps/v1") -> dict[str, Any]:
    return {"kind": kind, "name": name, "uid": uid, "apiVersion": api}


def _pod(name: str, uid: str, owner: dict[str, Any] | None, node: str = "n1") -> dict[str, Any]:
    p = _obj("Pod", name, uid, owner, nodeName=node, containers=[{"name": "app"}, {"name": "side"}])
    p["metadata"]["labels"] = {"app": "web"}
    p["metadata"]["creationTimestamp"] = "2026-12-06T10:00:00Z"
    p["status"] = {"phase": "Running"}
    return p


class FakeApi:
    def __init__(self, pods: list[dict[str, Any]], objs: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.objs = {(o["kind"], o["metadata"]["name"]): o for o in objs}
        self.selectors: list[str | None] = []
        self.reads = 0

    def list_pods(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.selectors.append(label_selector)
        return list(self.pods)

    def list_pods_all_namespaces(self, label_selector: str) -> list[dict[str, Any]]:
        return self.list_pods("", label_selector)

    def get_owner(self, namespace: str, api_version: str, kind: str, name: str) -> Any:
        self.reads += 1
        if (kind, name) not in self.objs:
            raise TargetError(f"{kind} {name} not found")
        return self.objs[(kind, name)]


NOT_DB = {"key": "tier", "operator": "NotIn", "values": ["db"]}
DEP = _obj("Deployment", "web", "d1", selector={"matchLabels": {"app": "web"},
           "matchExpressions": [NOT_DB]})  # fmt: skip
RS = _obj("ReplicaSet", "web-5f", "r1", _ref("Deployment", "web", "d1"))


def test_a_deployment_resolves_through_its_replicasets_and_drops_strays() -> None:
    pods = [_pod("web-5f-b", "p2", _ref("ReplicaSet", "web-5f", "r1"), node="n2"),
            _pod("web-5f-a", "p1", _ref("ReplicaSet", "web-5f", "r1")),
            _pod("stray", "p3", None)]  # fmt: skip
    api = FakeApi(pods, [DEP, RS])
    res = resolve(api, parse_fleet("k8s://prod/deploy/web", all_containers=True), "default")
    assert api.selectors == ["app=web,tier notin (db)"]
    assert [p["name"] for p in res.pods] == ["web-5f-a", "web-5f-b"]
    assert res.pods[0]["owners"] == [
        {"kind": "ReplicaSet", "name": "web-5f", "uid": "r1", "api_version": "apps/v1"},
        {"kind": "Deployment", "name": "web", "uid": "d1", "api_version": "apps/v1"},
    ]
    assert res.pods[1]["node"] == "n2" and res.pods[0]["resource_version"] == "7"
    assert res.pods[0]["created_ns"] == 1796551200 * 10**9
    assert [e["name"] for e in res.excluded] == ["stray"]
    assert res.workload == {"kind": "Deployment", "name": "web", "uid": "d1",
                            "resource_version": "7",
                            "selector": "app=web,tier notin (db)"}  # fmt: skip
    assert [(p.pod, p.container) for p in res.plan()] == [
        ("web-5f-a", "app"),
        ("web-5f-a", "side"),
        ("web-5f-b", "app"),
        ("web-5f-b", "side"),
    ]
    assert api.reads == 3  # the workload, then the ReplicaSet and Deployment once each


def test_a_replicaset_of_another_deployment_is_not_ours() -> None:
    other = _obj("ReplicaSet", "web-9x", "r9", _ref("Deployment", "web", "OLD-UID"))
    api = FakeApi([_pod("web-9x-a", "p9", _ref("ReplicaSet", "web-9x", "r9"))], [DEP, other])
    with pytest.raises(
        TargetError, match=r"no pods in namespace prod match Deployment/web .*1 pods"
    ):
        resolve(api, parse_fleet("k8s://prod/deployment/web"), "default")


def test_selector_no_match_and_max_pods() -> None:
    with pytest.raises(TargetError) as err:
        resolve(FakeApi([], []), parse_fleet("k8s://", selector="app=web"), "team-a")
    assert str(err.value) == "no pods in namespace team-a match selector 'app=web'"
    pods = [_pod(f"p{i}", f"u{i}", None) for i in range(4)]
    with pytest.raises(TargetError, match="matches 4 pods, more than --max-pods 3"):
        resolve(FakeApi(pods, []), parse_fleet("k8s://prod", selector="app=web"), "x", max_pods=3)
    res = resolve(FakeApi(pods, []), parse_fleet("k8s://prod", selector="app"), "x", max_pods=4)
    assert len(res.plan()) == 4 and res.pods[0]["owners"] == []
    assert {p.container for p in res.plan()} == {"app"}  # the first of two


def test_a_named_container_missing_from_a_pod_is_planned_as_a_reason() -> None:
    api = FakeApi([_pod("a", "u1", None)], [])
    plan = resolve(api, parse_fleet("k8s://prod", selector="app", container="db"), "x").plan()
    assert plan[0].container == "db" and "has no container 'db'" in str(plan[0].reason)


def test_pods_seen_after_resolution() -> None:
    api = FakeApi([_pod("a", "u1", None)], [])
    res = resolve(api, parse_fleet("k8s://prod", selector="app"), "x")
    api.pods.append(_pod("b", "u2", None))
    seen = seen_after(api, res)
    assert [(s["name"], s["uid"]) for s in seen] == [("b", "u2")] and seen[0]["seen_ns"] > 0


def test_selector_of_refuses_empty_and_unknown() -> None:
    with pytest.raises(TargetError, match="no pod selector"):
        selector_of(_obj("Job", "j", "u"))
    bad = _obj("Job", "j", "u", selector={"matchExpressions": [{"key": "a", "operator": "Gt"}]})
    with pytest.raises(TargetError, match="operator"):
        selector_of(bad)
    ok = _obj("Job", "j", "u", selector={"matchExpressions": [
        {"key": "a", "operator": "Exists"}, {"key": "b", "operator": "DoesNotExist"},
        {"key": "c", "operator": "In", "values": ["x", "y"]}]})  # fmt: skip
    assert selector_of(ok) == "a,!b,c in (x,y)"
