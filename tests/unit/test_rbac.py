"""docs/rbac.yaml grants exactly what collectors/k8s/client.py uses, no wildcards.

The check is static: every ``self.<api>.<method>`` in client.py (where ``<api>``
is a ``kubernetes.client.*Api`` the client built) is mapped to the HTTP method
and path the generated client sends (read from its ``_<method>_serialize``),
then to an RBAC verb and resource. A call that docs/rbac.yaml does not grant
fails the test, and so does a grant the code never needs.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "collectors" / "k8s" / "client.py"
RBAC = ROOT / "docs" / "rbac.yaml"

Perm = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

API_CLASSES = {n: getattr(k8s, n) for n in dir(k8s) if n.endswith("Api") and n != "ApiClient"}
API_METHODS = {
    m for cls in API_CLASSES.values() for m in dir(cls) if not m.startswith("_") and "_" in m
}


def api_receivers(tree: ast.AST) -> dict[str, str]:
    """``self._core = k8s.CoreV1Api(...)`` -> {"_core": "CoreV1Api"}."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
            continue
        func = node.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        for target in node.targets:
            if isinstance(target, ast.Attribute) and name in API_CLASSES:
                out[target.attr] = str(name)
    return out


def watched(tree: ast.AST) -> set[int]:
    """ids of the API method references made in a call with ``watch=True`` (called so,
    or handed to a call that passes it on, as ``self._call(…, fn, …, watch=True)``):
    a list request with ``?watch=true`` is authorized as the verb "watch"."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if not any(k.arg == "watch" and isinstance(k.value, ast.Constant) and k.value.value
                   is True for k in node.keywords):  # fmt: skip
            continue
        out.update(id(n) for n in [node.func, *node.args] if isinstance(n, ast.Attribute))
    return out


def api_calls(source: str) -> tuple[set[tuple[str, str, bool]], set[str]]:
    """(class, method, watched) of every API method referenced, and names that could not
    be tied to a known API object (those fail the test: the scan must see everything)."""
    tree = ast.parse(source)
    receivers = api_receivers(tree)
    watches = watched(tree)
    found: set[tuple[str, str, bool]] = set()
    unresolved: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or node.attr not in API_METHODS:
            continue
        owner = node.value
        cls = None
        if isinstance(owner, ast.Attribute) and owner.attr in receivers:
            cls = receivers[owner.attr]
        if cls is None or not hasattr(API_CLASSES[cls], node.attr):
            unresolved.add(node.attr)
            continue
        found.add((cls, node.attr, id(node) in watches))
    return found, unresolved


def permissions(cls: str, method: str, watch: bool = False) -> set[Perm]:
    src = inspect.getsource(getattr(API_CLASSES[cls], f"_{method}_serialize"))
    http = re.search(r"method='(\w+)'", src)
    path = re.search(r"resource_path='([^']+)'", src)
    assert http and path, f"{cls}.{method}: cannot read its HTTP method and path"
    parts = path.group(1).strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource = rest[0]
    named = len(rest) >= 2 and rest[1].startswith("{")
    sub = rest[2] if len(rest) >= 3 else None
    full = f"{resource}/{sub}" if sub else resource
    verb = http.group(1)
    if method.startswith("connect_"):
        # exec/attach/portforward: a websocket upgrade (GET, authorized as "get"), which
        # newer API servers also authorize as "create", as they do SPDY's POST
        return {(group, full, "get"), (group, full, "create")}
    if watch:
        assert verb == "GET" and not named, f"{cls}.{method}: watch=True on a non-list call"
        return {(group, full, "watch")}
    mapping = {"GET": "get" if named else "list", "POST": "create", "PATCH": "patch",
               "PUT": "update", "DELETE": "delete" if named else "deletecollection"}  # fmt: skip
    return {(group, full, mapping[verb])}


def required(source: str) -> set[Perm]:
    calls, unresolved = api_calls(source)
    assert not unresolved, f"API methods referenced on unknown objects: {sorted(unresolved)}"
    out: set[Perm] = set()
    for cls, method, watch in calls:
        out |= permissions(cls, method, watch)
    return out


def granted(text: str) -> set[Perm]:
    out: set[Perm] = set()
    for doc in yaml.safe_load_all(text):
        if not doc or doc.get("kind") not in ("ClusterRole", "Role"):
            continue
        for rule in doc.get("rules") or []:
            for g in rule.get("apiGroups") or []:
                for r in rule.get("resources") or []:
                    for v in rule.get("verbs") or []:
                        out.add((g, r, v))
    return out


def test_rbac_has_no_wildcards() -> None:
    for doc in yaml.safe_load_all(RBAC.read_text()):
        for rule in (doc or {}).get("rules") or []:
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                values = rule.get(key) or []
                assert "*" not in values and not any("*" in str(v) for v in values), rule
            assert "nonResourceURLs" not in rule, rule


def test_the_scanner_sees_the_calls_we_know_of() -> None:
    need = required(CLIENT.read_text())
    for perm in [
        ("", "pods", "get"),
        ("", "pods", "watch"),
        ("", "pods/ephemeralcontainers", "patch"),
        ("", "pods/exec", "create"),
        ("", "pods/log", "get"),
        ("", "events", "list"),
        ("", "nodes", "get"),
        ("", "pods", "create"),
        ("", "pods", "delete"),
        ("apps", "replicasets", "get"),
        ("batch", "jobs", "get"),
    ]:
        assert perm in need, f"the scan missed {perm}; it found {sorted(need)}"


def test_every_call_of_the_client_is_granted() -> None:
    missing = required(CLIENT.read_text()) - granted(RBAC.read_text())
    assert not missing, f"collectors/k8s/client.py needs rights docs/rbac.yaml lacks: {missing}"


def test_rbac_grants_nothing_the_code_does_not_use() -> None:
    extra = granted(RBAC.read_text()) - required(CLIENT.read_text())
    assert not extra, f"docs/rbac.yaml grants more than the code uses: {sorted(extra)}"


@pytest.mark.parametrize(
    ("snippet", "perm", "is_granted"),
    [
        ("self._core.list_namespaced_secret('ns')", ("", "secrets", "list"), False),
        ("self._core.delete_namespaced_pod('p', 'ns')", ("", "pods", "delete"), True),
        ("self._apps.patch_namespaced_deployment('d', 'ns', {})",
         ("apps", "deployments", "patch"), False),
        ("stream(self._core.connect_post_namespaced_pod_attach, 'p', 'ns')",
         ("", "pods/attach", "create"), False),
        ("self._call('w', 'x', None, self._core.list_namespaced_secret, 'ns', watch=True)",
         ("", "secrets", "watch"), False),
        ("self._core.list_namespaced_pod('ns', watch=True)", ("", "pods", "watch"), True),
    ],
)  # fmt: skip
def test_a_new_call_is_caught(snippet: str, perm: Perm, is_granted: bool) -> None:
    source = (
        "class C:\n"
        "    def __init__(self, api):\n"
        "        self._core = k8s.CoreV1Api(api)\n"
        "        self._apps = k8s.AppsV1Api(api)\n"
        f"    def f(self):\n        {snippet}\n"
    )
    need = required(source)
    assert perm in need
    assert (perm not in need - granted(RBAC.read_text())) is is_granted


def test_an_api_call_on_an_unknown_object_fails_the_scan() -> None:
    with pytest.raises(AssertionError, match="unknown objects"):
        required("def f(api):\n    api.read_namespaced_secret('s', 'ns')\n")
