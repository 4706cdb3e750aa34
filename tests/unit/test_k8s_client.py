"""ApiException -> the project's errors, saying which verb on which resource failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config

from collectors.k8s import client as client_mod
from collectors.k8s.client import (
    AdmissionRejected,
    Conflict,
    KubeClient,
    NotFound,
    _exec_error,
    translate,
)
from forensics.errors import AccessDenied, ExuviaError, TargetError


def api_error(status: int, message: str, reason: str = "") -> ApiException:
    err = ApiException(status=status, reason=reason or "Reason")
    err.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return err


def test_rbac_denial_names_the_refused_verb_and_resource() -> None:
    msg = (
        'pods "big" is forbidden: User "system:serviceaccount:exp1:cap" cannot patch resource '
        '"pods/ephemeralcontainers" in API group "" in the namespace "exp1"'
    )
    err = translate(api_error(403, msg), "patch", "pods/ephemeralcontainers", "exp1")
    assert type(err) is AccessDenied
    assert str(err).startswith(
        "forbidden (403): not allowed to patch pods/ephemeralcontainers in namespace exp1: "
    )
    assert "docs/rbac.yaml" in str(err)
    # the authorizer's words win over what we thought we were doing
    msg = msg.replace("cannot patch", "cannot get").replace("ephemeralcontainers", "exec")
    assert "not allowed to get pods/exec" in str(translate(api_error(403, msg), "create", "x", "n"))
    apps = 'cannot get resource "replicasets" in API group "apps" in the namespace "ns"'
    assert "get replicasets.apps" in str(translate(api_error(403, apps), "get", "x", "ns"))


def test_pod_security_rejection() -> None:
    msg = 'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged (...)'
    err = translate(api_error(403, msg), "patch", "pods/ephemeralcontainers", "ns")
    assert isinstance(err, AdmissionRejected) and isinstance(err, AccessDenied)
    assert err.message == msg and err.verb == "patch"


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [
        (401, AccessDenied, "did not accept our credentials (401 Unauthorized) to get pods"),
        (404, NotFound, 'pods "web" not found (get pods in namespace ns)'),
        (409, Conflict, "the object changed; retry"),
        (500, ExuviaError, "get pods in namespace ns failed: HTTP 500"),
    ],
)
def test_status_codes(status: int, kind: type, text: str) -> None:
    err = translate(api_error(status, 'pods "web" not found'), "get", "pods", "ns")
    assert type(err) is kind and text in str(err)
    assert isinstance(NotFound("x"), TargetError)


def test_unreachable() -> None:
    err = translate(ApiException(status=0, reason="Connection refused"), "get", "pods", "ns")
    assert str(err) == "cannot get pods in namespace ns: Connection refused"


def test_websocket_handshake_failures() -> None:
    body = json.dumps(
        {"kind": "Status", "message": 'pods "big" is forbidden: User "u" cannot get resource '
         '"pods/exec" in API group "" in the namespace "ns"', "code": 403}
    )  # fmt: skip
    reason = f"Handshake status 403 Forbidden -+-+- {{'date': 'x'}} -+-+- b'{body}'"
    err = _exec_error(ApiException(status=0, reason=reason), "ns", "big", "exuvia-1")
    assert isinstance(err, AccessDenied)
    assert "not allowed to get pods/exec in namespace ns" in str(err)
    other = _exec_error(
        ApiException(status=0, reason="Handshake status 500 Internal -+-+- {} -+-+- b''"),
        "ns", "big", "exuvia-1",
    )  # fmt: skip
    assert "exec into ns/big/exuvia-1 failed" in str(other)


def test_kubeconfig_context_and_namespace(tmp_path: Path) -> None:
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}},
                     {"name": "b", "context": {"cluster": "c", "user": "u", "namespace": "prod"}}],
        "current-context": "a",
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    kc = KubeClient(str(path))
    assert (kc.namespace, kc.info.context, kc.info.server) == (
        "default",
        "a",
        "https://127.0.0.1:1",
    )
    kc = KubeClient(str(path), "b")
    assert (kc.namespace, kc.info.context) == ("prod", "b")
    assert kc.info.source == f"kubeconfig {path}"
    with pytest.raises(ExuviaError, match="cannot load the Kubernetes configuration"):
        KubeClient(str(path), "nope")
    with pytest.raises(ExuviaError, match="cannot reach the Kubernetes API server"):
        kc.get_pod("prod", "web")


def test_a_sibling_reuses_the_loaded_configuration_with_its_own_api_client(
    tmp_path: Path,
) -> None:
    """A fleet's worker clients: the kubeconfig is not read again (it is gone here), and
    each has its own ApiClient and configuration (the exec swaps a method of its
    ApiClient while it connects, so none is shared between threads)."""
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t0k"}}],
        "contexts": [{"name": "b", "context": {"cluster": "c", "user": "u", "namespace": "prod"}}],
        "current-context": "b",
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    kc = KubeClient(str(path))
    path.unlink()
    twin = kc.sibling()
    assert twin.info == kc.info and twin.namespace == "prod"
    assert twin._api is not kc._api and twin._core.api_client is twin._api
    mine, theirs = kc._api.configuration, twin._api.configuration
    assert theirs is not mine
    assert (theirs.host, theirs.api_key) == (mine.host, mine.api_key) == (
        "https://127.0.0.1:1", {"BearerToken": "Bearer t0k"})  # fmt: skip
    with pytest.raises(ExuviaError, match="cannot reach the Kubernetes API server"):
        twin.get_pod("prod", "web")
    twin.close()
    with pytest.raises(ExuviaError, match="cannot reach the Kubernetes API server"):
        kc.get_pod("prod", "web")  # closing the sibling left this one usable


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a pod: the service account's token, CA and namespace (auto-detected)."""
    (tmp_path / "token").write_text("tok")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("ops\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setattr(client_mod, "SA_NAMESPACE_FILE", str(tmp_path / "namespace"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    kc = KubeClient()
    assert kc.info.source == "in-cluster service account"
    assert (kc.info.server, kc.namespace) == ("https://10.96.0.1:443", "ops")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ExuviaError, match="cannot load the Kubernetes configuration"):
        KubeClient()


def test_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ExuviaError, match="cannot load the Kubernetes configuration"):
        KubeClient(str(tmp_path / "nope"))
