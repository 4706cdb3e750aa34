"""Fuzz the ELF layer (extract + analysis) with mutated binaries, using hypothesis.

Seeds: hand-built ELF files with notes, a dynamic table, Go build information
(both formats) and a cargo-auditable section, plus real binaries of this system.
Each example overwrites a few header-area spots with hostile values (0, all-ones,
2^31, 2^63, sizes near the file's), or truncates the file, then runs exactly
what the capture and the inventory run. The only allowed outcomes are an
ElfInfo or Unparseable, within the per-file time limit. Anything else is a
crasher: hypothesis shrinks it, the script prints it as hex and writes it to
bench/fuzz-crashers/; each one found becomes a test in
tests/unit/test_inv_hostile.py ("found by the fuzzer").

    .venv/bin/python bench/fuzz_elf.py [--examples 5000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

# hypothesis keeps a cache directory; not in the source tree
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "exuvia-hypothesis")
)

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.inventory.elf import Unparseable, analyze
from forensics.inventory.elfblob import decode_blob
from forensics.inventory.elfscan import extract
from tests.support.elfbuild import (
    SHT_DYNAMIC,
    SHT_NOTE,
    Elf,
    Section,
    build,
    go_pointer_buildinfo,
    note,
)

TIME_LIMIT = 2.0
#: exception types behind "unreadable" notes, by step
NOTE_TYPES: dict[str, int] = {}
#: what pyelftools and its construct library raise for malformed data; any other
#: exception type behind a note (TypeError, KeyError...) is a bug that the
#: per-part safety net in elf.py hid, and is treated as a crasher
EXPECTED = frozenset(
    {
        "ELFError",
        "ELFParseError",
        "ArrayError",
        "FieldError",
        "RangeError",
        "StreamError",
        "SizeofError",
        "AdaptationError",
        "ValidationError",
    }
)
OUT = Path(__file__).with_name("fuzz-crashers")


def seeds() -> list[bytes]:
    dep = {
        "packages": [
            {"name": "a", "version": "1", "dependencies": [1], "root": True},
            {"name": "b", "version": "2"},
        ]
    }
    inline = b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16 + b"\x06go1.22" + b"\x21" + b"x" * 33
    out = [
        build(
            Elf(
                sections=[
                    Section(".interp", data=b"/lib/ld.so\0"),
                    Section(
                        ".note.gnu.build-id", SHT_NOTE, data=note(b"GNU", 3, bytes(20)), align=4
                    ),
                    Section(
                        ".note.package",
                        SHT_NOTE,
                        data=note(b"FDO", 0xCAFE1A7E, b'{"name":"x","version":"1"}\0\0'),
                        align=4,
                    ),
                    Section(".dynstr", 3, data=b"\0libc.so.6\0/opt/lib\0"),
                    Section(
                        ".dynamic",
                        SHT_DYNAMIC,
                        data=struct.pack("<qQqQqQ", 1, 1, 29, 11, 0, 0),
                        link=4,
                        align=8,
                    ),
                    Section(".go.buildinfo", flags=3, data=inline),
                    Section(
                        ".dep-v0", flags=0, data=zlib.compress(json.dumps(dep).encode()), align=1
                    ),
                    Section(".comment", flags=0, data=b"GCC: (x) 12\0", align=1),
                ],
                phdrs=[(3, 4, ".interp"), (4, 4, ".note.gnu.build-id"), (2, 6, ".dynamic")],
            )
        ),
        go_pointer_buildinfo("go1.16", "path\tx\nmod\tx\t(devel)\t\n"),
    ]
    for p in ("/usr/bin/true", "/usr/bin/env"):
        if Path(p).is_file():
            out.append(Path(p).read_bytes())
    return out


SEEDS = seeds()
HOSTILE = [0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**31, 2**63, 2**64 - 1]


def run_one(data: bytes) -> str:
    """'ok' | 'unparseable'; raises on anything else (a crasher)."""
    t0 = time.monotonic()
    blob = decode_blob(extract(lambda off, n: data[off : off + n] if off >= 0 else b"", len(data)))
    try:
        info = analyze(blob, seconds=TIME_LIMIT)
        outcome = "ok"
        for n in info.notes:  # parts that failed: which exception types said so
            m = re.search(r"^(.*?): unreadable \((\w+)", n)
            if m:
                step = re.sub(r" \d+$", "", m.group(1))
                key = f"{m.group(2)} in {step}"
                NOTE_TYPES[key] = NOTE_TYPES.get(key, 0) + 1
                if m.group(2) not in EXPECTED:
                    raise AssertionError(f"unexpected {m.group(2)} behind a note: {n}")
    except Unparseable as err:
        outcome = "unparseable"
        m = re.search(r"\((\w+):", str(err))
        if m:
            NOTE_TYPES["unparseable:" + m.group(1)] = (
                NOTE_TYPES.get("unparseable:" + m.group(1), 0) + 1
            )
    spent = time.monotonic() - t0
    if spent > 2 * TIME_LIMIT + 1:
        raise TimeoutError(f"took {spent:.1f}s")
    return outcome


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    hot = min(len(data), 4096)
    for _ in range(draw(st.integers(1, 8))):
        width = draw(st.sampled_from([1, 2, 4, 8]))
        if draw(st.booleans()):
            at = draw(st.integers(0, max(0, hot - width)))
        else:  # the section header table and the end of the file
            at = draw(st.integers(max(0, len(data) - 4096), max(0, len(data) - width)))
        value = draw(
            st.one_of(
                st.sampled_from(HOSTILE),
                st.integers(0, 2**64 - 1),
                st.integers(len(data) - 64, len(data) + 64),
            )
        )
        value &= (1 << (8 * width)) - 1
        data[at : at + width] = value.to_bytes(width, "little")
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    counts = {"ok": 0, "unparseable": 0}
    crashers: list[tuple[bytes, str]] = []

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated())
    def check(data: bytes) -> None:
        try:
            counts[run_one(data)] += 1
        except Exception:
            crashers.append((data, traceback.format_exc(limit=4)))
            raise

    check = seed(args.seed)(check)
    t0 = time.monotonic()
    failed = False
    try:
        check()
    except Exception:  # noqa: BLE001 - reported below with the shrunk input
        failed = True
    spent = time.monotonic() - t0
    total = counts["ok"] + counts["unparseable"]
    print(f"examples: {total} in {spent:.1f}s ({total / spent:.0f}/s); seeds {len(SEEDS)}")
    print(f"  analysed {counts['ok']}, reported unparseable {counts['unparseable']}")
    print("  parts reported unreadable (exception type, part, count):")
    for key, count in sorted(NOTE_TYPES.items()):
        print(f"    {key}: {count}")
    if failed and crashers:
        data, tb = crashers[-1]  # hypothesis re-runs the shrunk example last
        OUT.mkdir(exist_ok=True)
        path = OUT / f"crash-{len(data)}-{zlib.crc32(data):08x}.hex"
        path.write_text(data.hex() + "\n")
        print(f"CRASHER ({len(data)} bytes) written to {path}:\n{tb}")
        return 1
    print("crashers: 0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
