"""`exuvia push BUNDLE|CASE_DIR s3://BUCKET/PREFIX/…`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tui.commands.options import add_output_format, print_json
from tui.commands.store_opts import add_store_options, lock_from, store_from


def register(sub: Any) -> None:
    p = sub.add_parser(
        "push",
        help="upload a bundle or a case into an evidence store (S3 with object lock)",
        description="Verify each bundle, upload it with a multipart upload that never "
        "replaces an existing key, with its manifest and file SHA-256 as object metadata "
        "and the requested object lock, then read it back and check its SHA-256. A case "
        "directory goes up bundle by bundle, case.json last. DEST: s3://BUCKET/PREFIX/NAME.exv "
        "for a bundle (or s3://BUCKET/PREFIX/ to keep its name); s3://BUCKET/PREFIX/ for a case. "
        "The journal of a fleet captured into the store (exuvia-journal-…, kept when the "
        "client died or the store was gone) finishes that case: what the store lacks goes up, "
        "case.json last (docs/evidence-store.md).",
    )
    p.add_argument("source", type=Path, metavar="BUNDLE|CASE_DIR|JOURNAL")
    p.add_argument("dest", metavar="DEST")
    add_store_options(p)
    add_output_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collectors.store.capture import stderr_retry  # noqa: PLC0415 - boto3 only here
    from collectors.store.journal import journal_url, push_journal  # noqa: PLC0415
    from collectors.store.push import push_bundle, push_case  # noqa: PLC0415
    from collectors.store.uri import parse_s3  # noqa: PLC0415
    from forensics.case import is_case  # noqa: PLC0415
    from forensics.errors import OutputError  # noqa: PLC0415

    url = parse_s3(args.dest)
    lock = lock_from(args)
    src: Path = args.source
    if not src.exists():
        raise OutputError(f"{src}: no such file or directory")
    store = store_from(args)
    if is_case(src) and journal_url(src) is not None:  # a fleet's journal: finish the case
        base = url if url.is_prefix else parse_s3(args.dest.rstrip("/") + "/")
        items = push_journal(store, src, base, lock)
    elif is_case(src):
        items = push_case(store, src, url, lock, on_retry=stderr_retry).items
    elif src.is_file():
        if url.is_prefix:
            url = url.child(src.name)
        items = [push_bundle(store, src, url, lock, on_retry=stderr_retry)]
    else:
        raise OutputError(f"{src} is neither a bundle file nor a case directory")
    if args.output_format == "json":
        print_json({
            "format": "exuvia-push-result", "version": 1,
            "objects": [{"url": i.url, "bytes": i.bytes, "file_sha256": i.file_sha256,
                         "manifest_sha256": i.manifest_sha256, "version_id": i.version_id,
                         "retention": i.retention} for i in items],
            "exit_status": 0,
        })  # fmt: skip
        return 0
    for i in items:
        r = i.retention
        lock_text = (
            f"{r['mode']} until {r['retain_until']}" if r["retain_until"] else "no retention"
        )
        hold = ", legal hold" if r["legal_hold"] else ""
        print(
            f"pushed: {i.url} ({i.bytes} bytes, version {i.version_id or '-'}, {lock_text}{hold})"
        )
        print(f"  sha256 {i.file_sha256} (read back and matched)")
    return 0
