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
from typing import Any

from collectors.agent import add_arguments
from collectors.agent import run as agent_run
from collectors.k8s.spec import DEFAULT_IMAGE, DEFAULT_PROFILE, PROFILES
from tui.commands import capture_cmd

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

    progress = capture_cmd._Progress(args.quiet)
    try:
        res = K8sCapture(
            args.target, capture_cmd.options_from(args, args.output), k8s_options(args), progress
        ).run()
    finally:
        progress.done()
    capture_cmd.print_result(res, args.output_format)
    return 0 if res.complete else 3


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
