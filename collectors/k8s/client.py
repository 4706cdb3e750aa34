"""The one module that imports and calls the official ``kubernetes`` client.

Everything exuvia asks of the API server goes through :class:`KubeClient`, and
every failure comes out as one of the project's errors (forensics.errors):

- 401 and 403 -> :class:`AccessDenied`, naming the verb and the resource that
  was refused (a PodSecurity rejection -> :class:`AdmissionRejected`, which
  keeps the server's message for collectors.k8s.admission);
- 404 -> :class:`NotFound` (a TargetError);
- 409 -> :class:`Conflict`;
- anything else, and an unreachable server -> ExuviaError.

Objects come back as the JSON the server sent (``_preload_content=False``),
not as the client's models, so nothing the model does not know is lost.

tests/unit/test_rbac.py reads this file: every API method referenced here must
be covered by docs/rbac.yaml.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.stream import stream as k8s_stream
from websocket import ABNF, WebSocketException

from forensics.errors import AccessDenied, ExuviaError, TargetError

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
TIMEOUT = (10.0, 60.0)  # connect, read
V5_CLOSE_CHANNEL = 255
STDOUT, STDERR, STATUS = 1, 2, 3


class AdmissionRejected(AccessDenied):
    """An admission controller (PodSecurity) refused the object; ``message`` is its verdict."""

    def __init__(self, message: str, verb: str, resource: str) -> None:
        super().__init__(message)
        self.message = message
        self.verb = verb
        self.resource = resource


class NotFound(TargetError):
    """The object does not exist (404)."""


class Conflict(ExuviaError):
    """The object changed under us (409): read it again and retry."""


def _status_message(err: ApiException) -> str:
    body = err.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    return str(err.reason or "").strip()


_DENIED = re.compile(r'cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?')


def translate(err: ApiException, verb: str, resource: str, namespace: str | None) -> ExuviaError:
    """An ApiException as one of our errors, saying what was being done."""
    msg = _status_message(err)
    where = f" in namespace {namespace}" if namespace else ""
    denied = _DENIED.search(msg)
    if denied:  # the authorizer's own words: the exact verb and resource refused
        verb, resource = denied.group(1), denied.group(2)
        if denied.group(3):
            resource = f"{resource}.{denied.group(3)}"
    if err.status == 401:
        return AccessDenied(
            f"the API server did not accept our credentials (401 Unauthorized) to {verb} "
            f"{resource}{where}: {msg}"
        )
    if err.status == 403:
        if "violates PodSecurity" in msg:
            return AdmissionRejected(msg, verb, resource)
        return AccessDenied(
            f"forbidden (403): not allowed to {verb} {resource}{where}: {msg} "
            "(docs/rbac.yaml lists what a capture needs)"
        )
    if err.status == 404:
        return NotFound(f"{msg or 'not found'} ({verb} {resource}{where})")
    if err.status == 409:
        return Conflict(f"{msg} ({verb} {resource}{where}: the object changed; retry)")
    if not err.status:
        return ExuviaError(f"cannot {verb} {resource}{where}: {err.reason or msg}")
    return ExuviaError(f"{verb} {resource}{where} failed: HTTP {err.status} {err.reason}: {msg}")


@dataclass(frozen=True)
class ClusterInfo:
    """Where the client is pointed (recorded in the bundle)."""

    server: str
    source: str
    context: str | None
    namespace: str


class ExecChannel:
    """A running exec: frames of (channel, bytes) as they arrive, as binary."""

    def __init__(self, ws: Any, idle_timeout: float | None) -> None:
        self._ws = ws
        self.subprotocol: str | None = getattr(ws, "subprotocol", None)
        if idle_timeout:
            ws.sock.settimeout(idle_timeout)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Yield (channel, payload) until the server closes the stream.

        Raises ExuviaError when the connection fails or is idle too long
        (the caller keeps what arrived).
        """
        try:
            while True:
                opcode, frame = self._ws.sock.recv_data_frame(True)
                if opcode == ABNF.OPCODE_CLOSE:
                    return
                if opcode not in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT):
                    continue
                data: bytes = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
                if not data:
                    continue
                if data[0] == V5_CLOSE_CHANNEL:
                    yield V5_CLOSE_CHANNEL, data[1:]
                    continue
                yield data[0], data[1:]
        except (WebSocketException, OSError) as err:
            kind = "no data for too long" if isinstance(err, TimeoutError) else "connection lost"
            raise ExuviaError(f"exec stream broken ({kind}: {type(err).__name__}: {err})") from err

    def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin (channel 0); only with ``stdin=True``."""
        try:
            self._ws.write_channel(0, data)
        except (WebSocketException, OSError) as err:
            raise ExuviaError(f"exec stream broken (sending: {type(err).__name__}: {err})") from err

    def close_stdin(self) -> None:
        """EOF on the command's stdin (v5 protocol; older ones end it on close)."""
        with contextlib.suppress(WebSocketException, OSError):
            self._ws.close_channel(0)

    def close(self) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            self._ws.close()


