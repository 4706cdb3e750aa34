"""Images, pods and CLI runs for the Kubernetes capture e2e tests.

Images are built locally and imported into the e2e cluster's containerd
(namespace k8s.io; there is no registry), each once per test session:

- ``localhost/exuvia/collector:test``: the collector image, from this source
  tree, by images/collector/build-local (so the agent is the code under test);
- ``localhost/exuvia/lab:test``: the lab target (tui/demo/target.c in a
  shell-less rootfs) that stages an incident: a deleted dropped binary still
  running, a fileless memfd process, files written after start, sockets, logs;
- ``localhost/exuvia/lab-big:test``: the same plus a 64 MiB incompressible
  /data/blob.bin, so a capture with ``--files all`` streams long enough to be cut.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forensics.bundle import verify_bundle
from forensics.bundle.reader import BundleReader
from tui.demo.lab import oci_archive
from tui.demo.rootfs import build_demo_rootfs

REPO = Path(__file__).resolve().parents[2]
#: where the lab images are built (one per process; removed at exit)
WORKDIR = Path(tempfile.mkdtemp(prefix="exuvia-k8s-lab-"))
atexit.register(shutil.rmtree, WORKDIR, True)
#: overridable so that concurrent runs from different trees do not replace each other's agent
COLLECTOR_IMAGE = os.environ.get("EXUVIA_E2E_COLLECTOR_IMAGE", "localhost/exuvia/collector:test")
LAB_IMAGE = "localhost/exuvia/lab:test"
LAB_BIG_IMAGE = "localhost/exuvia/lab-big:test"
BLOB_MIB = 64
#: lab-big plus MANY_FILES small incompressible files in /bulk, which the depth-first,
#: name-ordered walk copies before /data/blob.bin: the agent's stream holds a
#: checkpoint (one per 4096 members) well before the blob's 64 MiB, during which the
#: stream is still far from its end (lab-big's only checkpoints come after the blob,
#: at its end: the writer checks its thresholds and its 1 s timer when a member ends)
LAB_MANY_IMAGE = "localhost/exuvia/lab-many:test"
MANY_FILES = 8192


def containerd_socket() -> str:
    state = os.environ.get("EXUVIA_E2E_STATE", "/var/lib/exuvia-e2e")
    return f"{state}/run/containerd.sock"


def ctr(*args: str, timeout: float = 300) -> str:
    return subprocess.run(
        ["ctr", "--address", containerd_socket(), "-n", "k8s.io", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    ).stdout


@functools.cache
def ensure_images(workdir: Path) -> str:
    """Build and import the collector and lab images, once per process."""
    if not Path(containerd_socket()).exists():
        raise AssertionError(
            f"the e2e cluster's containerd socket {containerd_socket()} is missing"
        )
    built = build_collector_image()
    build_lab_images(workdir)
    return built


def check_verify(path: Path) -> dict[str, Any]:
    """`exuvia verify` says OK, and so does the library; returns the manifest."""
    res = cli("verify", str(path), kubeconfig="")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("OK:"), res.stdout
    report = verify_bundle(path)
    assert report.ok, report.failures()
    return report.manifest


def build_collector_image() -> str:
    """Build the collector image from this tree and import it; returns the build line."""
    out = subprocess.run(
        [sys.executable, str(REPO / "images/collector/build-local"), "--ref", COLLECTOR_IMAGE,
         "--containerd-address", containerd_socket()],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return out.stdout.strip()


def build_lab_images(workdir: Path) -> None:
    rootfs = build_demo_rootfs(workdir)
    ctr("images", "import", oci_archive(rootfs, workdir / "lab.tar", LAB_IMAGE).path)
    data = rootfs / "data"
    data.mkdir(mode=0o755)
    rng = random.Random(5)  # deterministic, incompressible
    with (data / "blob.bin").open("wb") as fh:
        for _ in range(BLOB_MIB):
            fh.write(rng.randbytes(1 << 20))
    os.chmod(data / "blob.bin", 0o644)
    ctr("images", "import", oci_archive(rootfs, workdir / "lab-big.tar", LAB_BIG_IMAGE).path)
    bulk = rootfs / "bulk"
    bulk.mkdir(mode=0o755)
    for i in range(MANY_FILES):
        (bulk / f"{i:05d}.bin").write_bytes(rng.randbytes(512))
        os.chmod(bulk / f"{i:05d}.bin", 0o644)
    ctr("images", "import", oci_archive(rootfs, workdir / "lab-many.tar", LAB_MANY_IMAGE).path)


def lab_pod(name: str, image: str = LAB_IMAGE, *, restricted: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image, "imagePullPolicy": "Never"}
    spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 2,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    if restricted:
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def wait_logged(cluster: Any, ns: str, pod: str, text: str, timeout: float = 60) -> None:
    cluster.wait(
        lambda: text in cluster.logs(ns, pod, "app"), timeout, f"{ns}/{pod} to log {text!r}"
    )


def cli(*args: str, kubeconfig: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--kubeconfig", kubeconfig]
        if args[0] == "capture"
        else [sys.executable, "-m", "tui.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO,
    )  # fmt: skip


def capture_argv(uri: str, out: Path, *extra: str) -> list[str]:
    return ["capture", uri, "-o", str(out), "--image", COLLECTOR_IMAGE,
            "--image-pull-policy", "Never", "-q", *extra]  # fmt: skip


def members(path: Path) -> dict[str, bytes]:
    """Every member; chunked records (2.0) also joined under their 1.x name."""
    from tests.support.bundles import joined_records  # noqa: PLC0415

    return joined_records(BundleReader(path).read_members(lambda _n: True))


def jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def agent_pids(needle: str, mode: str = "capture") -> list[int]:
    """Host pids of ``collectors.agent MODE`` processes (capture, serve) whose argv
    mentions ``needle``.

    The filesystem reader an agent forks while it walks (collectors/fs/reader_process.py)
    shares its argv; it is left out, so each agent counts once.
    """
    out = []
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"collectors.agent" in argv
            and mode.encode() in argv
            and any(needle.encode() in a for a in argv)
        ):
            out.append(int(entry.name))
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return [pid for pid in out if parents.get(pid) not in out]


def start_capture(uri: str, out: Path, kubeconfig: str, *extra: str) -> subprocess.Popen[str]:
    """`exuvia capture URI -o OUT --files all` in the background; the client spools
    the agent's stream to ``<OUT>.agent-stream`` while it arrives."""
    argv = capture_argv(uri, out, "--files", "all", "--kubeconfig", kubeconfig, *extra)
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *argv], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        val = probe()
        if val:
            return val
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def sigint_mid_stream(
    proc: subprocess.Popen[str], spool: Callable[[], Path | None], container_id: str
) -> tuple[str, str, float]:
    """Interrupt a capture (``proc``) with SIGINT while its agent still streams:
    wait until ``spool()`` names an agent stream over 1 MiB, stop the one agent of
    ``container_id`` (SIGSTOP: the stream must still be open when it is cut), send
    SIGINT, and wait for the capture to end; returns (stdout, stderr, seconds from
    the signal). The process is killed if the wait fails."""
    try:

        def grown() -> Path | None:
            found = spool()
            return found if found is not None and found.stat().st_size > (1 << 20) else None

        wait_for(grown, 300, "the agent's stream", 0.05)
        pids = agent_pids(container_id)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGSTOP)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return stdout, stderr, time.monotonic() - t0
