"""End to end: `exuvia capture k8s://…` against the real cluster (tests/e2e/cluster/up).

A shell-less lab target (tui/demo/target.c: a dropped binary run then deleted,
a fileless memfd process, files written after start, sockets, log lines) runs
in namespaces labelled for PodSecurity privileged, baseline and restricted; the
real command line captures it through an ephemeral agent container (default
profile ``auto``), and the bundle is checked: processes, files, logs, events,
container statuses, node, footprint, the agent's manifest hash end to end, and
`exuvia verify`. Also: profiles the namespace's policy refuses (the error names
the policy, the field and a profile that passes), reuse of a running agent and
its exit when done, a stream cut by killing the agent, and --node-level.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from forensics.bundle import verify_bundle
from forensics.timeline import Query, open_timeline
from forensics.timeutil import parse_iso_ns
from tests.e2e import k8s_lab as lab

pytestmark = pytest.mark.e2e


def start_lab(cluster: Any, ns: str, name: str = "lab", **kw: Any) -> dict[str, Any]:
    cluster.create_pod(ns, lab.lab_pod(name, **kw))
    cluster.wait_pod_running(ns, name)
    lab.wait_logged(cluster, ns, name, "]: ready")
    pod: dict[str, Any] = cluster.core.api_client.sanitize_for_serialization(
        cluster.read_pod(ns, name)
    )
    return pod


def capture(kubeconfig: str, uri: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return lab.cli(*lab.capture_argv(uri, out, *extra), kubeconfig=kubeconfig)


def processes(m: dict[str, bytes]) -> list[dict[str, Any]]:
    return [r for r in lab.jsonl(m["artifacts/processes.jsonl"]) if r.get("kind") == "process"]


def by_argv0(procs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for p in procs:
        argv = p.get("cmdline") or []
        if argv and argv[0] == name:
            return p
    raise AssertionError(f"no process {name!r} in {[p.get('cmdline') for p in procs]}")


@pytest.mark.parametrize("level", ["privileged", "baseline", "restricted"])
def test_capture_a_shellless_pod_at_each_pod_security_level(
    level: str, cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    ns = cluster.namespace(f"cap-{level[:4]}", enforce=level)
    pod = start_lab(cluster, ns, restricted=level == "restricted")
    out = tmp_path / "lab.exv"
    res = capture(kubeconfig_path, f"k8s://{ns}/lab", out)
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"bundle:          {out} (complete)" in res.stdout
    assert not out.with_name("lab.exv.agent-stream").exists()
    manifest = lab.check_verify(out)
    m = lab.members(out)

    # identity, end-to-end hashes, node
    status = pod["status"]["containerStatuses"][0]
    t = manifest["target"]
    assert t["uri"] == f"k8s://{ns}/lab/app" and t["runtime"] == "k8s"
    assert t["container_id"] == status["containerID"] and t["image_id"] == status["imageID"]
    assert t["pid"] == 1  # the target's init in the PID namespace the agent shares
    assert manifest["complete"] is True and manifest["incomplete_reason"] == ""
    agent = manifest["agent"]
    assert agent["end_to_end"]["ok"] is True, agent["end_to_end"]
    assert agent["manifest_member"] == "agent/manifest.json"
    assert agent["end_to_end"]["reported"]["manifest_sha256"] == agent["manifest_sha256"]
    assert agent["relay"]["problems"] == [] and agent["relay"]["verified_by_manifest"] > 5
    node = cluster.core.read_node(pod["spec"]["nodeName"]).status.node_info
    assert manifest["kubernetes"]["node"]["kernel"] == node.kernel_version
    assert manifest["kubernetes"]["node"]["runtime"] == node.container_runtime_version
    assert manifest["kubernetes"]["node"]["os_image"] == node.os_image

    # processes: the incident, through the shared PID namespace
    procs = processes(m)
    uid = 65534 if level == "restricted" else 0
    main = by_argv0(procs, "/app/target")
    assert main["pid"] == 1 and main["uid"]["effective"] == uid
    assert by_argv0(procs, "worker")
    implant = by_argv0(procs, "/tmp/.x")
    assert implant["exe_deleted"] is True
    assert by_argv0(procs, "kworker-memfd")["exe_memfd"] is True
    assert f"binaries/{implant['pid']}/exe" in m
    agents = [p for p in procs if "collectors.agent" in (p.get("cmdline") or [])]
    assert agents and all(p["uid"]["effective"] == uid for p in agents)
    # the agent's own processes are named as such in the target's facts
    marked = set(t["runtime_facts"]["agent"]["container_processes"])
    assert {p["pid"] for p in agents} <= marked and 1 not in marked

    # files: written after start; the config the target changed (root can write it)
    assert m["files/tmp/after-start.txt"].startswith(b"written after start by pid 1")
    if level != "restricted":
        assert b"feature_x = on" in m["files/etc/app/app.conf"]

    # Kubernetes facts: logs, events, statuses, transitions, pod objects
    assert b" INFO main[1]: ready" in m["logs/k8s/app.log"]
    logs = {r["member"]: r for r in lab.jsonl(m["artifacts/k8s/logs.jsonl"])}
    app_log = logs["logs/k8s/app.log"]
    assert app_log["lines"] > 5 and isinstance(app_log["first_ns"], int)
    assert app_log["first_ns"] <= app_log["last_ns"]
    events = lab.jsonl(m["artifacts/k8s/events.jsonl"])
    started = [e for e in events if e["reason"] == "Started" and e["container"] == "app"]
    assert started and isinstance(started[0]["ts_ns"], int) and started[0]["kind"] == "k8s.event"
    fp = json.loads(m["artifacts/k8s/footprint.json"])
    assert any(e["container"] == fp["container"] and e["reason"] == "Started" for e in events)
    statuses = {s["container"]: s for s in lab.jsonl(m["artifacts/k8s/containers.jsonl"])}
    assert statuses["app"]["restart_count"] == 0
    assert statuses["app"]["image_id"] == status["imageID"]
    assert statuses[fp["container"]]["type"] == "ephemeral"
    transitions = lab.jsonl(m["artifacts/k8s/transitions.jsonl"])
    assert any(
        x["transition"] == "container.started" and x["container"] == "app" for x in transitions
    )
    assert json.loads(m["artifacts/k8s/pod.json"])["metadata"]["uid"] == pod["metadata"]["uid"]
    assert json.loads(m["artifacts/k8s/node.json"])["metadata"]["name"] == pod["spec"]["nodeName"]

    # footprint: exactly what was added, the image that ran, resourceVersions
    assert fp["mode"] == "ephemeral-container" and fp["reused"] is False
    assert fp["container"].startswith("exuvia-") and len(fp["container"]) == len("exuvia-") + 6
    sent = fp["spec_sent"]
    assert sent["targetContainerName"] == "app" and sent["image"] == lab.COLLECTOR_IMAGE
    assert sent["args"][0] == "wait"
    if level == "restricted":
        sc = sent["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    else:
        assert "securityContext" not in sent  # auto: the target sets none
    assert fp["image_ran"] == lab.COLLECTOR_IMAGE and fp["image_id"].startswith("sha256:")
    assert int(fp["pod_resource_version_after"]) > int(fp["pod_resource_version_before"])
    assert fp["pod_resource_version_before"] == pod["metadata"]["resourceVersion"]
    live = cluster.core.api_client.sanitize_for_serialization(cluster.read_pod(ns, "lab"))
    stored = [c for c in live["spec"]["ephemeralContainers"] if c["name"] == fp["container"]]
    assert stored == [fp["spec_as_stored"]]
    assert cluster.read_pod(ns, "lab").status.container_statuses[0].restart_count == 0

    # the custody sidecar seals the bundle
    custody = lab.jsonl(Path(f"{out}.custody.jsonl").read_bytes())
    sealed = [c for c in custody if c["action"] == "bundle.sealed"]
    assert sealed and sealed[0]["details"]["manifest_sha256"] == verify_bundle(out).manifest_sha256

    # the timeline gains the pod's Kubernetes events and container transitions
    tl = open_timeline(out, cache_dir=out.parent / f"{out.name}.tl")
    k8s_events = tl.events(Query(sources=("k8s",)), limit=500)
    assert any(e.kind == "k8s.event" and "Started" in e.message for e in k8s_events)
    assert any(e.kind == "container.started" for e in k8s_events)

    # ...and the lines the pod printed, read through the API: `exuvia timeline` lists them
    printed = next(ln for ln in m["logs/k8s/app.log"].decode().splitlines() if "]: ready" in ln)
    api_time, _sp, text = printed.partition(" ")
    res = lab.cli("timeline", str(out), "--source", "log", "--search", "ready", "-o", "-",
                  kubeconfig="")  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [json.loads(ln) for ln in res.stdout.splitlines()]
    api_lines = [ln for ln in lines if ln["origin"] == "k8s-api"]
    got = [(ln["message"], ln["entity"], ln["ref_member"], ln["previous"]) for ln in api_lines]
    assert got == [(text, "container:app", "logs/k8s/app.log", False)], lines
    assert api_lines[0]["receive_ts"] == parse_iso_ns(api_time)
    assert api_lines[0]["timestamp_ns"] == parse_iso_ns(text.split(" ", 1)[0])  # its own time


@pytest.mark.parametrize(
    ("level", "profile", "fields"),
    [
        ("baseline", "general", ["securityContext.capabilities.add"]),
        ("restricted", "baseline", ["securityContext.allowPrivilegeEscalation",
                                    "securityContext.capabilities.drop"]),
        ("restricted", "sysadmin", ["securityContext.privileged"]),
    ],
)  # fmt: skip
def test_a_profile_the_policy_refuses_is_explained(
    level: str, profile: str, fields: list[str], cluster: Any, kubeconfig_path: str,
    k8s_images: str, tmp_path: Path,
) -> None:  # fmt: skip
    ns = cluster.namespace(f"psa-{level[:4]}", enforce=level)
    start_lab(cluster, ns, restricted=level == "restricted")
    out = tmp_path / "refused.exv"
    res = capture(kubeconfig_path, f"k8s://{ns}/lab", out, "--profile", profile)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    msg = lines[0]
    assert f'PodSecurity "{level}:latest" rejected the agent container exuvia-' in msg
    assert f"(profile {profile})" in msg
    for f in fields:
        assert f in msg, msg
    assert "use --profile auto" in msg
    assert not out.exists() and not Path(f"{out}.partial").exists()
    # and nothing was added to the pod
    assert not cluster.read_pod(ns, "lab").spec.ephemeral_containers


def test_a_running_agent_is_reused_and_exits_when_done(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    ns = cluster.namespace("reuse", enforce="baseline")
    start_lab(cluster, ns)
    first, second = tmp_path / "1.exv", tmp_path / "2.exv"
    res = capture(kubeconfig_path, f"k8s://{ns}/lab/app", first, "--agent-linger", "10")
    assert res.returncode == 0, res.stderr
    res = capture(kubeconfig_path, f"k8s://{ns}/lab/app", second)
    assert res.returncode == 0, res.stderr
    fp1 = json.loads(lab.members(first)["artifacts/k8s/footprint.json"])
    fp2 = json.loads(lab.members(second)["artifacts/k8s/footprint.json"])
    assert fp1["reused"] is False and fp2["reused"] is True
    assert fp2["container"] == fp1["container"] and fp2["spec_sent"] is None
    assert fp2["spec_as_stored"] == fp1["spec_as_stored"]
    lab.check_verify(second)
    eph = cluster.read_pod(ns, "lab").spec.ephemeral_containers
    assert [c.name for c in eph] == [fp1["container"]]
    # the collector image runs the agent without the TUI or the Kubernetes client
    probe = (
        "import collectors.agent, importlib.util as u; print(u.find_spec('textual'), "
        "u.find_spec('kubernetes'), u.find_spec('zstandard') is not None)"
    )
    code, stdout, stderr = cluster.exec(ns, "lab", ["python3", "-c", probe], fp1["container"])
    assert (code, stdout.strip()) == (0, "None None True"), stderr
    # nothing keeps running: the agent exits by itself after --agent-linger
    done = cluster.wait_ephemeral(ns, "lab", fp1["container"], ("terminated",), timeout=60)
    assert done.exit_code == 0 and done.reason == "Completed"
    assert cluster.read_pod(ns, "lab").status.container_statuses[0].restart_count == 0


def test_restarts_previous_logs_and_the_default_container_annotation(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    """A pod of two containers, one of which keeps exiting and being restarted."""
    ns = cluster.namespace("restart", enforce="baseline")
    body = lab.lab_pod("two")
    body["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "app"}
    flappy = {"name": "flappy", "image": cluster.images.shellless, "imagePullPolicy": "Never",
              "args": ["echo", "flappy", "ran"]}  # fmt: skip
    body["spec"]["containers"].insert(0, flappy)  # first, but not the default
    cluster.create_pod(ns, body)

    def restarted() -> bool:
        statuses = cluster.read_pod(ns, "two").status.container_statuses or []
        return any(s.name == "flappy" and s.restart_count >= 1 for s in statuses) and any(
            s.name == "app" and s.state.running for s in statuses
        )

    cluster.wait(restarted, 120, f"{ns}/two: flappy restarted, app running")
    lab.wait_logged(cluster, ns, "two", "]: ready")
    out = tmp_path / "two.exv"
    res = capture(kubeconfig_path, f"k8s://{ns}/two", out)
    assert res.returncode == 0, res.stderr + res.stdout
    manifest = lab.check_verify(out)
    assert manifest["target"]["uri"] == f"k8s://{ns}/two/app"
    m = lab.members(out)
    custody = lab.jsonl(m["custody.jsonl"])
    resolved = next(c for c in custody if c["action"] == "target.resolved")
    assert "kubectl.kubernetes.io/default-container" in resolved["details"]["chosen_because"]
    assert b"flappy ran" in m["logs/k8s/flappy.previous.log"]
    logs = {(r["container"], r["previous"]) for r in lab.jsonl(m["artifacts/k8s/logs.jsonl"])}
    assert {("flappy", True), ("flappy", False), ("app", False)} <= logs
    statuses = {s["container"]: s for s in lab.jsonl(m["artifacts/k8s/containers.jsonl"])}
    assert statuses["flappy"]["restart_count"] >= 1
    assert statuses["flappy"]["last_state"]["state"] == "terminated"
    assert statuses["flappy"]["last_state"]["exitCode"] == 0
    exits = [x for x in lab.jsonl(m["artifacts/k8s/transitions.jsonl"])
             if x["transition"] == "container.exited" and x["container"] == "flappy"]  # fmt: skip
    assert exits and exits[0]["exit_code"] == 0 and exits[0]["reason"] == "Completed"
    events = lab.jsonl(m["artifacts/k8s/events.jsonl"])
    assert any(e["container"] == "flappy" and e["reason"] in ("BackOff", "Started") for e in events)
    # the previous instance's log, through the API, is on the timeline too
    tl = open_timeline(out, cache_dir=out.parent / f"{out.name}.tl")
    ran = tl.events(Query(sources=("log",), text="flappy ran"), limit=50)
    previous = [e for e in ran if e.attrs.get("previous") is True]
    assert previous and all(e.entity == "container:flappy" for e in previous), ran
    assert previous[0].ref.member == "logs/k8s/flappy.previous.log"
    assert previous[0].attrs["origin"] == "k8s-api"


def test_an_agent_that_cannot_start_is_recorded(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    """The agent was added (that cannot be undone) but its image is not there: the
    capture is written incomplete, with the footprint and the kubelet's reason."""
    ns = cluster.namespace("noimg", enforce="baseline")
    start_lab(cluster, ns)
    out = tmp_path / "noimg.exv"
    argv = ["capture", f"k8s://{ns}/lab", "-o", str(out), "-q", "--image",
            "localhost/exuvia/no-such-collector:0", "--image-pull-policy", "Never"]  # fmt: skip
    res = lab.cli(*argv, kubeconfig=kubeconfig_path)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "the agent did not start" in res.stdout and "ErrImageNeverPull" in res.stdout
    kept = Path(f"{out}.incomplete")
    manifest = lab.check_verify(kept)
    assert manifest["complete"] is False
    m = lab.members(kept)
    fp = json.loads(m["artifacts/k8s/footprint.json"])
    assert "ErrImageNeverPull" in fp["start_error"] and fp["spec_sent"]["name"] == fp["container"]
    events = lab.jsonl(m["artifacts/k8s/events.jsonl"])
    assert any(e["container"] == fp["container"] and e["type"] == "Warning" for e in events)
    assert b"]: ready" in m["logs/k8s/app.log"]


