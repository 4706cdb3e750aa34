"""`exuvia triage [TARGET]`: the live triage app (tui/triage/).

The target is resolved here, before the app starts, so a bad one is a one-line
error; its root is opened here too (the read-only view is made by a forked
helper, best done before the app's threads exist). When the app ends asking to
open a finished capture in replay, the replay command runs in-process if it is
installed; otherwise its path and command line are printed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from collectors.targets import SCHEMES, parse_uri, resolve
from forensics.custody import default_operator
from forensics.errors import TargetError
from tui.commands import replay_cmd


def register(sub: Any) -> None:
    p = sub.add_parser(
        "triage",
        help="live triage of a running container or pod (terminal UI)",
        description="Live, read-only triage of a running shell-less container: process "
        "tree, files, sockets, logs and a timeline, and a full capture on one key. "
        "Without TARGET, pick one from the local runtimes or a Kubernetes cluster. "
        "TARGET is one of: " + ", ".join(SCHEMES) + ".",
    )
    p.add_argument(
        "target", nargs="?", metavar="TARGET", help="e.g. runc://ID, podman://web, k8s://NS/POD/C"
    )
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="where captures started from the app are written (default: here)",
    )
    p.add_argument("--case", metavar="ID", help="case identifier recorded in captures")
    p.add_argument("--examiner", metavar="NAME", help="who acquires (default: login user)")
    p.add_argument(
        "--refresh", type=float, default=2.0, metavar="S", help="process refresh (default 2 s)"
    )
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig for pods")
    p.add_argument(
        "--image",
        metavar="REF",
        help="collector image of the pod agent (default: $EXUVIA_COLLECTOR_IMAGE or the "
        "release image, as `exuvia capture`)",
    )
    p.add_argument("--context", metavar="NAME", help="kubeconfig context")
    p.add_argument(
        "--no-findings",
        action="store_true",
        help="open a target's dashboard on its processes, not on its findings (! opens them)",
    )
    p.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help="k8s://NS -l SELECTOR: list the pods it selects and capture them all "
        "into one case on `c` (also k8s://NS/deployment/NAME; docs/kubernetes.md)",
    )
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="with -l: the pods of every namespace (target k8s://)")  # fmt: skip
    p.set_defaults(handler=run)


def open_in_replay(path: Path) -> int:
    """Hand the finished capture to the replay view (in this process and terminal)."""
    return replay_cmd.run_replay(path)


def _open_pod(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """(PodRow, container, KubeClient) for a k8s:// target; errors before any screen."""
    from collectors.k8s.client import KubeClient  # noqa: PLC0415
    from collectors.k8s.pods import open_pod  # noqa: PLC0415

    kc = KubeClient(args.kubeconfig, args.context)
    try:
        row, container = open_pod(kc, args.target)
    except BaseException:
        kc.close()
        raise
    return row, container, kc


def _open_fleet(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(FleetRequest, Resolution, KubeClient) for a fleet target; errors before any screen."""
    from collectors.k8s.client import KubeClient  # noqa: PLC0415
    from collectors.k8s.resolve import resolve as resolve_fleet  # noqa: PLC0415
    from collectors.k8s.selection import parse_fleet  # noqa: PLC0415

    req = parse_fleet(args.target, selector=args.selector, all_namespaces=args.all_namespaces)
    kc = KubeClient(args.kubeconfig, args.context)
    try:
        res = resolve_fleet(kc, req, kc.namespace)
    except BaseException:
        kc.close()
        raise
    return req, res, kc


def run(args: argparse.Namespace) -> int:
    # textual is imported only when the app runs
    from tui.triage.app import make_app  # noqa: PLC0415
    from tui.triage.session import SessionOptions  # noqa: PLC0415

    if not args.output_dir.is_dir():
        raise TargetError(f"--output-dir {args.output_dir} is not a directory")
    opts = SessionOptions(
        output_dir=args.output_dir,
        examiner=args.examiner or default_operator(),
        case=args.case,
        refresh_s=max(0.2, args.refresh),
        kubeconfig=args.kubeconfig,
        context=args.context,
        k8s_image=args.image,
        findings_first=not args.no_findings,
    )
    target = None
    pod = None
    fleet = None
    from collectors.k8s.selection import is_fleet  # noqa: PLC0415

    if (
        args.target
        and args.target.strip().lower().startswith("k8s://")
        and is_fleet(args.target, selector=args.selector, all_namespaces=args.all_namespaces)
    ):
        fleet = _open_fleet(args)
    elif args.selector or args.all_namespaces:
        raise TargetError("-l/--selector and -A select Kubernetes pods: use a k8s:// target")
    elif args.target:
        if parse_uri(args.target)[0] == "k8s":
            pod = _open_pod(args)
        else:
            target = resolve(args.target)
    app = make_app(target, options=opts, pod=pod, fleet=fleet)
    try:
        result = app.run()
    finally:
        if pod is not None:
            pod[2].close()
        if fleet is not None:
            fleet[2].close()
    if os.environ.get("EXUVIA_TRIAGE_REPORT"):  # the speed benchmark reads this
        print(f"first-tree-s {app.first_tree_s}")
    if isinstance(result, tuple) and result[0] == "replay":
        return open_in_replay(Path(result[1]))
    return 0
