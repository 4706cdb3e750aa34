"""End to end: a pod's live processes, files and sockets through `agent serve`, on the
real cluster, from the agent's ephemeral container (reused on a second session)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from collectors.k8s.capture import K8sOptions
from collectors.k8s.client import KubeClient
from collectors.k8s.livepod import open_live
from forensics.errors import ExuviaError
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_capture import k8s_images, start_lab  # noqa: F401 - fixture
from tui.demo.rootfs import CHANGED_CONFIG, TARGET_PATH, build_demo_rootfs

pytestmark = pytest.mark.e2e


def serve_pids(container_id: str) -> list[int]:
    """Host pids of `collectors.agent serve` processes for that target."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"collectors.agent" in argv
            and b"serve" in argv
            and any(container_id.encode() in a for a in argv)
        ):
            out.append(int(entry.name))
    return out


def test_live_processes_files_and_sockets_of_a_pod(
    cluster: Any,
    kubeconfig_path: str,
    k8s_images: str,  # noqa: F811 - the fixture imported above
) -> None:
    ns = cluster.namespace("podlive", enforce="baseline")
    pod = start_lab(cluster, ns)
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
    rootfs = build_demo_rootfs(lab.WORKDIR)  # the tree the lab image was made of
    k8s = K8sOptions(image=lab.COLLECTOR_IMAGE, pull_policy="Never", idle=120, linger=5)
    kc = KubeClient(kubeconfig_path)
    try:
        live = open_live(kc, ns, "lab", None, k8s)
        try:
            assert live.container == "app" and live.injection.footprint["reused"] is False
            assert serve_pids(cid), "agent serve is not running"
            r = live.remote
            assert r.shell[0] is False, r.shell  # the lab image has no shell
            rows = r.sample()
            assert rows[0].nspid == 1
            assert any(TARGET_PATH in " ".join(p.cmdline) for p in rows), rows
            assert any(p.exe_deleted or p.exe_memfd for p in rows)  # the lab's implant
            names = {e.name for e in r.root.list_dir(b"/app")}
            assert b"target" in names, names
            want = (rootfs / TARGET_PATH.lstrip("/")).read_bytes()
            assert r.root.sha256(TARGET_PATH.encode()) == (
                hashlib.sha256(want).hexdigest(),
                len(want),
            )
            head, size = r.root.read_head(TARGET_PATH.encode(), 4096)
            assert head == want[:4096] and size == len(want)
            conf, _n = r.root.read_head(CHANGED_CONFIG.encode())
            assert b"log_file" in conf  # the lab rewrote it after start
            # an ephemeral agent cannot see the node's overlay upper layer: said, not guessed
            assert r.hello["changed_known"] is False and r.root.upper_note
            socks = r.sockets()
            listen = [s for s in socks if s.state == "LISTEN" and s.local.endswith(":8080")]
            assert listen and any("target" in o for o in listen[0].owners), socks
            with pytest.raises(ExuviaError, match="No such file"):
                r.root.read_head(b"/no/such/file")
            assert live.requests()["sha256"] == 1
        finally:
            live.close()
        lab.wait_for(lambda: not serve_pids(cid), 20, "agent serve to exit", 0.1)

        again = open_live(kc, ns, "lab", "app", k8s)  # a second session: the same agent
        try:
            fp = again.injection.footprint
            assert fp["reused"] is True and again.injection.container == live.injection.container
            assert again.summary()["agent_container"] == live.injection.container
            assert again.remote.sample()
        finally:
            again.close()
        eph = (kc.get_pod(ns, "lab").get("spec") or {}).get("ephemeralContainers") or []
        assert len(eph) == 1  # nothing more was added

        def agent_ended() -> bool:
            sts = kc.get_pod(ns, "lab")["status"].get("ephemeralContainerStatuses") or []
            return any("terminated" in (s.get("state") or {}) for s in sts)

        lab.wait_for(agent_ended, 60, "the agent container to exit after --linger", 0.5)
    finally:
        kc.close()
