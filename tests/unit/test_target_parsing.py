"""Target URI parsing and runtime answer parsing, on JSON captured from real runtimes.

The files under tests/unit/data/targets/ were captured on Debian 12 from lab
containers (runc 1.1.5, podman 4.3.1, containerd 1.6.20, Podman's Docker API):
``runc state``, ``podman container inspect``, ``ctr containers info``/``tasks
ls``/``images ls``/``version`` and the Engine API's /containers/X/json,
/images/X/json and /version.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import socketserver
import sys
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from collectors.targets import SCHEMES, parse_uri, resolve
from collectors.targets import containerd as ctrd
from collectors.targets import docker as dock
from collectors.targets import pid as pidmod
from collectors.targets import podman as pdm
from collectors.targets import runc as rnc
from collectors.targets.cmd import (
    ENV_VALUE_OMITTED,
    ToolFailed,
    parse_time,
    run_tool,
    trim_facts,
)
from forensics.errors import RuntimeToolError, TargetError, TargetGone
from forensics.timeutil import iso_ns
from tui.demo.lab import oci_image_module

DATA = Path(__file__).parent / "data" / "targets"
SECRETS = ("s3cr3t-demo-token", "hunter2")


def _json(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def _text(name: str) -> str:
    return (DATA / name).read_text()


def _norm(ts: str) -> str:
    """An RFC 3339 UTC time with the fraction padded to 9 digits (Go trims zeros)."""
    main, _, frac = ts.rstrip("Z").partition(".")
    return f"{main}.{frac.ljust(9, '0')}Z"


def _assert_no_secrets(obj: Any) -> None:
    text = json.dumps(obj)
    for secret in SECRETS:
        assert secret not in text
    assert f"API_TOKEN={ENV_VALUE_OMITTED}" in text


# --- URIs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("pid://1234", ("pid", "1234")),
        ("runc://abc", ("runc", "abc")),
        ("podman://web", ("podman", "web")),
        ("docker://0123abcd", ("docker", "0123abcd")),
        ("containerd://k8s.io/abc", ("containerd", "k8s.io/abc")),
        ("k8s://ns/pod/ctr", ("k8s", "ns/pod/ctr")),
        ("  PODMAN://web  ", ("podman", "web")),
    ],
)
def test_parse_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_uri(uri) == expected


def test_schemes_in_order() -> None:
    assert SCHEMES == ("pid", "runc", "podman", "docker", "containerd", "k8s")


@pytest.mark.parametrize("uri", ["lxc://web", "web", "1234", "http//x", ""])
def test_bad_scheme_lists_the_valid_ones(uri: str) -> None:
    with pytest.raises(TargetError) as exc:
        parse_uri(uri)
    msg = str(exc.value)
    assert "\n" not in msg
    for scheme in SCHEMES:
        assert f"{scheme}://" in msg


def test_empty_target_after_scheme() -> None:
    with pytest.raises(TargetError, match="names nothing"):
        parse_uri("podman://  ")


def test_k8s_is_not_a_host_process() -> None:
    with pytest.raises(TargetError, match="through the Kubernetes API"):
        resolve("k8s://default/web")


@pytest.mark.parametrize("text", ["abc", "0", "-1", "12a", "1.5", "١٢", " ", "+5"])
def test_bad_pid_text(text: str) -> None:
    with pytest.raises(TargetError, match="bad PID"):
        pidmod.parse_pid(text)


def test_pid_text() -> None:
    assert pidmod.parse_pid(" 42 ") == 42


def test_runc_ref() -> None:
    assert rnc.split_ref("abc") == ("abc", None)
    assert rnc.split_ref("abc?root=/run/containerd/runc/default") == (
        "abc",
        "/run/containerd/runc/default",
    )
    with pytest.raises(TargetError, match="unknown runc"):
        rnc.split_ref("abc?bundle=/x")
    with pytest.raises(TargetError):
        rnc.split_ref("a/b")


def test_runc_root_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXUVIA_RUNC_ROOT", "/run/other")
    assert rnc.split_ref("abc") == ("abc", "/run/other")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("abc", ("default", "abc")), ("k8s.io/abc", ("k8s.io", "abc")), (" ns/id ", ("ns", "id"))],
)
def test_containerd_ref(ref: str, expected: tuple[str, str]) -> None:
    assert ctrd.split_ref(ref) == expected


@pytest.mark.parametrize("ref", ["ns/", "/id", "a/b/c", ""])
def test_bad_containerd_ref(ref: str) -> None:
    with pytest.raises(TargetError, match="containerd://"):
        ctrd.split_ref(ref)


# --- times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T15:36:36.606509946Z", "2026-11-23T15:36:36.606509946Z"),
        ("2026-11-23T15:36:36.6Z", "2026-11-23T15:36:36.600000000Z"),
        ("2026-11-23T15:36:36Z", "2026-11-23T15:36:36.000000000Z"),
        ("2026-11-23T17:36:36.000000001+02:00", "2026-11-23T15:36:36.000000001Z"),
        ("2026-11-23T10:36:36.5-0500", "2026-11-23T15:36:36.500000000Z"),
        ("2026-11-23 15:36:36.606509946 +0000 UTC", "2026-11-23T15:36:36.606509946Z"),
        ("2026-11-23T15:36:36.034747847+00:00", "2026-11-23T15:36:36.034747847Z"),
    ],
)
def test_parse_time_keeps_nanoseconds(text: str, expected: str) -> None:
    ns = parse_time(text)
    assert ns is not None
    assert iso_ns(ns) == expected


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00Z", "", "yesterday", None, 12, "2026-13-01T00:00:00Z"]
)
def test_parse_time_none(value: Any) -> None:
    assert parse_time(value) is None


def test_parse_time_exact_integer() -> None:
    base = int(datetime(2026, 11, 23, 15, 36, 36, tzinfo=UTC).timestamp())
    assert parse_time("2026-11-23T15:36:36.606509946Z") == base * 10**9 + 606509946


# --- podman ----------------------------------------------------------------------------


def test_podman_inspect() -> None:
    inspect = _json("podman_inspect.json")[0]
    info = pdm.info_from_inspect("podman://x", inspect, "4.3.1")
    assert info.runtime == "podman"
    assert info.pid == inspect["State"]["Pid"] > 0
    assert info.container_id == inspect["Id"] and len(info.container_id) == 64
    assert info.name == inspect["Name"]
    assert info.image == inspect["ImageName"]
    assert info.image_id == inspect["Image"]
    assert info.image_digest == inspect["ImageDigest"]
    assert info.created_ns is not None and iso_ns(info.created_ns) == _norm(inspect["Created"])
    assert info.started_ns is not None
    assert iso_ns(info.started_ns) == _norm(inspect["State"]["StartedAt"])
    assert info.started_ns > info.created_ns
    assert info.status == "running"
    assert info.runtime_version == "4.3.1"
    assert info.log_paths == [inspect["HostConfig"]["LogConfig"]["Path"]]
    assert info.log_format == "k8s-file"
    assert info.upperdir == inspect["GraphDriver"]["Data"]["UpperDir"]
    _assert_no_secrets(info.runtime_facts)
    assert "run" in info.runtime_facts["inspect"]["Config"]["CreateCommand"]


def test_podman_version() -> None:
    data = _json("podman_version.json")
    assert data["Client"]["Version"] == "4.3.1"


def test_podman_json_file_driver_is_k8s_file() -> None:
    inspect = {"HostConfig": {"LogConfig": {"Type": "json-file", "Path": "/x/ctr.log"}}}
    assert pdm.log_path_and_format(inspect) == (["/x/ctr.log"], "k8s-file")
    inspect = {"HostConfig": {"LogConfig": {"Type": "journald", "Path": ""}}}
    assert pdm.log_path_and_format(inspect) == ([], None)


def test_podman_create_command_env_omitted() -> None:
    argv = ["podman", "run", "-e", "TOKEN=abc", "--env=PW=hunter2", "--env", "X", "img"]
    assert pdm.omit_cli_env(argv) == [
        "podman", "run", "-e", "TOKEN=<omitted>", "--env=PW=<omitted>", "--env", "X=<omitted>",
        "img",
    ]  # fmt: skip


def _fake_podman(monkeypatch: pytest.MonkeyPatch, result: Any) -> None:
    def fake_run_json(argv: list[str], *, timeout: float = 30) -> Any:
        if argv[:2] == ["podman", "version"]:
            return _json("podman_version.json")
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(pdm, "run_json", fake_run_json)


def test_podman_resolve_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_podman(monkeypatch, _json("podman_inspect_exited.json"))
    with pytest.raises(TargetGone, match=r"not running \(status: exited\)"):
        resolve("podman://web")


def test_podman_resolve_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    err = ToolFailed(
        "podman container inspect failed (exit 125): Error: no such container web",
        tool="podman",
        returncode=125,
        stderr="Error: inspecting object: no such container web\n",
    )
    _fake_podman(monkeypatch, err)
    with pytest.raises(TargetError, match="no podman container named 'web'") as exc:
        resolve("podman://web")
    assert not isinstance(exc.value, TargetGone)
    _fake_podman(monkeypatch, [])
    with pytest.raises(TargetError, match="no podman container"):
        resolve("podman://web")


def test_podman_resolve_running_uses_our_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    inspect = _json("podman_inspect.json")
    inspect[0]["State"]["Pid"] = os.getpid()
    _fake_podman(monkeypatch, inspect)
    info = resolve("podman://web")
    assert info.pid == os.getpid()
    assert info.runtime_version == "4.3.1"
    assert info.log_format == "k8s-file"  # the file is gone: the driver's format stays


# --- docker ----------------------------------------------------------------------------


def test_docker_inspect() -> None:
    inspect = _json("docker_inspect.json")
    info = dock.info_from_inspect(
        "docker://x", inspect, _json("docker_version.json"), _json("docker_image.json")
    )
    assert info.runtime == "docker"
    assert info.pid == inspect["State"]["Pid"] > 0
    assert info.name == inspect["Name"].lstrip("/") and not info.name.startswith("/")
    assert info.container_id == inspect["Id"]
    assert info.image == inspect["Config"]["Image"]
    assert info.image_id == inspect["Image"] and info.image_id.startswith("sha256:")
    assert info.image_digest == _json("docker_image.json")["RepoDigests"][0].split("@")[1]
    assert info.created_ns is not None and iso_ns(info.created_ns) == _norm(inspect["Created"])
    assert info.started_ns is not None
    assert iso_ns(info.started_ns) == _norm(inspect["State"]["StartedAt"])
    assert info.runtime_version == "Podman Engine 4.3.1"
    assert info.log_paths == [inspect["LogPath"]]
    assert info.log_format == "json-file"  # as the API says; resolve() sniffs the file
    assert info.upperdir == inspect["GraphDriver"]["Data"]["UpperDir"]
    assert info.runtime_facts["engine"]["ApiVersion"] == "1.41"
    _assert_no_secrets(info.runtime_facts)


def test_docker_engine_version_plain_docker() -> None:
    assert dock.engine_version({"Version": "28.2.2", "Components": [{"Name": "Engine"}]}) == (
        "28.2.2"
    )
    assert dock.engine_version({}) is None


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("", "/var/run/docker.sock"),
        ("unix:///run/exuvia-test/docker.sock", "/run/exuvia-test/docker.sock"),
        ("/tmp/d.sock", "/tmp/d.sock"),
    ],
)
def test_docker_socket_path(host: str, path: str) -> None:
    assert dock.socket_path(host) == path


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "ssh://me@host", "unix://rel.sock"])
def test_docker_socket_path_unsupported(host: str) -> None:
    with pytest.raises(RuntimeToolError, match="DOCKER_HOST"):
        dock.socket_path(host)


class _FakeEngine(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, Any]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, {"message": "no such container"}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_FakeEngine]]:
    sock = tmp_path / "docker.sock"

    class Handler(_FakeEngine):
        routes: ClassVar[dict[str, tuple[int, Any]]] = {}

    server = socketserver.ThreadingUnixStreamServer(str(sock), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    yield Handler
    server.shutdown()
    server.server_close()


def test_docker_resolve_over_a_unix_socket(fake_engine: type[_FakeEngine]) -> None:
    inspect = _json("docker_inspect.json")
    inspect["State"]["Pid"] = os.getpid()
    image = _json("docker_image.json")
    fake_engine.routes["/containers/web/json"] = (200, inspect)
    fake_engine.routes["/version"] = (200, _json("docker_version.json"))
    fake_engine.routes[f"/images/{inspect['Image'].replace(':', '%3A')}/json"] = (200, image)
    info = resolve("docker://web")
    assert info.pid == os.getpid()
    assert info.image_digest and info.image_digest.startswith("sha256:")
    assert info.runtime_version == "Podman Engine 4.3.1"


def test_docker_resolve_missing_and_exited(fake_engine: type[_FakeEngine]) -> None:
    with pytest.raises(TargetError, match="no docker container named 'web'") as exc:
        resolve("docker://web")
    assert not isinstance(exc.value, TargetGone)
    fake_engine.routes["/containers/old/json"] = (200, _json("docker_inspect_exited.json"))
    with pytest.raises(TargetGone, match=r"not running \(status: exited\)"):
        resolve("docker://old")
    fake_engine.routes["/containers/err/json"] = (500, {"message": "boom\nmore"})
    with pytest.raises(RuntimeToolError, match=r"HTTP 500\): boom$"):
        resolve("docker://err")


# --- runc --------------------------------------------------------------------------------


def test_runc_state() -> None:
    state = _json("runc_state.json")
    info = rnc.info_from_state("runc://x", state, _json("runc_config.json"), "1.1.5+ds1")
    assert info.runtime == "runc"
    assert info.pid == state["pid"] > 0
    assert info.container_id == info.name == state["id"]
    assert info.image == "exuvia-demo/target:runc"  # from the bundle's annotations
    assert info.created_ns is not None and iso_ns(info.created_ns) == _norm(state["created"])
    assert info.status == "running"
    assert info.runtime_version == "1.1.5+ds1"
    assert info.log_paths == [] and info.upperdir is None
    assert info.runtime_facts["state"] == state
    assert info.runtime_facts["config"]["process"]["args"] == ["/app/target"]
    assert {"type": "pid"} in info.runtime_facts["config"]["linux"]["namespaces"]
    _assert_no_secrets(info.runtime_facts)


def test_runc_version_text() -> None:
    assert _text("runc_version.txt").splitlines()[0] == "runc version 1.1.5+ds1"


# --- containerd ------------------------------------------------------------------------


def test_ctr_tables_and_version() -> None:
    tasks = ctrd.parse_table(_text("ctr_tasks.txt"))
    assert len(tasks) == 1 and tasks[0]["STATUS"] == "RUNNING" and tasks[0]["PID"].isdigit()
    images = ctrd.parse_table(_text("ctr_images.txt"))
    assert images[0]["DIGEST"].startswith("sha256:")
    assert images[0]["REF"].startswith("localhost/exuvia-lab/target:")
    assert ctrd.parse_ctr_version(_text("ctr_version.txt")) == "1.6.20~ds1"
    assert ctrd.parse_ctr_version("Client:\n  Version:  1.7.0\n") == "1.7.0"
    assert ctrd.parse_table("") == []


def test_ctr_info() -> None:
    info_json = _json("ctr_info.json")
    task = ctrd.parse_table(_text("ctr_tasks.txt"))[0]
    info = ctrd.info_from_ctr("containerd://x", "exuvia-test", info_json, task, "1.6.20~ds1")
    assert info.runtime == "containerd"
    assert info.pid == int(task["PID"])
    assert info.container_id == info.name == info_json["ID"]
    assert info.image == info_json["Image"]
    assert info.created_ns is not None
    assert iso_ns(info.created_ns) == _norm(info_json["CreatedAt"])
    assert info.status == "running"
    assert info.log_paths == []  # found from the shim at resolve time
    assert info.runtime_facts["namespace"] == "exuvia-test"
    assert info.runtime_facts["container"]["Spec"]["process"]["args"] == ["/app/target"]
    _assert_no_secrets(info.runtime_facts)


def test_ctr_cri_metadata_names_the_log() -> None:
    meta = {
        "Version": "v1",
        "Metadata": {
            "ID": "abc",
            "Name": "web",
            "SandboxID": "def",
            "Config": {"metadata": {"name": "web", "attempt": 0}, "log_path": "web/0.log"},
            "ImageRef": "sha256:1234",
            "LogPath": "/var/log/pods/ns_pod_uid/web/0.log",
        },
    }
    info_json = {
        "ID": "abc",
        "Image": "docker.io/library/nginx:1",
        "CreatedAt": "2026-11-23T15:42:27.355718529Z",
        "Extensions": {
            ctrd.CRI_METADATA_EXT: {
                "type_url": "github.com/containerd/cri/pkg/store/container/Metadata",
                "value": base64.b64encode(json.dumps(meta).encode()).decode(),
            }
        },
    }
    task = {"TASK": "abc", "PID": "4242", "STATUS": "RUNNING"}
    info = ctrd.info_from_ctr("containerd://k8s.io/abc", "k8s.io", info_json, task, None)
    assert info.log_paths == ["/var/log/pods/ns_pod_uid/web/0.log"]
    assert info.log_format == "cri"
    assert info.name == "web"
    assert "Extensions" not in info.runtime_facts["container"]
    assert info.runtime_facts["cri_metadata"]["SandboxID"] == "def"
    assert ctrd.cri_metadata({"Extensions": {ctrd.CRI_METADATA_EXT: {"value": "%%"}}}) is None


def _fake_procfs(tmp_path: Path) -> tuple[Path, Path]:
    """A procfs with pid 20 (child) of shim pid 10, holding one log file open O_APPEND."""
    proc = tmp_path / "proc"
    log = tmp_path / "task.log"
    log.write_text("2026-11-23T15:42:27.355718529Z INFO main[1]: ready\n")
    other = tmp_path / "other.txt"
    other.write_text("x")
    for pid, comm, ppid in ((10, "containerd-shim", 1), (20, "target", 10)):
        d = proc / str(pid)
        (d / "fd").mkdir(parents=True)
        (d / "fdinfo").mkdir()
        (d / "comm").write_text(comm + "\n")
        fields = ["S", str(ppid)] + ["0"] * 17 + ["12345"] + ["0"] * 20
        (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    shim = proc / "10"
    os.symlink(str(log), shim / "fd" / "3")
    (shim / "fdinfo" / "3").write_text("pos:\t0\nflags:\t02102001\nmnt_id:\t1\n")
    os.symlink(str(other), shim / "fd" / "4")  # read-only: not a log
    (shim / "fdinfo" / "4").write_text("pos:\t0\nflags:\t02100000\n")
    os.symlink("pipe:[32191]", shim / "fd" / "5")
    (shim / "fdinfo" / "5").write_text("flags:\t02004001\n")
    return proc, log


def test_shim_log_files(tmp_path: Path) -> None:
    proc, log = _fake_procfs(tmp_path)
    assert ctrd.shim_log_files(20, str(proc)) == [str(log)]
    (proc / "10" / "comm").write_text("bash\n")
    assert ctrd.shim_log_files(20, str(proc)) == []  # only a containerd shim's files


# --- /proc helpers ---------------------------------------------------------------------


def test_read_stat_odd_comm(tmp_path: Path) -> None:
    d = tmp_path / "7"
    d.mkdir()
    fields = ["R", "1"] + ["0"] * 17 + ["500"] + ["0"] * 20
    (d / "stat").write_text("7 (a) (b c) " + " ".join(fields) + "\n")
    st = pidmod.read_stat(7, str(tmp_path))
    assert st == {"comm": "a) (b c", "state": "R", "ppid": 1, "starttime_ticks": 500}
    start = pidmod.process_start_ns(7, str(tmp_path))
    expected = pidmod.boot_time_ns() + 500 * 10**9 // os.sysconf("SC_CLK_TCK")
    assert start is not None and abs(start - expected) < 10**8
    with pytest.raises(TargetGone):
        pidmod.read_stat(8, str(tmp_path))
    assert pidmod.process_start_ns(8, str(tmp_path)) is None


def test_process_start_of_ourselves() -> None:
    ours = pidmod.process_start_ns(os.getpid())
    assert ours is not None
    assert abs(ours / 1e9 - psutil.Process().create_time()) < 1.0


def test_stdio_log_paths(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_text("hello\n")
    fd = tmp_path / "proc" / "5" / "fd"
    fd.mkdir(parents=True)
    os.symlink(str(log), fd / "1")
    os.symlink(str(log), fd / "2")  # the same file: listed once
    assert pidmod.stdio_log_paths(5, str(tmp_path / "proc")) == [str(log)]
    os.unlink(fd / "1")
    os.unlink(fd / "2")
    os.symlink("pipe:[123]", fd / "1")
    os.symlink(str(tmp_path), fd / "2")  # a directory is no log
    assert pidmod.stdio_log_paths(5, str(tmp_path / "proc")) == []


@pytest.mark.parametrize(
    ("first_line", "fmt"),
    [
        ("2026-11-23T15:36:50.034747847+00:00 stdout F hello", "k8s-file"),
        ("2026-11-23T15:36:50.034747847Z stderr P part", "k8s-file"),
        ('{"log":"hello\\n","stream":"stdout","time":"2026-11-23T15:36:50.0Z"}', "json-file"),
        ("2026-11-23T15:36:50.034219028Z INFO main[1]: starting", "raw"),
        ("", None),
    ],
)
def test_sniff_log_format(tmp_path: Path, first_line: str, fmt: str | None) -> None:
    path = tmp_path / "log"
    path.write_text(first_line + ("\nmore\n" if first_line else ""))
    assert pidmod.sniff_log_format(str(path)) == fmt
    assert pidmod.sniff_log_format(str(tmp_path / "missing")) is None


def test_pid_resolve_self() -> None:
    info = resolve(f"pid://{os.getpid()}")
    assert info.runtime == "pid" and info.pid == os.getpid()
    assert info.container_id is None and info.image is None
    assert info.runtime_facts["exe"] == os.readlink("/proc/self/exe")
    assert info.runtime_facts["other_pid_ns"] is False


def test_pid_resolve_gone() -> None:
    with pytest.raises(TargetGone, match="does not exist"):
        resolve("pid://999999999")


# --- tools and facts ----------------------------------------------------------------------


def test_run_tool_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeToolError, match="exuvia-no-such-tool is not installed"):
        run_tool(["exuvia-no-such-tool", "version"])
    script = "import sys; sys.stderr.write('first\\nbad thing happened\\n'); sys.exit(3)"
    with pytest.raises(ToolFailed) as exc:
        run_tool([sys.executable, "-c", script])
    assert exc.value.returncode == 3
    assert "exit 3" in str(exc.value) and "bad thing happened" in str(exc.value)
    assert "\n" not in str(exc.value)
    with pytest.raises(RuntimeToolError, match="timed out"):
        run_tool([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)
    monkeypatch.setenv("PATH", str(tmp_path))
    for uri, tool in [("podman://web", "podman"), ("runc://x", "runc"), ("containerd://x", "ctr")]:
        with pytest.raises(RuntimeToolError, match=f"^{tool} is not installed"):
            resolve(uri)


def test_trim_facts() -> None:
    facts = {
        "Env": ["A=1", "TOKEN=secret", "NOVALUE"],
        "nested": {"env": ["B=2"], "seccomp": {"huge": True}},
        "long": "x" * 5000,
        "many": list(range(300)),
    }
    out = trim_facts(facts, drop=frozenset({"seccomp"}))
    assert out["Env"] == ["A=<omitted>", "TOKEN=<omitted>", "NOVALUE=<omitted>"]
    assert out["nested"] == {"env": ["B=<omitted>"]}
    assert len(out["long"]) < 4200 and out["long"].endswith("more characters)")
    assert len(out["many"]) == 257 and out["many"][-1] == "…(44 more items)"
    assert facts["Env"][1] == "TOKEN=secret"  # the input is untouched


# --- the OCI image writer (tests/support/oci_image.py) -------------------------------------


def _tiny_rootfs(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "run").write_bytes(b"\x7fELF fake")
    os.chmod(root / "app" / "run", 0o755)
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    os.symlink("app/run", root / "entry")
    return root


def _members(path: Path) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out[m.name] = f.read() if f else b""
    return out


def test_oci_archive_is_deterministic_and_consistent(tmp_path: Path) -> None:
    oci = oci_image_module()
    rootfs = _tiny_rootfs(tmp_path / "rootfs")
    opts: dict[str, Any] = {"entrypoint": ["/app/run"], "env": ["PATH=/", "K=V"]}
    a = oci.build_oci_archive(rootfs, "localhost/t/x:1", tmp_path / "a.tar", **opts)
    b = oci.build_oci_archive(rootfs, "localhost/t/x:1", tmp_path / "b.tar", **opts)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    m = _members(tmp_path / "a.tar")
    assert json.loads(m["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(m["index.json"])
    desc = index["manifests"][0]
    assert desc["annotations"] == {
        "io.containerd.image.name": "localhost/t/x:1",
        "org.opencontainers.image.ref.name": "localhost/t/x:1",
    }
    for name, data in m.items():
        if name.startswith("blobs/sha256/") and data:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(m["blobs/sha256/" + desc["digest"][7:]])
    assert manifest["config"]["digest"] == a.config_digest
    config = json.loads(m["blobs/sha256/" + a.config_digest[7:]])
    assert config["config"]["Entrypoint"] == ["/app/run"]
    assert config["config"]["Env"] == ["PATH=/", "K=V"]
    assert config["config"]["WorkingDir"] == "/"
    layer_gz = m["blobs/sha256/" + manifest["layers"][0]["digest"][7:]]
    layer = gzip.decompress(layer_gz)
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == config["rootfs"]["diff_ids"][0]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        entries = {t.name: t for t in tar.getmembers()}
    assert entries["tmp"].mode == 0o1777 and entries["app/run"].mode == 0o755
    assert entries["entry"].issym() and entries["entry"].linkname == "app/run"
    assert len({t.mtime for t in entries.values()}) == 1
    assert b.manifest_digest == a.manifest_digest


def test_oci_script_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    oci = oci_image_module()
    rootfs = _tiny_rootfs(tmp_path / "rootfs")
    out = tmp_path / "img.tar"
    argv = ["--rootfs", str(rootfs), "--ref", "docker.io/library/pause:3.9", "-o", str(out)]
    rc = oci.main([*argv, "--entrypoint", '["/pause"]', "--env", "A=B", "--label", "x=y"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(out) and printed["ref"] == "docker.io/library/pause:3.9"
    m = _members(out)
    config = json.loads(m["blobs/sha256/" + printed["config"][7:]])
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["Labels"] == {"x": "y"}
    assert oci.main(["--rootfs", str(tmp_path / "nope"), "--ref", "a:b", "-o", str(out)]) == 1
