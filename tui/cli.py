"""The `exuvia` command line: parse, call the library, print. Nothing more.

Every error the library raises is an ExuviaError and is printed as one line on
stderr (exit 2); `verify` exits 1 when a bundle fails, 3 when it is cut off. No
traceback reaches a user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from forensics import __version__
from forensics.errors import ExuviaError
from tui.commands import (
    capture_cmd,
    completion_cmd,
    demo_cmd,
    findings_cmd,
    inspect_cmd,
    k8s_cmd,
    keygen_cmd,
    push_cmd,
    replay_cmd,
    report_cmd,
    salvage_cmd,
    sbom_cmd,
    scan_cmd,
    timeline_cmd,
    triage_cmd,
)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def prog_name(argv0: str | None = None) -> str:
    """``kubectl exuvia`` when run as the kubectl plugin (``kubectl-exuvia``), else ``exuvia``."""
    name = os.path.basename(argv0 if argv0 is not None else sys.argv[0])
    return "kubectl exuvia" if name.startswith("kubectl-exuvia") else "exuvia"


def build_parser(prog: str = "exuvia") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Forensics and debugging for distroless (shell-less) containers.",
    )
    parser.add_argument("--version", action="version", version=f"exuvia {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    commands = (capture_cmd, inspect_cmd, salvage_cmd, findings_cmd, report_cmd, scan_cmd,
                timeline_cmd, sbom_cmd, replay_cmd, triage_cmd)  # fmt: skip
    for module in (*commands, push_cmd, demo_cmd, k8s_cmd, keygen_cmd, completion_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(prog_name())
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ExuviaError as err:
        print(f"exuvia: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("exuvia: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
