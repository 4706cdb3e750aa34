"""Option groups shared between commands, and small value parsers."""

from __future__ import annotations

import argparse
import json
import re

from forensics.timeline.logtime import resolve_tz

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def size_arg(text: str) -> int:
    """'65536', '64M', '1.5G', '512KiB' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 65536, 64M, 1G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def tz_arg(text: str) -> str:
    """A time-zone name (UTC, Europe/Paris, +02:00 ...), checked; kept as given."""
    try:
        resolve_tz(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def add_capture_options(p: argparse.ArgumentParser) -> None:
    """The options every acquisition command shares (capture, demo, agent)."""
    g = p.add_argument_group("acquisition")
    g.add_argument("--case", metavar="ID", help="case identifier recorded in the manifest")
    g.add_argument("--examiner", metavar="NAME", help="who acquires (default: login user)")
    g.add_argument(
        "--files",
        choices=("none", "changed", "small", "all"),
        default="changed",
        help="which file contents to copy (every regular file is hashed whatever this "
        "says): changed = written since start, plus files <= 1 MiB under /etc /tmp /var "
        "/root /home (default); small = every file <= 1 MiB; all; none",
    )
    g.add_argument(
        "--max-file-size",
        type=size_arg,
        default=64 << 20,
        metavar="N",
        help="never copy a file larger than this (default 64M; it is still hashed)",
    )
    g.add_argument("--compress", choices=("zstd", "none"), default="zstd")
    g.add_argument(
        "--no-redact",
        dest="redact",
        action="store_false",
        help="keep values of environment variables that look like secrets",
    )


OUTPUT_FORMATS = ("text", "json")


def add_output_format(p: argparse.ArgumentParser) -> None:
    """``--output text|json`` (``args.output_format``): what a command prints on stdout,
    for people or for scripts.

    Every command that has it prints exactly one JSON document with ``--output json``
    (its schema is in the command's docs) and its exit status is unchanged. (Where a
    command writes a file, that file is ``-o FILE``, whose long form is then ``--out``.)"""
    p.add_argument(
        "--output",
        dest="output_format",
        choices=OUTPUT_FORMATS,
        default="text",
        help="text for people (default); json: one JSON document on stdout, for scripts "
        "(schema in the docs)",
    )


def print_json(doc: object) -> None:
    """One JSON document on stdout, pure ASCII: every string from a bundle reaches the
    terminal escaped (control, bidirectional and other non-ASCII characters as JSON
    \\u escapes of four hex digits)."""
    print(json.dumps(doc, ensure_ascii=True, indent=2, default=str))
