"""Fixtures for the end-to-end tests against a real Kubernetes cluster.

The cluster is whatever ``$KUBECONFIG`` points at. When ``KUBECONFIG`` is not
set, the kubeconfig written by ``tests/e2e/cluster/up`` is used if present
(``$EXUVIA_E2E_STATE/env``, default ``/var/lib/exuvia-e2e/env``). When no
cluster answers, every e2e test is skipped with a one-line reason, unless
``EXUVIA_E2E_REQUIRE=1``, which turns that into a failure (for CI, where the
cluster is supposed to be up).

Images: the harness imports ``localhost/exuvia/shellless:test`` (a single
static binary, no shell), ``localhost/exuvia/debug:test`` (busybox-static)
and the pause image; the names come from the env file or the
``EXUVIA_E2E_*_IMAGE`` variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from tests.e2e import k8s_lab as lab
from tests.support.s3server import S3Server, s3_fixture

SKIP_REASON = "no Kubernetes cluster reachable: set KUBECONFIG (tests/e2e/cluster/up starts one)"
DEFAULT_STATE = "/var/lib/exuvia-e2e"
E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ carries the ``e2e`` marker."""
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _env_file() -> dict[str, str]:
    state = os.environ.get("EXUVIA_E2E_STATE", DEFAULT_STATE)
    path = Path(state) / "env"
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, sep, val = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = val.strip()
    return values


def _setting(name: str, default: str = "") -> str:
    return os.environ.get(name) or _env_file().get(name) or default


def _unreachable(detail: str) -> None:
    if os.environ.get("EXUVIA_E2E_REQUIRE") == "1":
        pytest.fail(f"{SKIP_REASON} ({detail})", pytrace=False)
    pytest.skip(SKIP_REASON)


@dataclass(frozen=True)
class E2EImages:
    shellless: str
    debug: str
    pause: str


@pytest.fixture(scope="session")
def e2e_images() -> E2EImages:
    """Names of the locally imported images (never pulled: imagePullPolicy Never)."""
    return E2EImages(
        shellless=_setting("EXUVIA_E2E_SHELLLESS_IMAGE", "localhost/exuvia/shellless:test"),
        debug=_setting("EXUVIA_E2E_DEBUG_IMAGE", "localhost/exuvia/debug:test"),
        pause=_setting("EXUVIA_E2E_PAUSE_IMAGE", "localhost/exuvia/pause:3.10"),
    )


@pytest.fixture(scope="session")
def kubeconfig_path() -> str:
    path = os.environ.get("KUBECONFIG") or _env_file().get("KUBECONFIG", "")
    if not path:
        _unreachable("KUBECONFIG is not set and no harness env file was found")
    first = path.split(os.pathsep)[0]
    if not Path(first).is_file():
        _unreachable(f"kubeconfig {first} does not exist")
    return first


