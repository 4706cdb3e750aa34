"""Kubernetes: the k8s:// options of `exuvia capture`, and `exuvia agent`.

`exuvia capture k8s://NS/POD[/CONTAINER] -o FILE [--context …] [--kubeconfig …]
[--image …] [--profile …] [--node-level]` goes through :func:`run_capture`;
tui/commands/capture_cmd.py adds :func:`add_k8s_options` to its parser and
hands k8s:// targets here. `exuvia agent …` is the in-pod agent
(collectors.agent), the same as `python -m collectors.agent …`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from collectors.agent import add_arguments
from collectors.agent import run as agent_run
from collectors.k8s.spec import DEFAULT_IMAGE, DEFAULT_PROFILE, PROFILES
from forensics.errors import ExuviaError
from tui.commands import capture_cmd, k8s_scan
from tui.commands.options import print_json

IMAGE_ENV = "EXUVIA_COLLECTOR_IMAGE"


def add_k8s_options(p: argparse.ArgumentParser) -> None:
    """Options for k8s:// targets (ignored for the other schemes)."""
    g = p.add_argument_group("kubernetes (k8s:// targets; see docs/kubernetes.md)")
    g.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig (default $KUBECONFIG, "
        "~/.kube/config, or the in-cluster service account inside a pod)",
    )
    g.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    g.add_argument(
        "--image",
        default=os.environ.get(IMAGE_ENV, DEFAULT_IMAGE),
        metavar="REF",
        help=f"collector image the agent runs from (default ${IMAGE_ENV} or {DEFAULT_IMAGE})",
    )
    g.add_argument(
        "--profile",
        choices=PROFILES,
        default=DEFAULT_PROFILE,
        help="the agent's security profile: auto (default) matches the target's user, group "
        "and capabilities and passes whatever PodSecurity level admitted the target; "
        "general adds SYS_PTRACE; baseline adds nothing; restricted drops everything; "
        "sysadmin is privileged",
    )
    g.add_argument(
        "--run-as",
        metavar="UID[:GID]",
        help="run the agent as this user (when the pod spec does not say which "
        "user the target's image runs as)",
    )
    g.add_argument(
        "--node-level",
        action="store_true",
        help="no ephemeral container: a short-lived privileged pod with hostPID on "
        "the target's node collects instead, and is deleted afterwards",
    )
    g.add_argument(
        "--node-namespace",
        metavar="NS",
        help="namespace for the --node-level pod (default: the target's); it must "
        "admit privileged pods",
    )
    g.add_argument(
        "--image-pull-policy",
        choices=("IfNotPresent", "Always", "Never"),
        default="IfNotPresent",
        help="for the agent's image (default IfNotPresent)",
    )
    g.add_argument(
        "--agent-linger",
        type=float,
        default=30.0,
        metavar="S",
        help="the agent exits S seconds after its last capture (default 30); "
        "a capture within that time reuses it",
    )
    g.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="how long to wait for the agent to start (default 120)",
    )


def k8s_options(args: argparse.Namespace) -> Any:
    # the kubernetes client is imported only when a k8s:// target is captured
    from collectors.k8s.capture import K8sOptions  # noqa: PLC0415

    return K8sOptions(
        kubeconfig=args.kubeconfig,
        context=args.context,
        image=args.image,
        profile=args.profile,
        run_as=args.run_as,
        node_level=args.node_level,
        node_namespace=args.node_namespace,
        pull_policy=args.image_pull_policy,
        start_timeout=args.start_timeout,
        linger=args.agent_linger,
    )