def test_a_broken_stream_keeps_what_arrived(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    ns = cluster.namespace("cut", enforce="baseline")
    pod = start_lab(cluster, ns, name="big", image=lab.LAB_BIG_IMAGE)
    cid = pod["status"]["containerStatuses"][0]["containerID"]
    out = tmp_path / "cut.exv"
    spool = Path(f"{out}.agent-stream")
    proc = lab.start_capture(f"k8s://{ns}/big", out, kubeconfig_path)
    try:
        lab.wait_for(lambda: spool.exists() and spool.stat().st_size > (2 << 20), 120, "the stream")
        pids = lab.agent_pids(cid)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)  # the agent dies mid-stream
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stdout + stderr
    kept = Path(f"{out}.incomplete")
    assert kept.exists() and not out.exists() and not spool.exists()
    assert "INCOMPLETE" in stdout and "exited with code 137" in stdout
    res = lab.cli("verify", str(kept), kubeconfig="")
    assert res.returncode == 0 and "INCOMPLETE capture" in res.stdout, res.stdout
    report = verify_bundle(kept)
    assert report.ok and not report.complete
    agent = report.manifest["agent"]
    assert agent["end_to_end"]["ok"] is False and agent["manifest_member"] is None
    assert agent["stream"]["exit_code"] == 137
    relay = agent["relay"]
    assert relay["members"] >= 3 and relay["bytes"] > (1 << 20)
    m = lab.members(kept)
    assert "artifacts/processes.jsonl" in m  # what arrived is there, and verifies
    if relay["cut"]:
        cut = relay["cut"]
        assert len(m[cut["member"]]) == cut["received"] < cut["size"]
    assert "artifacts/k8s/footprint.json" in m and "logs/k8s/app.log" in m
    assert report.manifest["target"]["pid"] == 1
    assert not lab.agent_pids(cid)


