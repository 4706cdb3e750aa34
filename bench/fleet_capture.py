"""Benchmark: a fleet capture of 20 pods against the capture of 1 pod, on the same cluster.

In one run, on the e2e cluster ($KUBECONFIG, else tests/e2e/cluster/up's env file):
a namespace ``fleet-bench-<hex>`` with a Deployment of 20 replicas of the lab
target (LAB_MODE=clean) and one more lab pod with other labels; then

  baseline: `exuvia capture k8s://NS/solo -o solo.exv` (one pod: agent added,
            stream, sealed), the real command line;
  fleet:    `exuvia capture k8s://NS -l app=bench -o case/` (20 pods, default
            --parallel 8 / --per-node 4), the real command line.

Prints both wall times, their ratio (target: <= 3x), the fleet client's peak RSS
(wait4's ru_maxrss of the client process; target: <= 300 MiB), the load average
before and after, each pod's phases from the custody logs, and where the CPU went
during each run (the client, the cluster's processes, the agents' containers, the
whole machine: node_cpu). The e2e cluster runs on this machine: the agents, kubelet and
API server share its cores with the client (and with anyone else's work), so the
numbers are noisy; run it when the machine is quiet and say what the load was.

    .venv/bin/python bench/fleet_capture.py [--replicas 20] [--parallel 8] [--per-node 4] [--runs 5]

With --runs N the whole run is repeated on fresh pods (waiting for the last
namespace to be gone first), and the median ratio over the runs is the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e import k8s_lab as lab  # noqa: E402

RATIO_TARGET, RSS_TARGET_MIB = 3.0, 300


def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG")
    if not path:
        env = Path(os.environ.get("EXUVIA_E2E_STATE", "/var/lib/exuvia-e2e")) / "env"
        for line in env.read_text().splitlines() if env.exists() else []:
            if line.startswith("KUBECONFIG="):
                path = line.split("=", 1)[1].strip()
    if not path:
        raise SystemExit("no cluster: set KUBECONFIG (tests/e2e/cluster/up starts one)")
    return path


#: runs argv[2:] and writes its ru_maxrss (KiB) and exit status to the fd argv[1]. A child's
#: ru_maxrss starts at the RSS of the process it was forked from (the kernel keeps
#: the high-water mark across exec), so the measured command must be forked from
#: this small process, not from the benchmark (which holds the kubernetes client)
RSS_WRAPPER = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_pid, status, usage = os.wait4(p.pid, 0)
cpu = usage.ru_utime + usage.ru_stime
os.write(int(sys.argv[1]), f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu}".encode())
"""


def timed(argv: list[str]) -> tuple[float, int, int, float]:
    """(wall seconds, the client's peak RSS in KiB, exit status, its CPU seconds)."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", RSS_WRAPPER, str(w), *argv], cwd=REPO,
                            pass_fds=(w,))  # fmt: skip
    os.close(w)
    proc.wait()
    wall = time.perf_counter() - t0
    with os.fdopen(r) as fh:
        rss, rc, cpu = fh.read().split()
    return wall, int(rss), int(rc), float(cpu)


#: a pod's phases, from its bundle's custody log (action -> action): what each costs
PHASES = (
    ("queued", "case.resolved", "capture.started"),  # waiting for a --parallel/--per-node slot
    ("resolve", "capture.started", "target.resolved"),  # API client, get pod
    ("agent", "target.resolved", "agent.running"),  # patch the ephemeral container, wait Running
    ("stream", "agent.exec", "agent.stream.ended"),  # the agent's capture, relayed
    ("seal", "agent.stream.ended", "bundle.sealed"),  # facts, relay check, client manifest
)


#: where a capture's CPU goes on this one-node cluster: long-lived processes by name,
#: their own CPU and, apart, that of the children they reaped (a containerd shim reaps
#: its runc calls and the processes exec'd into its containers: the agents' captures,
#: which the agents' cgroups count too); the cgroups of the containers started during
#: the run (the agents: their ``wait`` and every exec'd capture) and of the others
NODE_PROCS = ("kube-apiserver", "etcd", "kubelet", "containerd-shim", "containerd",
              "kube-controller", "kube-scheduler")  # fmt: skip
KUBEPODS = Path("/sys/fs/cgroup/cpuacct/kubepods")


def _pod_cgroups() -> dict[str, float]:
    """CPU seconds of every container's cgroup (kubepods/QOS/podUID/CONTAINER)."""
    out: dict[str, float] = {}
    for usage in KUBEPODS.glob("*/pod*/*/cpuacct.usage"):
        with contextlib.suppress(OSError, ValueError):
            out[str(usage.parent)] = int(usage.read_text()) / 1e9
    return out