def run_capture(args: argparse.Namespace) -> int:
    """`exuvia capture k8s://…`: the agent collects, the client writes the bundle."""
    from collectors.k8s.capture import K8sCapture  # noqa: PLC0415 - see k8s_options

    scanner = k8s_scan.sealed_scanner(args)  # bad rules fail before anything runs
    progress = capture_cmd._Progress(args.quiet)
    scan: dict[str, Any] = {}
    try:
        res = K8sCapture(
            args.target, capture_cmd.options_from(args, args.output), k8s_options(args), progress
        ).run()
        if scanner is not None:
            scan = k8s_scan.scan_sealed(scanner, res.path, progress)
    finally:
        progress.done()
    for line in res.warnings:  # --memory: a process not read is said, never silent
        sys.stderr.write(f"exuvia: warning: {line}\n")
    status = k8s_scan.exit_status(res.complete, scan if scanner is not None else None)
    if args.output_format == "json" and scanner is not None:
        print_json({**capture_cmd.result_doc(res), "scan": scan, "exit_status": status})
        return status
    capture_cmd.print_result(res, args.output_format)
    if scanner is not None:
        for line in k8s_scan.scan_lines({f"{res.path.name}": scan}):
            print(line)
    return status


def run_capture_to_store(args: argparse.Namespace) -> int:
    """`exuvia capture k8s://NS/POD -o s3://BUCKET/PREFIX/NAME.exv`: the pod's bundle
    assembled straight into the store (docs/evidence-store.md); --scan reads the
    sealed object back from the store as a stream."""
    from collectors.store.k8s_capture import capture_pod_to_store  # noqa: PLC0415 - boto3
    from collectors.store.uri import parse_s3  # noqa: PLC0415
    from tui.commands.store_opts import lock_from, store_from  # noqa: PLC0415

    if getattr(args, "fallback_dir", None):
        raise ExuviaError("--fallback-dir is for a local target; a pod's bundle goes into "
                          "the store from its agent's spool, kept if the store fails")  # fmt: skip
    url = parse_s3(args.output)
    lock = lock_from(args)
    store = store_from(args)
    scanner = k8s_scan.store_scanner(args, store, lock)  # bad rules fail before anything runs
    opts = capture_cmd.options_from(args, Path(url.name or "bundle.exv"))
    progress = capture_cmd._Progress(args.quiet)
    scan: dict[str, Any] = {}
    try:
        res = capture_pod_to_store(args.target, opts, k8s_options(args), store, url, lock,
                                   progress)  # fmt: skip
        if scanner is not None and res.interrupted:
            scan = {"error": f"not scanned: interrupted ({res.interrupted})"}
        elif scanner is not None:
            scan = k8s_scan.scan_sealed(scanner, parse_s3(res.url), progress,
                                        "scanning the bundle from the store")  # fmt: skip
    finally:
        progress.done()
    status = k8s_scan.exit_status(res.complete, scan if scanner is not None else None)
    capture_cmd.print_store_result(res, args.output_format, status,
                                   scan if scanner is not None else None)  # fmt: skip
    if scanner is not None and args.output_format != "json":
        for line in k8s_scan.scan_lines({url.name: scan}):
            print(line)
    return status


def add_fleet_options(p: argparse.ArgumentParser) -> None:
    """Fleet capture: many pods of one selector or workload into a case directory."""
    g = p.add_argument_group(
        "fleet capture (k8s://NS -l SELECTOR, k8s://NS/KIND/NAME; -o is then a case "
        "directory; see docs/kubernetes.md)"
    )
    g.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help="label selector, kubectl's syntax (app=web,tier!=db, env in (a,b))",
    )
    g.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="with -l: the matching pods of every namespace (target k8s://)",
    )
    g.add_argument(
        "--all-containers",
        action="store_true",
        help="every container of each pod (default: each pod's default container)",
    )
    g.add_argument(
        "-c",
        "--container",
        metavar="NAME",
        help="this container of each pod (a pod without it is recorded as failed)",
    )
    g.add_argument(
        "--max-pods",
        type=int,
        default=50,
        metavar="N",
        help="refuse when more than N pods match (default 50)",
    )
    g.add_argument(
        "--parallel",
        type=int,
        default=8,
        metavar="N",
        help="capture at most N pods at once (default 8)",
    )
    g.add_argument("--per-node", type=int, default=4, metavar="N",
                   help="and at most N agent streams of one node at once (default 4); "
                   "as many more pods of the node start their agents meanwhile")  # fmt: skip


def is_fleet(args: argparse.Namespace) -> bool:
    from collectors.k8s.selection import is_fleet as fleet  # noqa: PLC0415

    return fleet(args.target, selector=args.selector, all_namespaces=args.all_namespaces)