def test_node_level_capture_leaves_nothing_running(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    target_ns = cluster.namespace("node-t", enforce="restricted")
    agent_ns = cluster.namespace("node-a", enforce="privileged")
    pod = start_lab(cluster, target_ns, restricted=True)
    refused = capture(kubeconfig_path, f"k8s://{target_ns}/lab", tmp_path / "x.exv",
                      "--node-level")  # fmt: skip
    assert refused.returncode == 2 and "--node-namespace" in refused.stderr, refused.stderr
    out = tmp_path / "node.exv"
    res = capture(kubeconfig_path, f"k8s://{target_ns}/lab", out, "--node-level",
                  "--node-namespace", agent_ns)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    manifest = lab.check_verify(out)
    m = lab.members(out)
    fp = json.loads(m["artifacts/k8s/footprint.json"])
    assert fp["mode"] == "node-level-pod"
    node_pod = fp["pod"]
    assert node_pod["namespace"] == agent_ns and node_pod["node"] == pod["spec"]["nodeName"]
    assert node_pod["deletion"] == "confirmed: the pod is gone"
    spec = node_pod["spec_sent"]["spec"]
    assert spec["hostPID"] is True and spec["containers"][0]["securityContext"]["privileged"]
    assert fp["image_id"].startswith("sha256:")
    assert cluster.core.list_namespaced_pod(agent_ns).items == []
    assert not cluster.read_pod(target_ns, "lab").spec.ephemeral_containers
    # root with every capability on the node: the read-only view and the upper layer
    assert manifest["filesystem_view"].startswith("read-only")
    assert manifest["filesystem"]["changed"] > 0
    procs = processes(m)
    main = by_argv0(procs, "/app/target")
    assert main["uid"]["effective"] == 65534 and manifest["target"]["pid"] == main["pid"] > 1
    assert by_argv0(procs, "/tmp/.x")["exe_deleted"] is True
    assert b"]: ready" in m["logs/k8s/app.log"]