def node_cpu() -> dict[str, Any]:
    """CPU seconds so far per NODE_PROCS name (processes alive now), the containers'
    cgroups, and the whole machine (busy time of /proc/stat: everyone's work, noise too)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, Any] = dict.fromkeys(NODE_PROCS, 0.0)
    out.update({f"{n} (reaped)": 0.0 for n in NODE_PROCS})
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        name = next((n for n in NODE_PROCS if comm.startswith(n)), None)
        if name is not None:
            f = [int(x) for x in stat[stat.rindex(")") + 2 :].split()[11:15]]
            out[name] += (f[0] + f[1]) / tick  # utime stime
            out[f"{name} (reaped)"] += (f[2] + f[3]) / tick  # cutime cstime
    out["_cgroups"] = _pod_cgroups()
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    out["machine"] = (sum(int(x) for x in cpu) - int(cpu[3]) - int(cpu[4])) / tick
    return out


def cpu_delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """What happened between the snapshots ``a`` and ``b``; a container's cgroup that is
    new in ``b`` counts whole (an agent started meanwhile)."""
    out = {k: b[k] - a[k] for k in b if not k.startswith("_") and k != "machine"}
    ca, cb = a["_cgroups"], b["_cgroups"]
    out["agents (new containers)"] = sum(v for k, v in cb.items() if k not in ca)
    out["other containers"] = sum(v - ca[k] for k, v in cb.items() if k in ca)
    out["machine"] = b["machine"] - a["machine"]
    return out


def _actions(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        e = json.loads(line)
        out.setdefault(e["action"], e["ts_ns"])
    return out


def phase_report(case: Path) -> list[str]:
    """Per phase: median and max over the pods, and how many pods were in each at most."""
    case_log = _actions(case / "case.custody.jsonl")
    t0 = case_log.get("case.started", 0)
    spans: dict[str, list[tuple[int, int]]] = {name: [] for name, _a, _b in PHASES}
    for side in sorted(case.glob("*.exv*.custody.jsonl")):
        acts = {**case_log, **_actions(side)}
        for name, a, b in PHASES:
            if a in acts and b in acts:
                spans[name].append((acts[a], acts[b]))
    ends = [e for _s, e in spans["seal"]]
    marks = [f"{a} {(case_log[a] - t0) / 1e9:.1f} s" for a in ("case.resolved", "case.sealed")
             if a in case_log]  # fmt: skip
    if ends:
        marks.insert(-1, f"last bundle sealed {(max(ends) - t0) / 1e9:.1f} s")
    lines = [f"case (s from case.started): {', '.join(marks)}",
             f"phases per pod (s from case.started; {len(spans['stream'])} pods):"]  # fmt: skip
    for name, _a, _b in PHASES:
        got = spans[name]
        if not got:
            continue
        secs = sorted((e - s) / 1e9 for s, e in got)
        edges = sorted([(s, 1) for s, _e in got] + [(e, -1) for _s, e in got])
        peak = cur = 0
        for _t, d in edges:
            cur += d
            peak = max(peak, cur)
        first = (min(s for s, _e in got) - t0) / 1e9
        last = (max(e for _s, e in got) - t0) / 1e9
        med = statistics.median(secs)
        lines.append(f"  {name:<8} median {med:6.2f} s, max {secs[-1]:6.2f} s, at most "
                     f"{peak:2d} pods at once, from {first:6.1f} to {last:6.1f} s")  # fmt: skip
    return lines


def wait_running(core: Any, ns: str, selector: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(ns, label_selector=selector).items
        up = [p for p in pods if p.status.phase == "Running" and p.status.container_statuses
              and all(s.state.running for s in p.status.container_statuses)]  # fmt: skip
        if len(up) >= n:
            return
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {n} running pods ({selector}) in {ns}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=8, help="passed to the fleet capture")
    ap.add_argument("--per-node", type=int, default=4, help="passed to the fleet capture")
    ap.add_argument(
        "--namespace-prefix",
        default="fleet-bench",
        help="the benchmark's namespace is PREFIX-<hex> (deleted afterwards)",
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the whole run (fresh pods each time, the last run's namespace gone "
        "first) and print the median ratio",
    )
    args = ap.parse_args()
    kc = kubeconfig()
    api = config.new_client_from_config(config_file=kc)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    print(lab.ensure_images(lab.WORKDIR))
    results = []
    for i in range(args.runs):
        if args.runs > 1:
            print(f"== run {i + 1} of {args.runs}", flush=True)
        results.append(run_once(args, kc, core, apps))
    if args.runs > 1:
        ratios = sorted(many / one for one, many, _ in results)
        ones = sorted(one for one, _, _ in results)
        manys = sorted(many for _, many, _ in results)
        med = statistics.median(ratios)
        met = sum(r <= RATIO_TARGET for r in ratios)
        print(f"over {args.runs} runs: 1 pod median {statistics.median(ones):.1f} s "
              f"({ones[0]:.1f}-{ones[-1]:.1f}), {args.replicas} pods median "
              f"{statistics.median(manys):.1f} s ({manys[0]:.1f}-{manys[-1]:.1f}); ratio median "
              f"{med:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}), target <= {RATIO_TARGET}x: "
              f"{'met' if med <= RATIO_TARGET else 'MISSED'} (met in {met} of {args.runs}); "
              f"client peak RSS max {max(r for _, _, r in results):.0f} MiB")  # fmt: skip
    return 0


def gone(core: Any, ns: str, timeout: float = 300) -> None:
    """Wait (bounded) until the namespace is deleted, so its terminating pods do not
    load the next run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(ns)
        except client.exceptions.ApiException as err:
            if err.status == 404:
                return
            raise
        time.sleep(1)
    print(f"namespace {ns} still terminating after {timeout:.0f} s", flush=True)