class FleetProgress:
    """One line per pod as it starts and ends, and a total line now and then, on
    stderr (also when it is not a terminal: a Job's log shows them); none with -q."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last_tick = 0.0

    def __call__(self, ev: Any) -> None:
        if self.quiet:
            return
        p = ev.item
        where = f"{p.namespace}/{p.pod}/{p.container}" if p is not None else ""
        if ev.kind == "resolved":
            self._line(ev, f"{ev.total} pod containers to capture")
        elif ev.kind == "started":
            self._line(ev, f"{where}: capturing (node {p.node})")
        elif ev.kind == "finished":
            size = f", {_size(ev.nbytes)}" if ev.nbytes else ""
            why = f": {ev.reason}" if ev.reason else ""
            scan = ""
            if ev.scan is not None:
                scan = (f"; not scanned: {ev.scan['error']}" if "error" in ev.scan
                        else f"; scan: {ev.scan.get('matches', 0)} matches")  # fmt: skip
            self._line(ev, f"{where}: {ev.status}{size}{why}{scan}")
            self._total(ev)
        elif ev.kind == "tick" and ev.elapsed - self.last_tick >= 5.0:
            self._total(ev)

    def _total(self, ev: Any) -> None:
        self.last_tick = ev.elapsed
        rate = ev.total_bytes / ev.elapsed / 1e6 if ev.elapsed > 0 else 0.0
        self._line(ev, f"total: {ev.done}/{ev.total} done, {_size(ev.total_bytes)} "
                       f"received, {rate:.2f} MB/s")  # fmt: skip

    @staticmethod
    def _line(ev: Any, text: str) -> None:
        sys.stderr.write(f"[{ev.elapsed:7.1f}s] {text}\n")
        sys.stderr.flush()


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def fleet_doc(res: Any) -> dict[str, Any]:
    """``capture … --output json`` for a fleet: ``exuvia-case-capture-result``."""
    keys = ("file", "namespace", "pod", "container", "node", "status", "reason",
            "manifest_sha256", "bytes")  # fmt: skip
    return {
        "format": "exuvia-case-capture-result",
        "version": 1,
        "case": res.location or str(res.directory),
        "case_id": res.case_id,
        "state": res.state,
        "case_sha256": res.case_sha256,
        "summary": res.summary,
        "seen_not_captured": res.seen_not_captured,
        "signed_by": res.signed_by,
        "bundles": [_bundle_doc(b, keys, res.scans) for b in res.bundles],
        **({"scan_across": k8s_scan.across(res.scans)} if res.scans else {}),
        "exit_status": res.exit_status,
    }


def store_sink(args: argparse.Namespace) -> Any:
    """``-o s3://BUCKET/PREFIX/``: the case goes into the store (docs/evidence-store.md)."""
    from collectors.store.fallback import fallback_dir  # noqa: PLC0415
    from collectors.store.fleet_sink import FleetStoreSink  # noqa: PLC0415 - boto3 only here
    from collectors.store.uri import parse_s3  # noqa: PLC0415
    from tui.commands.store_opts import lock_from, store_from  # noqa: PLC0415

    url = parse_s3(args.output)
    if url.key and not url.is_prefix:
        raise ExuviaError(f"a fleet capture writes a case: give a prefix ending in '/' "
                          f"(s3://{url.bucket}/{url.key}/)")  # fmt: skip
    lock = lock_from(args)
    # the case journal (and a pod's parts when the store stops answering) go there
    return FleetStoreSink(store_from(args), url, lock,
                          state_dir=fallback_dir(getattr(args, "fallback_dir", None)))  # fmt: skip


def _store_scan(args: argparse.Namespace, sink: Any) -> Any:
    """``--scan`` of a fleet into the store: the sealed ``PREFIX/<file>`` objects."""

    def record(rules: Any) -> None:  # for `exuvia push JOURNAL`: the bundles it finishes
        sink.scan = {"rules": str(Path(rules.source).resolve()), "sha256": rules.sha256,
                     "rules_count": rules.count}  # fmt: skip

    scan = k8s_scan.store_scanner(args, sink.store, sink.lock, on_rules=record)
    if scan is None:
        return None
    # a pod captured into the journal (the store was gone) is scanned there
    return lambda path: scan(path if path.is_file() else sink.base.child(path.name))


