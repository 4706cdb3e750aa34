"""Benchmark: `exuvia capture --files all` against tar on the same container root.

Inputs (``--input``):

  real       the real tree of bench/realtree.py (this machine's libraries, docs,
             Python stdlib and more of /usr: >= 100,000 files, >= 2 GiB, cached
             under /var/cache/exuvia-bench/) run under runc; the targets are
             judged on it (the default)
  synthetic  >= 50,000 generated files and >= 1 GiB (``--files``, ``--gib``)
             chrooted by unshare in its own mount and PID namespaces (extra rows)

Commands timed in the same runs, alternating order (bench/benchlib.py):

  tar|sha256sum    tar --one-file-system -cf - -C /proc/PID/root . | sha256sum
  exuvia           exuvia capture URI --files all -o OUT            (zstd, the default)
  exuvia-none      exuvia capture URI --files all --compress none -o OUT
  tar|zstd|tee     tar ... | zstd -3 -T0 | tee >(sha256sum) > OUT
  exuvia-inline    exuvia ... --compress-thread off (zstd, hash and writes on the
                   writing thread, as before 2026-12-07; only with --commands)

Printed: every run, medians, CPU (user + system of the whole process tree),
peak RSS and PSS over all processes of each tree, the load before and after,
and the ratios exuvia / tar|sha256sum (target <= 1.00, peak RSS <= 200 MiB),
exuvia-none / tar|sha256sum and exuvia / tar|zstd|tee. The machine is shared:
read the printed load with the figures. Needs root, runc, gcc, tar, zstd.

    sudo .venv/bin/python bench/capture_speed.py [--input real|synthetic|both] [--runs 5]
        [--commands tar|sha256sum,exuvia,...] [--compare-with CHECKOUT]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
import realtree

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ("tar|sha256sum", "exuvia", "exuvia-none", "tar|zstd|tee", "exuvia-inline")
#: timed unless --commands says otherwise (exuvia-inline: the A/B of the worker thread)
DEFAULT_COMMANDS = COMMANDS[:4]

SLEEPER_C = r"""
#include <unistd.h>
int main(void) { for (;;) pause(); }
"""


def build_root(root: Path, nfiles: int, total_bytes: int) -> None:
    rnd = random.Random(42)
    big_files = 8
    small_budget = total_bytes // 2
    big_each = (total_bytes - small_budget) // big_files
    small_each = max(1, small_budget // nfiles)
    block = bytes(rnd.getrandbits(8) for _ in range(1 << 16)) * 4  # 256 KiB, half compressible
    per_dir = 500
    for i in range(nfiles):
        d = root / "data" / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = max(1, int(small_each * rnd.uniform(0.2, 1.8)))
        off = rnd.randrange(0, len(block) - size) if size < len(block) else 0
        (d / f"f{i:06d}.bin").write_bytes(block[off : off + size])
    for j in range(big_files):
        with (root / "data" / f"big{j}.bin").open("wb") as f:
            left = big_each
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n


def start_target(root: Path) -> subprocess.Popen[bytes]:
    src = root / "sleeper.c"
    src.write_text(SLEEPER_C)
    (root / "app").mkdir(exist_ok=True)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(root / "app/sleeper"), str(src)], check=True)
    src.unlink()
    for d in ("proc", "tmp", "etc"):
        (root / d).mkdir(exist_ok=True)
    return subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--kill-child", f"--root={root}", "/app/sleeper"]
    )


def init_pid(wrapper: subprocess.Popen[bytes]) -> int:
    for _ in range(100):
        try:
            kids = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise SystemExit("target did not start")


@contextlib.contextmanager
def synthetic_target(work: Path, nfiles: int, gib: float) -> Iterator[tuple[int, str, str]]:
    """(pid, URI, description) of the synthetic root's chrooted process."""
    root = work / "root"
    if not root.exists():
        print(f"building {nfiles} files, {gib} GiB under {root} ...", flush=True)
        root.mkdir(parents=True)
        build_root(root, nfiles, int(gib * (1 << 30)))
    wrapper = start_target(root)
    pid = 0
    try:
        pid = init_pid(wrapper)
        yield pid, f"pid://{pid}", f"synthetic tree: {nfiles:,} files, {gib} GiB"
    finally:
        # the target is PID 1 of its namespace and ignores SIGTERM: kill it, and
        # unshare (waiting for it) follows
        with contextlib.suppress(ProcessLookupError):
            if pid:
                os.kill(pid, signal.SIGKILL)
        wrapper.kill()
        wrapper.wait()


@contextlib.contextmanager
def real_target() -> Iterator[tuple[int, str, str]]:
    tree = realtree.build()
    with realtree.start_container(tree.root) as c:
        yield c.pid, c.uri, tree.describe() + " under runc"


