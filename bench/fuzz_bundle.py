"""Fuzz the bundle readers (verify, info, the timeline) with mutated bundles, using hypothesis.

Seeds: real bundles from the real writer — zstd and plain, signed and not, with
a custody log, processes, a filesystem listing, a runtime log and copied files.
Each example applies one to three mutations: flip bits, overwrite a span with
hostile values, insert or delete bytes, truncate, duplicate a span, or append.
Then it runs what the commands run:

* ``verify_bundle`` must return a report, and it must NOT be ok: every
  mutation alters the file, and verify must notice every alteration;
* ``exuvia info`` (``run_info``, output discarded) may raise only a one-line
  ExuviaError;
* ``open_timeline`` (built in a private cache directory) may raise only
  BundleError / OutputError.

Anything else is a crasher: hypothesis shrinks it, the script prints it and
writes the bundle to bench/fuzz-crashers/; each one becomes a regression test
in tests/unit/test_hostile_bundles.py ("found by the fuzzer").

    .venv/bin/python bench/fuzz_bundle.py [--examples 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "exuvia-hypothesis")
)

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.bundle import verify_bundle
from forensics.custody import CustodyLog
from forensics.errors import BundleError, ExuviaError, OutputError
from forensics.signing import Signer, generate
from forensics.timeline import open_timeline
from tests.support.bundle_craft import write_real_bundle
from tui.commands.inspect_cmd import run_info

OUT = Path(__file__).resolve().parent / "fuzz-crashers"
WORK = Path(tempfile.mkdtemp(prefix="exuvia-fuzz-bundle-"))
T0 = 1_795_449_300_000_000_000
COUNTS: dict[str, int] = {"examples": 0, "info_refused": 0, "timeline_refused": 0}
REASONS: dict[str, int] = {}


def _contents() -> dict[str, bytes]:
    procs = b"".join(
        json.dumps(
            {"kind": "process", "pid": p, "ppid": 1, "start_ns": T0 + p, "cmdline": ["x"]}
        ).encode()
        + b"\n"
        for p in range(1, 6)
    )
    fs = b"".join(
        json.dumps(
            {"kind": "fs_entry", "path": f"/etc/f{i}", "type": "file", "mtime_ns": T0 + i,
             "atime_ns": T0, "ctime_ns": T0 + i, "size": i, "mode": "0644"}
        ).encode() + b"\n"
        for i in range(20)
    )  # fmt: skip
    log = b"".join(b"2026-11-23T15:55:%02dZ stdout F line %d\n" % (i, i) for i in range(30))
    return {
        "artifacts/target.json": b'{"uri":"pid://1","runtime":"pid","pid":1}\n',
        "artifacts/processes.jsonl": procs,
        "files/etc/passwd": b"root:x:0:0:root:/root:/sbin/nologin\n",
        "artifacts/filesystem.jsonl": fs,
        "logs/runtime/01-stdio.log": log,
        "artifacts/logs.jsonl": b'{"kind":"log_source","origin":"runtime","format":"cri",'
        b'"member":"logs/runtime/01-stdio.log"}\n',
    }


def seeds() -> list[bytes]:
    generate(WORK / "key")
    signer = Signer.from_file(WORK / "key")
    out = []
    for compress in ("zstd", "none"):
        for sign in (None, signer):
            p = WORK / f"seed-{compress}-{bool(sign)}.exv"
            write_real_bundle(
                p, compress=compress, signer=sign, contents=_contents(), custody=CustodyLog("fz")
            )
            out.append(p.read_bytes())
    return out


SEEDS = seeds()
HOSTILE = [b"\x00", b"\xff", b"/", b"..", b"\n", b"9", b" ", b"\x28\xb5\x2f\xfd", b"ustar\x00"]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    rnd = draw(st.randoms(use_true_random=False))  # positions spread over the whole file
    i = rnd.randrange(len(SEEDS))
    data = bytearray(SEEDS[i])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["flip", "span", "insert", "delete", "truncate", "dup", "append"])
        )
        if not data:  # truncated to nothing: only appending can follow
            kind = "append"
        pos = rnd.randrange(max(1, len(data)))
        if kind == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "span":
            fill = draw(st.sampled_from(HOSTILE)) * draw(st.integers(1, 64))
            data[pos : pos + len(fill)] = fill[: len(data) - pos]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 600))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "dup":
            n = draw(st.integers(1, 2048))
            data[pos:pos] = data[pos : pos + n]
        else:
            data += draw(st.binary(min_size=1, max_size=1100))
    return i, bytes(data)


def run_one(i: int, data: bytes) -> None:
    if data == SEEDS[i]:
        return
    d = Path(tempfile.mkdtemp(dir=WORK))
    kind = "zstd" if data[:4] == b"\x28\xb5\x2f\xfd" else "plain"
    COUNTS[kind] = COUNTS.get(kind, 0) + 1
    try:
        p = d / "b.exv"
        p.write_bytes(data)
        report = verify_bundle(p)
        if report.ok:
            raise AssertionError("verify says OK for an altered bundle")
        first = (report.failures() or [report.incomplete_reason])[0]
        key = first.split(":")[0][:40]
        REASONS[key] = REASONS.get(key, 0) + 1
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                run_info(SimpleNamespace(bundle=p))
        except ExuviaError as err:
            if "\n" in str(err):
                raise AssertionError(f"info error is not one line: {err!r}") from err
            COUNTS["info_refused"] += 1
        try:
            tl = open_timeline(p, cache_dir=d / "cache", rebuild=True)
            tl.close()
        except (BundleError, OutputError):
            COUNTS["timeline_refused"] += 1
        COUNTS["examples"] += 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    crashers: list[tuple[bytes, str]] = []

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated())
    def check(case: tuple[int, bytes]) -> None:
        try:
            run_one(*case)
        except Exception:
            crashers.append((case[1], traceback.format_exc(limit=6)))
            raise

    t0 = time.monotonic()
    failed = False
    try:
        seed(args.seed)(check)()
    except Exception:  # noqa: BLE001 - reported below with the shrunk input
        failed = True
        if not crashers:  # hypothesis itself gave up: say so, never "0 crashers"
            print(f"FUZZER ERROR (not a crasher):\n{traceback.format_exc(limit=3)}")
            return 2
    spent = time.monotonic() - t0
    n = COUNTS["examples"]
    print(f"examples: {n} in {spent:.1f}s ({n / spent:.1f}/s); seeds {len(SEEDS)} bundles")
    print(f"  zstd {COUNTS.get('zstd', 0)}, plain tar {COUNTS.get('plain', 0)}")
    print(
        f"  verify failed all {n}; info refused {COUNTS['info_refused']}, "
        f"timeline refused {COUNTS['timeline_refused']} (the rest built and flagged)"
    )
    print("  verify's first finding (prefix, count):")
    for key, count in sorted(REASONS.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {key}: {count}")
    shutil.rmtree(WORK, ignore_errors=True)
    if failed and crashers:
        data, tb = crashers[-1]
        OUT.mkdir(exist_ok=True)
        path = OUT / f"bundle-{len(data)}-{zlib.crc32(data):08x}.exv"
        path.write_bytes(data)
        print(f"CRASHER ({len(data)} bytes) written to {path}:\n{tb}")
        return 1
    print("crashers: 0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