def _bundle_doc(b: dict[str, Any], keys: tuple[str, ...], scans: dict[str, Any]) -> dict[str, Any]:
    doc = {k: b.get(k) for k in keys}
    scan = scans.get(f"{b.get('namespace')}/{b.get('pod')}/{b.get('container')}")
    if scan is not None:
        doc["scan"] = scan
    return doc


def run_fleet_capture(args: argparse.Namespace) -> int:
    """`exuvia capture k8s://NS -l SEL | k8s://NS/KIND/NAME -o DIR/`: a case."""
    from collectors.k8s.fleet import fleet_capture  # noqa: PLC0415 - see k8s_options
    from collectors.k8s.selection import parse_fleet  # noqa: PLC0415

    req = parse_fleet(args.target, selector=args.selector, all_namespaces=args.all_namespaces,
                      all_containers=args.all_containers, container=args.container)  # fmt: skip
    for name in ("max_pods", "parallel", "per_node"):
        if getattr(args, name) < 1:
            raise ExuviaError(f"--{name.replace('_', '-')} must be at least 1")
    if args.node_level:
        raise ExuviaError("--node-level is for one pod; a fleet capture uses ephemeral agents")
    sink = store_sink(args) if isinstance(args.output, str) else None
    try:
        # bad rules fail before anything is captured; into a store, each bundle is
        # scanned from its sealed object read back as a stream (no local copy)
        scanner = k8s_scan.sealed_scanner(args) if sink is None else _store_scan(args, sink)
        opts = capture_cmd.options_from(args, sink.local if sink else args.output)
        res = fleet_capture(req, opts, k8s_options(args), parallel=args.parallel,
                            per_node=args.per_node, max_pods=args.max_pods,
                            events=FleetProgress(args.quiet), after_seal=scanner,
                            sink=sink)  # fmt: skip
    except BaseException:
        if sink is not None:
            sink.cleanup()  # refused before anything was captured: no empty journal left
        raise
    if args.output_format == "json":
        print_json(fleet_doc(res))
        return res.exit_status
    s = res.summary
    print(f"case:            {res.location} ({res.case_id})")
    print(f"state:           {res.state}")
    print(f"bundles:         {s.get('complete', 0)} complete, {s.get('incomplete', 0)} "
          f"incomplete, {s.get('failed', 0)} failed, of {s.get('bundles', 0)} "
          f"({s.get('pods', 0)} pods, {s.get('bytes', 0)} bytes)")  # fmt: skip
    for b in res.bundles:
        if b["status"] != "complete":
            print(f"  {b['namespace']}/{b['pod']}/{b['container']}: {b['status']}: {b['reason']}")
    if res.seen_not_captured:
        print(f"seen later:      {res.seen_not_captured} pods matched after resolution "
              "(not captured; in case.json)")  # fmt: skip
    if res.scans:
        for line in k8s_scan.scan_lines(res.scans):
            print(line)
    print(f"case.json sha256: {res.case_sha256}")
    if res.signed_by:
        print(f"signed by:       {res.signed_by}")
    print(f"check with:      exuvia verify {res.location}")
    return res.exit_status


def register(sub: Any) -> None:
    p = sub.add_parser(
        "agent",
        help="the in-pod collector agent (runs inside the collector image)",
        description="The agent exuvia runs inside a pod (ephemeral container or node-level "
        "pod): `agent wait` idles until captures are exec'd into it and exits when idle; "
        "`agent capture` finds the target through the shared PID namespace and writes the "
        "bundle to stdout, as binary. The same as `python -m collectors.agent`.",
    )
    add_arguments(p)
    p.set_defaults(handler=run_agent)


def run_agent(args: argparse.Namespace) -> int:
    args.argv_seen = sys.argv[2:]
    return agent_run(args)