class KubeClient:
    """The API calls exuvia makes, returning plain JSON objects."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        in_cluster: bool | None = None,
    ) -> None:
        if in_cluster is None:
            in_cluster = (
                not kubeconfig
                and not context
                and not os.environ.get("KUBECONFIG")
                and not Path("~/.kube/config").expanduser().exists()
                and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
            )
        try:
            if in_cluster:
                cfg = k8s.Configuration()
                k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
                self._api = k8s.ApiClient(configuration=cfg)
                ns = _read_text(SA_NAMESPACE_FILE) or "default"
                self.info = ClusterInfo(cfg.host, "in-cluster service account", None, ns)
            else:
                # the library reads $KUBECONFIG once, when imported: name the file now
                kubeconfig = (
                    kubeconfig
                    or os.environ.get("KUBECONFIG")
                    or str(Path("~/.kube/config").expanduser())
                )
                self._api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context
                )
                contexts, active = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig
                )
                chosen = active
                if context:
                    chosen = next((c for c in contexts if c.get("name") == context), active)
                ctx = (chosen or {}).get("context") or {}
                path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
                self.info = ClusterInfo(
                    self._api.configuration.host,
                    f"kubeconfig {path}",
                    (chosen or {}).get("name"),
                    ctx.get("namespace") or "default",
                )
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as err:
            where = "in-cluster service account" if in_cluster else (kubeconfig or "kubeconfig")
            raise ExuviaError(f"cannot load the Kubernetes configuration ({where}): {err}") from err
        self._apis()

    def _apis(self) -> None:
        self._core = k8s.CoreV1Api(self._api)
        self._apps = k8s.AppsV1Api(self._api)
        self._batch = k8s.BatchV1Api(self._api)

    def sibling(self) -> KubeClient:
        """Another client of the same cluster, as this one was configured, for another
        thread: its own ApiClient and connections (the kubernetes client's exec swaps a
        method of its ApiClient while it connects, so one ApiClient is never shared
        between threads), with a copy of this one's loaded configuration, so the
        kubeconfig is not read and parsed again (a fleet's worker per pod did)."""
        twin = object.__new__(KubeClient)
        twin.info = self.info
        twin._api = k8s.ApiClient(configuration=copy.deepcopy(self._api.configuration))
        twin._apis()
        return twin

    @property
    def namespace(self) -> str:
        return self.info.namespace

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # -- plumbing --------------------------------------------------------------
    def _call(
        self,
        verb: str,
        resource: str,
        namespace: str | None,
        fn: Callable[..., Any],
        *a: Any,
        **kw: Any,
    ) -> Any:
        kw.setdefault("_request_timeout", TIMEOUT)
        try:
            return fn(*a, **kw)
        except ApiException as err:
            raise translate(err, verb, resource, namespace) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ExuviaError(
                f"cannot reach the Kubernetes API server {self.info.server} to {verb} "
                f"{resource}: {err}"
            ) from err

    def _json(
        self, verb: str, resource: str, ns: str | None, fn: Callable[..., Any], *a: Any, **kw: Any
    ) -> dict[str, Any]:
        resp = self._call(verb, resource, ns, fn, *a, _preload_content=False, **kw)
        try:
            data = json.loads(resp.data)
        except ValueError as err:
            raise ExuviaError(f"{verb} {resource}: the API server sent no JSON ({err})") from err
        if not isinstance(data, dict):
            raise ExuviaError(f"{verb} {resource}: the API server sent {type(data).__name__}")
        return data

    # -- pods ------------------------------------------------------------------
    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("get", "pods", namespace, self._core.read_namespaced_pod, name, namespace)

    def add_ephemeral_container(
        self,
        namespace: str,
        name: str,
        container: dict[str, Any],
        resource_version: str,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Add ``container`` (strategic merge by name), only if the pod is still at
        ``resource_version`` (else Conflict). ``dry_run``: admission (PodSecurity)
        judges it, nothing is stored."""
        extra = {"dry_run": "All"} if dry_run else {}
        body = {
            "metadata": {"resourceVersion": resource_version},
            "spec": {"ephemeralContainers": [container]},
        }
        return self._json(
            "patch",
            "pods/ephemeralcontainers",
            namespace,
            self._core.patch_namespaced_pod_ephemeralcontainers,
            name,
            namespace,
            body,
            _content_type="application/strategic-merge-patch+json",
            **extra,
        )

    def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            "create", "pods", namespace, self._core.create_namespaced_pod, namespace, body
        )

    def delete_pod(self, namespace: str, name: str, grace_seconds: int = 0) -> dict[str, Any]:
        return self._json(
            "delete",
            "pods",
            namespace,
            self._core.delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=grace_seconds,
        )

    def pod_log(
        self, namespace: str, name: str, container: str, *, previous: bool, limit_bytes: int
    ) -> Iterator[bytes]:
        """The container's log with RFC 3339 timestamps, in chunks as they arrive."""
        resp = self._call(
            "get",
            "pods/log",
            namespace,
            self._core.read_namespaced_pod_log,
            name,
            namespace,
            container=container,
            previous=previous,
            timestamps=True,
            limit_bytes=limit_bytes,
            _preload_content=False,
        )
        try:
            yield from resp.stream(1 << 16)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ExuviaError(f"reading the log of {namespace}/{name}/{container}: {err}") from err
        finally:
            resp.release_conn()

    def list_events(self, namespace: str, field_selector: str) -> list[dict[str, Any]]:
        """Every core/v1 Event matching ``field_selector`` (all pages)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"field_selector": field_selector, "limit": 500}
            if token:
                kw["_continue"] = token
            page = self._json(
                "list", "events", namespace, self._core.list_namespaced_event, namespace, **kw
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def list_namespaces(self) -> list[dict[str, Any]]:
        """Every namespace (all pages): for the triage picker."""
        return self._list("namespaces", None, self._core.list_namespace)

    def list_pods(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every pod of ``namespace`` (all pages), optionally only those ``label_selector``
        matches: for the triage picker and fleet resolution."""
        return self._list(
            "pods", namespace, self._core.list_namespaced_pod, namespace, selector=label_selector
        )

    def list_pods_all_namespaces(self, label_selector: str) -> list[dict[str, Any]]:
        """The pods of every namespace that ``label_selector`` matches (all pages): ``-A``."""
        return self._list(
            "pods", None, self._core.list_pod_for_all_namespaces, selector=label_selector
        )

    def _list(
        self,
        resource: str,
        namespace: str | None,
        fn: Callable[..., Any],
        *a: Any,
        selector: str | None = None,
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": 500}
            if selector:
                kw["label_selector"] = selector
            if token:
                kw["_continue"] = token
            page = self._json("list", resource, namespace, fn, *a, **kw)
            items.extend(i for i in page.get("items") or [] if isinstance(i, dict))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def watch_pod(
        self, namespace: str, name: str, resource_version: str, timeout: float
    ) -> Iterator[dict[str, Any]]:
        """The pod as it is after each change since ``resource_version``, for at most
        ``timeout`` seconds: one watch request instead of a GET per poll. Ends quietly
        when the server closes the watch or says it cannot continue it (410: the version
        is too old); a refusal (no ``watch`` right) raises as any call does."""
        resp = self._call(
            "watch",
            "pods",
            namespace,
            self._core.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=max(1, int(timeout + 0.999)),
            watch=True,
            _preload_content=False,
            _request_timeout=(TIMEOUT[0], timeout + TIMEOUT[0]),
        )
        try:
            for line in resp:
                try:
                    event = json.loads(line)
                except ValueError:
                    return  # a cut line: the caller reads the pod again
                obj = event.get("object") if isinstance(event, dict) else None
                if event.get("type") in ("ADDED", "MODIFIED") and isinstance(obj, dict):
                    yield obj
                elif event.get("type") in ("DELETED", "ERROR"):
                    return  # the caller's next GET says what happened
        except (urllib3.exceptions.HTTPError, OSError):
            return  # the watch broke: the caller reads the pod again
        finally:
            resp.release_conn()

    def get_node(self, name: str) -> dict[str, Any]:
        return self._json("get", "nodes", None, self._core.read_node, name)

    def get_owner(
        self, namespace: str, api_version: str, kind: str, name: str
    ) -> dict[str, Any] | None:
        """An owner object by its ownerReference; None for kinds exuvia does not read."""
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        readers: dict[tuple[str, str], tuple[str, Callable[..., Any]]] = {
            ("apps", "ReplicaSet"): ("replicasets", self._apps.read_namespaced_replica_set),
            ("apps", "Deployment"): ("deployments", self._apps.read_namespaced_deployment),
            ("apps", "StatefulSet"): ("statefulsets", self._apps.read_namespaced_stateful_set),
            ("apps", "DaemonSet"): ("daemonsets", self._apps.read_namespaced_daemon_set),
            ("batch", "Job"): ("jobs", self._batch.read_namespaced_job),
            ("batch", "CronJob"): ("cronjobs", self._batch.read_namespaced_cron_job),
            ("", "ReplicationController"): (
                "replicationcontrollers",
                self._core.read_namespaced_replication_controller,
            ),
        }
        entry = readers.get((group, kind))
        if entry is None:
            return None
        resource, fn = entry
        return self._json("get", f"{resource}.{group or 'core'}", namespace, fn, name, namespace)

    # -- exec ------------------------------------------------------------------
    def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: list[str],
        idle_timeout: float | None = 600.0,
        *,
        stdin: bool = False,
    ) -> ExecChannel:
        """Start ``command`` in the container (pods/exec over a websocket), binary;
        with ``stdin``, ``ExecChannel.write`` feeds the command's standard input."""
        try:
            ws = k8s_stream(
                self._core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                container=container,
                command=command,
                stdin=stdin,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                binary=True,
            )
        except ApiException as err:
            raise _exec_error(err, namespace, pod, container) from err
        except (WebSocketException, OSError) as err:
            raise ExuviaError(f"exec into {namespace}/{pod}/{container} failed: {err}") from err
        return ExecChannel(ws, idle_timeout)


def _exec_error(err: ApiException, namespace: str, pod: str, container: str) -> ExuviaError:
    """A failed websocket upgrade: the client reports it as status 0 with the
    handshake status and body in ``reason``."""
    text = str(err.reason or "")
    code = 0
    if "Handshake status" in text:
        try:
            code = int(text.split("Handshake status", 1)[1].split(maxsplit=1)[0])
        except (IndexError, ValueError):
            code = 0
    body = text.rsplit("-+-+-", 1)[-1].strip() if "-+-+-" in text else ""
    if body.startswith(("b'", 'b"')):
        body = body[2:-1].encode().decode("unicode_escape", "replace")
    head = text.split("-+-+-", maxsplit=1)[0].strip()
    synthetic = ApiException(status=code or err.status, reason=head)
    synthetic.body = body or None
    out = translate(synthetic, "create", "pods/exec", namespace)
    if code not in (401, 403) and not isinstance(out, AccessDenied):
        return ExuviaError(f"exec into {namespace}/{pod}/{container} failed: {out}")
    return out


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None
