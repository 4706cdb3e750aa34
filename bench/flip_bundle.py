"""Exhaustive single-bit flips: every bit of small real bundles must fail `verify`.

The unit test (tests/unit/test_bundle_integrity.py) flips two bits at 200
positions per bundle; this flips every bit of every byte of four bundles (zstd
and plain, signed and unsigned) and prints how many flips verify missed.

    .venv/bin/python bench/flip_bundle.py [--members 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.bundle import verify_bundle
from forensics.signing import Signer, generate
from tests.support.bundle_craft import write_real_bundle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=4)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="exuvia-flip-"))
    generate(d / "key")
    signer = Signer.from_file(d / "key")
    missed_total = 0
    for compress in ("zstd", "none"):
        for sign in (None, signer):
            p = d / f"{compress}-{bool(sign)}.exv"
            write_real_bundle(p, compress=compress, signer=sign, members=args.members)
            good = p.read_bytes()
            assert verify_bundle(p).ok
            q = d / "flip.exv"
            missed: list[tuple[int, int]] = []
            t0 = time.monotonic()
            for pos in range(len(good)):
                for bit in range(8):
                    bad = bytearray(good)
                    bad[pos] ^= 1 << bit
                    q.write_bytes(bytes(bad))
                    if verify_bundle(q).ok:
                        missed.append((pos, bit))
            spent = time.monotonic() - t0
            print(
                f"{compress:4} signed={bool(sign)!s:5} {len(good):6} bytes, "
                f"{len(good) * 8} flips in {spent:.0f}s: missed {len(missed)} {missed[:10]}"
            )
            missed_total += len(missed)
    return 1 if missed_total else 0


if __name__ == "__main__":
    raise SystemExit(main())
