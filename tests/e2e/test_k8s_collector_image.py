"""End to end: the collector image built from images/collector/Containerfile runs the agent.

The other e2e tests use the equivalent image that images/collector/build-local
assembles from this machine's Python. This one builds the real Containerfile with
podman (images/collector/build-podman: its two base images are made from Debian 12
packages, since no registry is reachable here; pip fetches the agent's wheels from
PyPI) under the default image name (``ghcr.io/exuvia/collector:<version>``),
imports it into the cluster's containerd and captures a pod *without* ``--image``
(the default works once the image is on the node) in a namespace enforcing
PodSecurity ``restricted``, so the distroless image runs the agent as the target's
non-root user.

Building needs podman, debootstrap (installed by the script if missing) and the
network (a Debian mirror and PyPI); the base images are kept in podman's storage,
so later runs only rebuild the layers this source tree changed.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from collectors.k8s.spec import DEFAULT_IMAGE
from tests.e2e import k8s_lab as lab

pytestmark = pytest.mark.e2e
#: by default the image is built under the name `exuvia capture` runs without --image
PODMAN_IMAGE = os.environ.get("EXUVIA_E2E_PODMAN_COLLECTOR_IMAGE", DEFAULT_IMAGE)


@functools.cache
def build_with_podman() -> str:
    if shutil.which("podman") is None:
        why = "podman is not installed: the Containerfile cannot be built here"
        if os.environ.get("EXUVIA_E2E_REQUIRE") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    res = subprocess.run(
        [str(lab.REPO / "images/collector/build-podman"), "--ref", PODMAN_IMAGE,
         "--containerd-address", lab.containerd_socket()],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    return res.stdout.strip()


@pytest.fixture(scope="session")
def podman_image(k8s_api_client: Any) -> str:
    lab.ensure_images(lab.WORKDIR)  # the lab target images
    return build_with_podman()


def test_capture_with_the_image_built_from_the_containerfile(
    cluster: Any,
    kubeconfig_path: str,
    podman_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = cluster.namespace("k8sh-cf", enforce="restricted")
    cluster.create_pod(ns, lab.lab_pod("lab", restricted=True))
    cluster.wait_pod_running(ns, "lab")
    lab.wait_logged(cluster, ns, "lab", "]: ready")
    out = tmp_path / "cf.exv"
    # no --image and no pull policy: the default image, found on the node (IfNotPresent)
    monkeypatch.delenv("EXUVIA_COLLECTOR_IMAGE", raising=False)
    argv = ["capture", f"k8s://{ns}/lab", "-o", str(out), "-q"]
    if PODMAN_IMAGE != DEFAULT_IMAGE:
        argv += ["--image", PODMAN_IMAGE, "--image-pull-policy", "Never"]
    res = lab.cli(*argv, kubeconfig=kubeconfig_path)
    assert res.returncode == 0, res.stderr + res.stdout
    manifest = lab.check_verify(out)
    assert manifest["agent"]["end_to_end"]["ok"] is True
    m = lab.members(out)
    fp = json.loads(m["artifacts/k8s/footprint.json"])
    assert fp["spec_sent"]["image"] == PODMAN_IMAGE
    # the image that ran is the one podman built (its config digest is the CRI image ID)
    built_id = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", PODMAN_IMAGE],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert fp["image_id"] == f"sha256:{built_id}", (fp["image_id"], built_id)
    procs = [r for r in lab.jsonl(m["artifacts/processes.jsonl"]) if r.get("kind") == "process"]
    main = next(p for p in procs if (p.get("cmdline") or [None])[0] == "/app/target")
    assert main["pid"] == 1 and main["uid"]["effective"] == 65534
    implant = next(p for p in procs if (p.get("cmdline") or [None])[0] == "/tmp/.x")
    assert implant["exe_deleted"] is True and f"binaries/{implant['pid']}/exe" in m
    agents = [p for p in procs if "collectors.agent" in (p.get("cmdline") or [])]
    assert agents and all(p["uid"]["effective"] == 65534 for p in agents)
    assert m["files/tmp/after-start.txt"].startswith(b"written after start by pid 1")

    # inside the agent container: Debian's CPython from the distroless-style base, the
    # agent's wheels with their metadata, the packages' dpkg status, and no shell
    probe = (
        "import os, sys, importlib.util as u, collectors.agent; print(json.dumps({"
        "'python': sys.executable, 'version': list(sys.version_info[:2]),"
        "'textual': u.find_spec('textual') is not None,"
        "'kubernetes': u.find_spec('kubernetes') is not None,"
        "'dist': sorted(d for d in os.listdir('/opt/exuvia') if d.endswith('.dist-info')),"
        "'dpkg': sorted(os.listdir('/var/lib/dpkg/status.d')),"
        "'shell': [p for p in ('/bin/sh', '/bin/bash', '/usr/bin/sh') if os.path.exists(p)]}))"
    )
    code, stdout, stderr = cluster.exec(
        ns, "lab", ["python3", "-c", "import json; " + probe], fp["container"]
    )
    assert code == 0, stderr
    seen = json.loads(stdout)
    assert seen["version"] == [3, 11] and seen["python"].startswith("/usr/bin/python3")
    assert not seen["textual"] and not seen["kubernetes"] and seen["shell"] == []
    names = {d.split("-", 1)[0] for d in seen["dist"]}
    assert {"exuvia", "zstandard", "psutil", "pyelftools"} <= names, seen["dist"]
    assert {"libpython3.11-stdlib", "python3.11-minimal", "libc6"} <= set(seen["dpkg"])
