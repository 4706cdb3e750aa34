"""`exuvia demo`: stage an incident in a local shell-less container and capture it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="stage an incident in a local shell-less container, capture and verify it",
        description="Build a tiny shell-less image (one static binary, no shell), run it "
        "with runc, let it stage an incident (a dropped binary run from /tmp then deleted, "
        "a changed config file, log lines), capture it, verify the bundle, print what it "
        "found, and open it in the replay view (on a terminal). Needs root and runc.",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("demo-out"),
        help="where the bundle goes (default ./demo-out)",
    )
    p.add_argument(
        "--no-replay",
        action="store_true",
        help="do not open the replay view at the end (for scripts; it is also skipped "
        "when stdin or stdout is not a terminal)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tui.demo.run import run_demo  # noqa: PLC0415 - the lab loads only for the demo

    return run_demo(args.output_dir, replay=not args.no_replay)
