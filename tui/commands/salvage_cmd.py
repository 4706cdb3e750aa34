"""`exuvia salvage X.partial [-o OUT] [--sign KEY]`: seal what a killed capture's
checkpoints vouch for as a new ``.incomplete`` bundle (forensics/bundle/salvage.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from collectors.context import examiner_host
from forensics.bundle.salvage import salvage
from forensics.custody import default_operator
from tui.commands.options import add_output_format, print_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "salvage",
        help="seal a copy of what a killed capture's (.partial) checkpoints vouch for",
        description="Read a .partial (a capture cut off before its manifest: kill -9, a "
        "broken stream, a full disk), check it, and write a new sealed bundle holding "
        "exactly the members its last checkpoint vouches for, whose manifest says "
        "complete: false and salvaged_from (the original's file name, SHA-256 and "
        "checkpoint). The original is never modified; the copy appears under its name "
        "only when whole, and verifies like any bundle (exit 0). Exit 2 when the file is "
        "not a cut-off capture (sealed, damaged, or cut before its first checkpoint).",
    )
    p.add_argument("bundle", type=Path, metavar="FILE.partial")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        metavar="OUT",
        help="the sealed copy (default: FILE.incomplete beside the original); never overwritten",
    )
    p.add_argument(
        "--sign",
        type=Path,
        metavar="KEYFILE",
        help="sign the copy's manifest with this Ed25519 private key, as capture --sign",
    )
    p.add_argument("--examiner", metavar="NAME", help="who salvages (default: login user)")
    add_output_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    signer = None
    if args.sign is not None:
        from forensics.signing import Signer  # noqa: PLC0415 - cryptography only when signing

        signer = Signer.from_file(args.sign)
    res = salvage(
        args.bundle,
        args.out,
        examiner=args.examiner or default_operator(),
        host=examiner_host(),
        argv=list(sys.argv),
        signer=signer,
    )
    if args.output_format == "json":
        print_json(
            {
                "format": "exuvia-salvage-result",
                "version": 1,
                "bundle": str(res.path),
                "source": str(res.source),
                "source_sha256": res.source_sha256,
                "checkpoint": res.checkpoint,
                "members": res.members,
                "records": res.records,
                "dropped": res.dropped,
                "manifest_sha256": res.manifest_sha256,
                "file_sha256": res.file_sha256,
                "bytes": res.file_bytes,
                "custody_log": str(res.custody_path),
                "signed_by": res.signed_by,
                "exit_status": 0,
            }
        )
        return 0
    print(res.banner)
    print(f"salvaged:        {res.path} (sealed, incomplete; {res.source} left as it was)")
    print(f"from:            sha256 {res.source_sha256}, checkpoint {res.checkpoint}")
    print(
        f"holds:           {res.members} members, {res.records} records; "
        f"{res.dropped} members after the last checkpoint left out (unverified)"
    )
    print(f"manifest sha256: {res.manifest_sha256}")
    print(f"file sha256:     {res.file_sha256}")
    if res.signed_by:
        print(f"signed by:       {res.signed_by}")
    print(f"custody log:     {res.custody_path}")
    return 0