def commands(  # noqa: PLR0917 - one call site
    pid: int,
    uri: str,
    out_dir: Path,
    names: list[str],
    other: Path | None,
    variants: list[str],
) -> list[benchlib.Command]:
    out = out_dir / "out.exv"

    def clean() -> None:
        for p in out_dir.iterdir():
            p.unlink()

    tar = f"tar --one-file-system -cf - -C /proc/{pid}/root ."

    def exuvia(name: str, checkout: Path, *extra: str) -> benchlib.Command:
        return benchlib.Command(
            name,
            realtree.exuvia_capture_argv(uri, out, *extra),
            cwd=checkout,
            env={"PYTHONPATH": str(checkout)},
            before=clean,
            after=clean,
            ok_codes=(0, 3),  # 3: sealed, with skips recorded
        )

    made = {
        "tar|sha256sum": benchlib.Command("tar|sha256sum", f"{tar} | sha256sum", shell=True),
        "exuvia": exuvia("exuvia", REPO),
        "exuvia-none": exuvia("exuvia-none", REPO, "--compress", "none"),
        "exuvia-inline": exuvia("exuvia-inline", REPO, "--compress-thread", "off"),
        "tar|zstd|tee": benchlib.Command(
            "tar|zstd|tee",
            # $! is the process substitution: waited for, so its time is counted
            f"{tar} | zstd -q -3 -T0 | tee >(sha256sum >/dev/null) > {out}; wait $!",
            shell=True,
            before=clean,
            after=clean,
        ),
    }
    cmds = [made[n] for n in names]
    if other is not None:
        cmds.append(exuvia(f"exuvia@{other.name}", other.resolve()))
    for v in variants:
        cmds.append(exuvia(f"exuvia {v}", REPO, *v.split()))
    return cmds


def bench(
    target: contextlib.AbstractContextManager[tuple[int, str, str]], args: argparse.Namespace
) -> None:
    out_dir = Path(tempfile.mkdtemp(prefix="capture-out-", dir=realtree.CACHE))
    try:
        with target as (pid, uri, what):
            print(f"== {what}", flush=True)
            cmds = commands(pid, uri, out_dir, args.commands, args.compare_with, args.variant)
            # one untimed tar warms the page cache for every command
            benchlib.measure(
                benchlib.Command(
                    "warm-up",
                    f"tar --one-file-system -cf - -C /proc/{pid}/root . >/dev/null",
                    shell=True,
                )
            )
            res = benchlib.compare(cmds, runs=args.runs, warmup=False)
            names = [c.name for c in cmds]
            print(f"-- {what}")
            if "tar|sha256sum" in names:
                for n in names:
                    if n.startswith("exuvia"):
                        goal = 1.0 if n == "exuvia" else None
                        print(res.ratio_line(n, "tar|sha256sum", goal))
            if "exuvia" in names and "tar|zstd|tee" in names:
                print(res.ratio_line("exuvia", "tar|zstd|tee"))
            if "exuvia" in names and "exuvia-inline" in names:
                print(res.ratio_line("exuvia", "exuvia-inline"))
            if "exuvia" in names:
                print(
                    f"exuvia peak RSS over all its processes: {res.peak_rss('exuvia'):.0f} MiB "
                    f"(PSS {res.peak_pss('exuvia'):.0f} MiB; target <= 200)"
                )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _terminated(signum: int, _frame: object) -> None:
    # `timeout` and kill send SIGTERM: unwind, so the runc target and its overlay go too
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", choices=("real", "synthetic", "both"), default="real")
    ap.add_argument("--files", type=int, default=50_000, help="synthetic: file count")
    ap.add_argument("--gib", type=float, default=1.0, help="synthetic: total size")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None, help="synthetic: keep the root here")
    ap.add_argument(
        "--commands",
        type=lambda s: s.split(","),
        default=list(DEFAULT_COMMANDS),
        help=f"comma-separated subset of {','.join(COMMANDS)} (the first is the baseline)",
    )
    ap.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="also time the exuvia of another source checkout (e.g. a worktree of main) "
        "in every run, for an A/B under the same load",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="ARGS",
        help="also time exuvia with these extra arguments (repeatable), e.g. '--zstd-level 3'",
    )
    args = ap.parse_args()
    bad = [c for c in args.commands if c not in COMMANDS]
    if bad:
        ap.error(f"unknown command {bad[0]!r}; choose from {','.join(COMMANDS)}")
    if os.geteuid() != 0:
        ap.error("needs root (runc, unshare, reading the target's files)")
    if args.input in ("real", "both"):
        bench(real_target(), args)
    if args.input in ("synthetic", "both"):
        work = Path(args.workdir or tempfile.mkdtemp(prefix="exuvia-bench-"))
        try:
            bench(synthetic_target(work, args.files, args.gib), args)
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
