"""`exuvia report BUNDLE -o report.html`: the self-contained HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forensics.report import write_report
from forensics.textsafe import printable


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML report of a bundle, for a ticket or a court",
        description="Write one HTML file (inline CSS and SVG, no script, nothing fetched) "
        "with the case and custody facts, the verification result, the findings with "
        "their evidence, the process tree, the timeline's event density, the files "
        "changed since start, the software inventory's summary and the blind spots. "
        "Every string from the bundle is escaped. See docs/report.md.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE|CASE",
                   help="a bundle, or a case directory (the case, the findings that hold in "
                   "several pods, then every bundle's report)")  # fmt: skip
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                   help="the HTML file to write (replaced if it exists)")  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()

    def progress(msg: str) -> None:
        if tty:
            sys.stderr.write(f"\r\x1b[2K{msg} …")
            sys.stderr.flush()

    try:
        out = write_report(args.bundle, args.output, progress)
    finally:
        if tty:
            sys.stderr.write("\r\x1b[2K")
    print(f"report: {printable(str(out))}")
    return 0
