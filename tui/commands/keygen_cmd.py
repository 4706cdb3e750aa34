"""`exuvia keygen FILE`: an Ed25519 key pair for signing bundles."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair for `capture --sign` and `verify --key`",
        description="Write a new Ed25519 private key to FILE (PKCS#8 PEM, mode 0600) and its "
        "public key to FILE.pub (PEM), and print the public key's fingerprint. Never "
        "overwrites. `openssl genpkey -algorithm ed25519 -out FILE` makes the same kind of key.",
    )
    p.add_argument("key", type=Path, metavar="FILE")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forensics.signing import generate  # noqa: PLC0415 - cryptography only here

    pub, fp = generate(args.key)
    print(f"private key: {args.key} (keep it off the machines you capture)")
    print(f"public key:  {pub}")
    print(f"fingerprint: {fp}")
    return 0
