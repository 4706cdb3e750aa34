"""Options shared by the commands that talk to an evidence store (s3://)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectors.store.client import Store
    from collectors.store.lock import LockSpec


def _duration(text: str) -> str:
    from collectors.store.lock import parse_duration  # noqa: PLC0415

    try:
        parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def add_store_options(
    p: argparse.ArgumentParser, lock: bool = True, fallback: bool = False
) -> None:
    g = p.add_argument_group("evidence store (s3:// locations; see docs/evidence-store.md)")
    g.add_argument(
        "--endpoint-url", metavar="URL",
        help="the S3 endpoint, for stores other than AWS (credentials still come from the "
        "AWS chain: environment, shared config/credentials files, --aws-profile)",
    )  # fmt: skip
    g.add_argument(
        "--aws-profile", metavar="NAME",
        help="the AWS profile (shared config/credentials files) to take credentials from; "
        "AWS_PROFILE works too",
    )  # fmt: skip
    if fallback:
        g.add_argument(
            "--fallback-dir", type=Path, metavar="DIR",
            help="when the store stops answering mid-capture (after the retries), the "
            "parts it did not take go here, in NAME.exv.partial.parts/, and are uploaded "
            "when the bundle is sealed if the store answers again; a fleet (-o "
            "s3://BUCKET/PREFIX/) keeps its case journal here, in "
            "exuvia-journal-BUCKET_PREFIX/ (default $EXUVIA_FALLBACK_DIR, else the current "
            "directory)",
        )  # fmt: skip
    if not lock:
        return
    g.add_argument(
        "--retain", type=_duration, metavar="DURATION",
        help="object-lock retention for every uploaded object, e.g. 90d, 1y, 12h",
    )  # fmt: skip
    g.add_argument(
        "--lock-mode", choices=("governance", "compliance"), default="governance",
        help="retention mode with --retain (default governance: a user with "
        "s3:BypassGovernanceRetention can still remove it; compliance: nobody can)",
    )  # fmt: skip
    g.add_argument("--legal-hold", action="store_true", help="put a legal hold on each object")
    g.add_argument(
        "--no-lock", action="store_true",
        help="allow a bucket without object lock (the evidence can then be deleted)",
    )  # fmt: skip


def store_from(args: argparse.Namespace) -> Store:
    from collectors.store.client import Store  # noqa: PLC0415 - boto3 only for s3://

    return Store(endpoint_url=args.endpoint_url, profile=args.aws_profile)


def lock_from(args: argparse.Namespace) -> LockSpec:
    from collectors.store.lock import LockSpec, parse_duration  # noqa: PLC0415

    retain = parse_duration(args.retain) if args.retain else None
    return LockSpec(
        use_lock=not args.no_lock,
        retain=retain,
        mode=args.lock_mode.upper(),
        legal_hold=args.legal_hold,
    )


def path_or_s3(text: str) -> Path | str:
    """A local path, or an s3:// URL kept as text (Path would fold its '//')."""
    return text if text.startswith("s3://") else Path(text)


def cached_local(args: argparse.Namespace, attr: str = "bundle") -> Path:
    """``args.<attr>`` as a local path: an s3:// bundle is copied into the exuvia
    cache (kept, keyed by its version) for timeline/replay, never beside evidence."""
    value = getattr(args, attr)
    if not isinstance(value, str):
        return Path(value)
    from collectors.store.fetch import cached_bundle  # noqa: PLC0415
    from collectors.store.uri import parse_s3  # noqa: PLC0415

    return cached_bundle(store_from(args), parse_s3(value))