def run_once(args: argparse.Namespace, kc: str, core: Any, apps: Any) -> tuple[float, float, float]:
    """One run: a fresh namespace of pods, the 1-pod and the fleet capture timed;
    returns (1 pod s, fleet s, fleet client peak RSS MiB)."""
    ns = f"{args.namespace_prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns, "labels": {
        "pod-security.kubernetes.io/enforce": "baseline"}}})  # fmt: skip
    try:
        tpl = {"metadata": {"labels": {"app": "bench"}}, "spec": lab.lab_pod("x")["spec"]}
        tpl["spec"]["containers"][0]["env"] = [{"name": "LAB_MODE", "value": "clean"}]
        apps.create_namespaced_deployment(ns, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": args.replicas, "selector": {"matchLabels": {"app": "bench"}},
                     "template": tpl}})  # fmt: skip
        solo = lab.lab_pod("solo")
        solo["metadata"]["labels"] = {"app": "solo"}
        solo["spec"]["containers"][0]["env"] = [{"name": "LAB_MODE", "value": "clean"}]
        for _ in range(60):  # the namespace's default ServiceAccount comes a moment later
            try:
                core.create_namespaced_pod(ns, solo)
                break
            except client.exceptions.ApiException as err:
                if err.status != 403:
                    raise
                time.sleep(1)
        wait_running(core, ns, "app=bench", args.replicas)
        wait_running(core, ns, "app=solo", 1)
        time.sleep(3)  # every lab target staged its files
        common = ["--image", lab.COLLECTOR_IMAGE, "--image-pull-policy", "Never", "-q",
                  "--kubeconfig", kc]  # fmt: skip
        cli = [sys.executable, "-m", "tui.cli", "capture"]
        with tempfile.TemporaryDirectory(prefix="exuvia-fleet-bench-") as tmp:
            load0 = os.getloadavg()
            n0 = node_cpu()
            one, rss1, rc1, cpu1 = timed(
                [*cli, f"k8s://{ns}/solo", "-o", f"{tmp}/solo.exv", *common]
            )
            n1 = node_cpu()
            bounds = ["--max-pods", str(args.replicas), "--parallel", str(args.parallel),
                      "--per-node", str(args.per_node)]  # fmt: skip
            many, rss, rc, cpu = timed([*cli, f"k8s://{ns}", "-l", "app=bench", "-o", f"{tmp}/case",
                                   *bounds, *common])  # fmt: skip
            n2 = node_cpu()
            load1 = os.getloadavg()
            doc = json.loads((Path(tmp) / "case" / "case.json").read_text())
            phases = phase_report(Path(tmp) / "case")
            log = _actions(Path(tmp) / "case" / "case.custody.jsonl")
            sealed_at = (log["case.sealed"] - log["case.started"]) / 1e9
            solo_phases = _actions(Path(f"{tmp}/solo.exv.custody.jsonl"))
        print(f"load average (1/5/15 min) before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
              f"after {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}; {os.cpu_count()} cores, "
              "shared with the cluster: noisy")  # fmt: skip
        print(f"1 pod:   {one:7.1f} s  (exit {rc1}, client peak RSS {rss1 / 1024:.0f} MiB, "
              f"client CPU {cpu1:.1f} s)")  # fmt: skip
        print(f"{args.replicas} pods: {many:7.1f} s  (exit {rc}, case {doc['state']}, "
              f"{doc['summary']['complete']} complete, {doc['summary']['bytes'] / 1e6:.1f} MB, "
              f"client CPU {cpu:.1f} s; --parallel {args.parallel} "
              f"--per-node {args.per_node})")  # fmt: skip
        print(f"before case.started and after case.sealed (start-up, connecting, resolving, "
              f"exit): {many - sealed_at:.1f} s")  # fmt: skip
        for line in phases:
            print(line)
        d1, d20 = cpu_delta(n0, n1), cpu_delta(n1, n2)
        print("CPU seconds on the machine during each run (1 pod | fleet | fleet per pod):")
        for name, c1, cpu_pods in (("client", cpu1, cpu), *((k, d1[k], d20[k]) for k in d20
                                                           if d1[k] or d20[k])):  # fmt: skip
            print(f"  {name:<24} {c1:6.2f} | {cpu_pods:6.2f} | {cpu_pods / args.replicas:5.2f}")
        solo = [f"{name} {(solo_phases[b] - solo_phases[a]) / 1e9:.2f} s"
                for name, a, b in PHASES[1:] if a in solo_phases and b in solo_phases]  # fmt: skip
        print(f"1 pod's phases: {', '.join(solo)}")
        ratio = many / one
        verdict = "met" if ratio <= RATIO_TARGET else "MISSED"
        print(f"ratio {args.replicas} pods / 1 pod: {ratio:.2f}x (target <= {RATIO_TARGET}x: "
              f"{verdict})")  # fmt: skip
        verdict = "met" if rss / 1024 <= RSS_TARGET_MIB else "MISSED"
        print(f"fleet client peak RSS: {rss / 1024:.0f} MiB (target <= {RSS_TARGET_MIB} MiB: "
              f"{verdict})")  # fmt: skip
    finally:
        core.delete_namespace(ns, grace_period_seconds=0)
        if args.runs > 1:
            gone(core, ns)
    return one, many, rss / 1024


if __name__ == "__main__":
    sys.exit(main())
