"""The `exuvia` command line: parse, call the library, print. Nothing more.

Every error the library raises is an ExuviaError and is printed as one line on
stderr (exit 2); `verify` exits 1 when a bundle fails, 3 when it is cut off. No
traceback reaches a user.

Only the command that runs is imported (``exuvia timeline`` does not pay for
what capture, triage or push need): every other command is a placeholder with
the same name and help line (:data:`COMMANDS`), so ``exuvia --help`` and the
errors list them all the same; :func:`build_parser` without ``only`` registers
them all (shell completion, tests).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from forensics import __version__
from forensics.errors import ExuviaError

Handler = Callable[[argparse.Namespace], int]

#: (command, its module under tui.commands, its help line), in the order of --help
#: (a unit test checks these lines against what each module registers)
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("capture", "capture_cmd", "capture a running container into an evidence bundle"),
    ("verify", "inspect_cmd",
     "check every member of a bundle (or every bundle of a case) against its manifest"),
    ("info", "inspect_cmd", "summarize a bundle's manifest (or a case)"),
    ("salvage", "salvage_cmd",
     "seal a copy of what a killed capture's (.partial) checkpoints vouch for"),
    ("findings", "findings_cmd",
     "what an examiner looks at first: ranked findings with their evidence"),
    ("report", "report_cmd", "one self-contained HTML report of a bundle, for a ticket or a court"),
    ("scan", "scan_cmd",
     "scan a bundle's (or a case's) captured files, executables and memory with YARA"),
    ("timeline", "timeline_cmd",
     "the bundle's super-timeline: list it or export it (Timesketch, plaso, TSK)"),
    ("sbom", "sbom_cmd", "software inventory of a captured target (CycloneDX, SPDX or a table)"),
    ("replay", "replay_cmd", "browse a bundle's timeline offline in a terminal UI"),
    ("triage", "triage_cmd", "live triage of a running container or pod (terminal UI)"),
    ("case", "case_cmd", "read a case directory (many bundles of one incident) as one"),
    ("push", "push_cmd", "upload a bundle or a case into an evidence store (S3 with object lock)"),
    ("demo", "demo_cmd",
     "stage an incident in a local shell-less container, capture and verify it"),
    ("agent", "k8s_cmd", "the in-pod collector agent (runs inside the collector image)"),
    ("keygen", "keygen_cmd", "make an Ed25519 key pair for `capture --sign` and `verify --key`"),
    ("completion", "completion_cmd", "print a shell completion script (bash, zsh or fish)"),
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def prog_name(argv0: str | None = None) -> str:
    """``kubectl exuvia`` when run as the kubectl plugin (``kubectl-exuvia``), else ``exuvia``."""
    name = os.path.basename(argv0 if argv0 is not None else sys.argv[0])
    return "kubectl exuvia" if name.startswith("kubectl-exuvia") else "exuvia"


def command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (the first positional: the top level has no option
    that takes a value), or None."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not arg.startswith("-") or arg == "-":
            return arg
    return None


def build_parser(prog: str = "exuvia", only: str | None = None) -> argparse.ArgumentParser:
    """The parser: with ``only``, the module of that command alone is imported and
    registered, every other command is a placeholder (name and help line)."""
    parser = _Parser(
        prog=prog,
        description="Forensics and debugging for distroless (shell-less) containers.",
    )
    parser.add_argument("--version", action="version", version=f"exuvia {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = None if only is None else {n: m for n, m, _h in COMMANDS}.get(only)
    done: set[str] = set()
    for name, module, help_line in COMMANDS:
        if only is not None and module != wanted:
            sub.add_parser(name, help=help_line)
        elif module not in done:  # a module may register more than one (verify, info)
            done.add(module)
            importlib.import_module(f"tui.commands.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog_name(), only=command_of(args_in) or "")
    args = parser.parse_args(args_in)
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
