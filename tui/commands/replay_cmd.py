"""`exuvia replay BUNDLE`: the Textual app over a bundle's timeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forensics.errors import ExuviaError
from tui.commands.options import tz_arg
from tui.commands.store_opts import add_store_options, cached_local, path_or_s3


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="browse a bundle's timeline offline in a terminal UI",
        description="Open a bundle in the replay UI: the super-timeline (built once and "
        "cached), a density histogram, filters and full-text search, the record behind "
        "each event, the process and file trees, sockets, manifest and custody log, the "
        "software inventory, bookmarks/tags/notes (kept beside the bundle, never in it) "
        "and playback. The bundle is verified as it opens. Press ? inside for the keys.",
    )
    p.add_argument("bundle", type=path_or_s3, metavar="BUNDLE|s3://…")
    add_store_options(p, lock=False)
    p.add_argument(
        "--tz",
        type=tz_arg,
        default="UTC",
        help="time zone of log times written without one (as for `exuvia timeline`)",
    )
    p.add_argument("--local", action="store_true", help="show times in local time (z toggles)")
    p.add_argument(
        "--from-start",
        action="store_true",
        help="open at the container's creation (not at the oldest file time of the image)",
    )
    p.add_argument(
        "--timeline-first",
        action="store_true",
        help="open on the timeline, not on the findings view (! opens it)",
    )
    p.set_defaults(handler=run)


def run_replay(
    bundle: Path,
    *,
    tz: str = "UTC",
    local_time: bool = False,
    from_container_start: bool = False,
    findings_first: bool = True,
) -> int:
    """Run the app on a terminal; also called by `exuvia demo` and `exuvia triage`."""
    if not bundle.is_file():
        raise ExuviaError(f"{bundle}: no such bundle file")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ExuviaError(
            "replay needs a terminal (stdin and stdout); use `exuvia timeline` in scripts"
        )
    from tui.replay.app import make_app  # noqa: PLC0415 - textual only when the UI runs

    app = make_app(
        bundle,
        tz=tz,
        local_time=local_time,
        from_container_start=from_container_start,
        findings_first=findings_first,
    )
    app.run()
    return app.return_code or 0


def run(args: argparse.Namespace) -> int:
    args.bundle = cached_local(args)  # s3://: a kept copy under the exuvia cache
    return run_replay(
        args.bundle,
        tz=args.tz,
        local_time=args.local,
        from_container_start=args.from_start,
        findings_first=not args.timeline_first,
    )