@pytest.fixture(scope="session")
def k8s_api_client(kubeconfig_path: str) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` for the cluster, checked to answer."""
    try:
        api = config.new_client_from_config(config_file=kubeconfig_path)
    except Exception as err:  # a broken kubeconfig is "no cluster" too
        _unreachable(f"cannot load {kubeconfig_path}: {err}")
    try:
        client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as err:
        api.close()
        _unreachable(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    yield api
    api.close()


@pytest.fixture(scope="session")
def core_v1(k8s_api_client: Any) -> Any:
    return client.CoreV1Api(k8s_api_client)


@dataclass
class Cluster:
    """Small helpers over CoreV1Api for the e2e tests (bounded waits only)."""

    core: Any
    images: E2EImages
    created_namespaces: list[str] = field(default_factory=list)

    # -- namespaces -------------------------------------------------------
    def namespace(
        self, prefix: str, *, enforce: str | None = None, timeout: float = 60,
        name: str | None = None,
    ) -> str:  # fmt: skip
        """Create a namespace (optionally with a PodSecurity ``enforce`` level)
        and wait until its ``default`` ServiceAccount exists; ``name`` exactly, or
        a generated name starting ``exuvia-PREFIX-``."""
        labels = {"exuvia.test/e2e": "true"}
        if enforce:
            labels["pod-security.kubernetes.io/enforce"] = enforce
            labels["pod-security.kubernetes.io/enforce-version"] = "latest"
        meta = (
            client.V1ObjectMeta(name=name, labels=labels)
            if name
            else client.V1ObjectMeta(generate_name=f"exuvia-{prefix}-", labels=labels)
        )
        body = client.V1Namespace(metadata=meta)
        ns = str(self.core.create_namespace(body).metadata.name)
        self.created_namespaces.append(ns)
        self.wait(
            lambda: self._exists(self.core.read_namespaced_service_account, "default", ns),
            timeout,
            f"ServiceAccount {ns}/default",
        )
        return ns

    def _exists(self, read: Callable[..., Any], name: str, ns: str) -> bool:
        try:
            read(name, ns)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    # -- pods ---------------------------------------------------------------
    def create_pod(self, ns: str, manifest: dict[str, Any]) -> str:
        return str(self.core.create_namespaced_pod(ns, manifest).metadata.name)

    def read_pod(self, ns: str, name: str) -> Any:
        return self.core.read_namespaced_pod(name, ns)

    def wait_pod_running(self, ns: str, name: str, timeout: float = 90) -> Any:
        def running() -> Any:
            pod = self.read_pod(ns, name)
            if pod.status.phase in ("Failed", "Succeeded"):
                raise AssertionError(f"pod {ns}/{name} ended: {pod.status}")
            statuses = pod.status.container_statuses or []
            if pod.status.phase == "Running" and statuses and all(s.ready for s in statuses):
                return pod
            return None

        return self.wait(
            running, timeout, f"pod {ns}/{name} Running", on_timeout=lambda: self.describe(ns, name)
        )

    def ephemeral_status(self, ns: str, pod: str, container: str) -> Any:
        for st in self.read_pod(ns, pod).status.ephemeral_container_statuses or []:
            if st.name == container:
                return st
        return None

    def wait_ephemeral(
        self, ns: str, pod: str, container: str, states: tuple[str, ...], timeout: float = 60
    ) -> Any:
        """Wait until the ephemeral container's state is one of ``states``
        (``running``, ``terminated``); return that state object."""

        def reached() -> Any:
            st = self.ephemeral_status(ns, pod, container)
            if st is None or st.state is None:
                return None
            for s in states:
                val = getattr(st.state, s)
                if val is not None:
                    return val
            return None

        return self.wait(
            reached,
            timeout,
            f"ephemeral container {ns}/{pod}/{container} {states}",
            on_timeout=lambda: self.describe(ns, pod),
        )

    def add_ephemeral(self, ns: str, pod: str, container: dict[str, Any]) -> Any:
        """Add an ephemeral container through the pods/ephemeralcontainers
        subresource, as ``kubectl debug`` does."""
        current = self.read_pod(ns, pod)
        existing = [
            self.core.api_client.sanitize_for_serialization(c)
            for c in (current.spec.ephemeral_containers or [])
        ]
        body = {"spec": {"ephemeralContainers": [*existing, container]}}
        return self.core.patch_namespaced_pod_ephemeralcontainers(pod, ns, body)

    def logs(self, ns: str, pod: str, container: str | None = None, **kw: Any) -> str:
        kwargs = {"container": container} if container else {}
        return str(self.core.read_namespaced_pod_log(pod, ns, **kwargs, **kw))

    def events(self, ns: str) -> list[str]:
        evs = self.core.list_namespaced_event(ns).items
        return [f"{e.involved_object.name}: {e.reason}: {e.message}" for e in evs]

    def describe(self, ns: str, pod: str) -> str:
        try:
            p = self.read_pod(ns, pod)
            return f"status={p.status}\nevents={self.events(ns)}"
        except Exception as err:
            return f"(cannot describe {ns}/{pod}: {err})"

    # -- exec / attach --------------------------------------------------------
    def exec(
        self,
        ns: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        timeout: float = 30,
    ) -> tuple[int | None, str, str]:
        """Run ``command`` through the API server (pods/exec); return
        (exit code, stdout, stderr). The exit code is ``None`` when the command
        could not be started at all (the runtime's message is then appended to
        stderr) or did not finish within ``timeout``."""
        kwargs = {"container": container} if container else {}
        ws = stream(
            self.core.connect_get_namespaced_pod_exec,
            pod,
            ns,
            command=command,
            stdin=False,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
            **kwargs,
        )
        out, err = [], []
        deadline = time.monotonic() + timeout
        try:
            while ws.is_open() and time.monotonic() < deadline:
                ws.update(timeout=1)
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
                if ws.peek_stderr():
                    err.append(ws.read_stderr())
            if ws.is_open():
                return None, "".join(out), "".join(err) + "\n(exec timed out)"
            status = json.loads(ws.read_channel(ERROR_CHANNEL) or "{}")
        finally:
            ws.close()
        if status.get("status") == "Success":
            return 0, "".join(out), "".join(err)
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                return int(cause["message"]), "".join(out), "".join(err)
        return None, "".join(out), "".join(err) + str(status.get("message", status))

    # -- misc -------------------------------------------------------------------
    @staticmethod
    def wait(
        probe: Callable[[], Any],
        timeout: float,
        what: str,
        on_timeout: Callable[[], str] | None = None,
        interval: float = 0.5,
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            val = probe()
            if val:
                return val
            if time.monotonic() > deadline:
                detail = on_timeout() if on_timeout else ""
                raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")
            time.sleep(interval)

    def cleanup(self) -> None:
        for ns in self.created_namespaces:
            with contextlib.suppress(ApiException):
                self.core.delete_namespace(ns, grace_period_seconds=0)


@pytest.fixture
def cluster(core_v1: Any, e2e_images: E2EImages) -> Iterator[Cluster]:
    """Helpers bound to the cluster; namespaces created through it are
    deleted afterwards (without waiting)."""
    c = Cluster(core=core_v1, images=e2e_images)
    yield c
    c.cleanup()


def shellless_pod(
    name: str, image: str, *, restricted: bool = False, command: list[str] | None = None
) -> dict[str, Any]:
    """A pod manifest running the shell-less image (``/app/shellless log``)."""
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "Never",
        "args": command or ["log"],
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 2,
        "automountServiceAccountToken": False,
    }
    if restricted:
        container["securityContext"] = restricted_security_context()
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def restricted_security_context() -> dict[str, Any]:
    """A container securityContext that satisfies the ``restricted`` profile."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@pytest.fixture(scope="session")
def pod_manifest() -> Callable[..., dict[str, Any]]:
    """``pod_manifest(name, image, restricted=False, command=None)``."""
    return shellless_pod


@pytest.fixture(scope="session")
def restricted_sc() -> Callable[[], dict[str, Any]]:
    return restricted_security_context


@pytest.fixture(scope="session")
def k8s_images(k8s_api_client: Any) -> str:
    """The collector image (from this tree) and the lab images, imported once per
    session; a module that needs more images overrides it."""
    return lab.ensure_images(lab.WORKDIR)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server with object lock (versitygw) on 127.0.0.1, for one module."""
    yield from s3_fixture(tmp_path_factory)
