"""Benchmark: `exuvia scan` throughput against the engine scanning the same files itself.

Builds (once, under --workdir) a bundle with the real BundleWriter holding real
files of this machine (the regular files under --source, default
/usr/lib/x86_64-linux-gnu, up to --mib MiB, each copied as files/<path>), and
writes the same files to a directory. Then, in the same run, alternating:

  engine  the YARA-X Python binding itself, one Scanner.scan per file read
          from the directory (the engine's cost with no bundle around it:
          the baseline)
  yara    Debian's `yara -r` command-line scanner (classic YARA, not YARA-X:
          YARA-X's own `yr` is not packaged here), when installed
  exuvia  `exuvia scan BUNDLE --rules RULES`: zstd inflate, tar stream,
          SHA-256 of every member, the scan, the results file

Prints MB/s and each one's ratio to the engine (a wall-time ratio; > 1 is
slower). The machine is shared: the load before and after is printed, and
the figures are noisy.

    .venv/bin/python bench/scan_speed.py [--mib 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchlib import Command, compare, load_text, machine  # noqa: E402
from forensics.bundle.format import file_member_name  # noqa: E402
from forensics.bundle.writer import BundleWriter  # noqa: E402

RULES = r"""
rule strings_and_hex {
  strings:
    $a = "EXUVIA-BENCH-NOT-THERE"
    $b = /https?:\/\/[a-z0-9.-]{4,40}\/[a-z]{3,12}\.sh/
    $c = { 7F 45 4C 46 02 01 01 [8] 03 00 }
  condition:
    any of them
}
rule elf_header { condition: uint32(0) == 0x464c457f }
"""
ENGINE = """
import os, sys, yara_x
rules = yara_x.compile(open(sys.argv[1]).read())
scanner = yara_x.Scanner(rules)
scanner.set_timeout(60)
n = 0
for d, _dirs, files in os.walk(sys.argv[2]):
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            n += len(scanner.scan(fh.read()).matching_rules)
print(n)
"""


def build(workdir: Path, source: Path, limit: int) -> tuple[Path, Path, int]:
    bundle, tree = workdir / "scan-bench.exv", workdir / "tree"
    total = 0
    if bundle.exists() and tree.exists():
        for d, _x, files in os.walk(tree):
            total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
        return bundle, tree, total
    shutil.rmtree(tree, ignore_errors=True)
    with bundle.open("wb") as raw:
        w = BundleWriter(raw)
        for d, _dirs, files in os.walk(source):
            for f in sorted(files):
                p = Path(d) / f
                if p.is_symlink() or not p.is_file() or total >= limit:
                    continue
                data = p.read_bytes()
                rel = p.relative_to(source)
                w.add_bytes(file_member_name(b"/" + bytes(rel)), data)
                out = tree / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
                total += len(data)
        w.finish({"complete": True, "acquisition": {"start_ns": 1, "end_ns": 2}})
    return bundle, tree, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/exuvia-scan-bench"))
    ap.add_argument("--source", type=Path, default=Path("/usr/lib/x86_64-linux-gnu"))
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    print(f"before: {load_text()}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    bundle, tree, total = build(args.workdir, args.source, args.mib << 20)
    rules = args.workdir / "bench.yar"
    rules.write_text(RULES)
    engine = args.workdir / "engine.py"
    engine.write_text(ENGINE)
    print(f"{total / 1e6:.0f} MB in {sum(len(f) for _d, _x, f in os.walk(tree))} files; "
          f"bundle {bundle.stat().st_size / 1e6:.0f} MB (zstd)")  # fmt: skip
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    side = bundle.with_name(bundle.name + ".yara.json")
    cmds = [Command("engine", [py, str(engine), str(rules), str(tree)], env=env)]
    if shutil.which("yara"):
        cmds.append(Command("yara", ["yara", "-r", "-w", str(rules), str(tree)]))
    cmds.append(Command("exuvia", [py, "-m", "tui.cli", "scan", str(bundle), "--rules",
                                   str(rules), "--output", "json"], env=env,
                        before=lambda: side.unlink(missing_ok=True)))  # fmt: skip
    res = compare(cmds, runs=args.runs)
    for c in cmds:
        walls = sorted(r.wall for r in res.runs[c.name])
        med = walls[len(walls) // 2]
        print(f"{c.name}: median {med:.2f}s = {total / 1e6 / med:.0f} MB/s")
    print(f"exuvia / engine (wall, median of per-run ratios): {res.ratio('exuvia'):.2f}")
    print(f"after: {load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
