"""Shared measuring for the benchmarks in bench/: time commands against a baseline.

Pure standard library. What it measures, per run of one command:

* wall time: ``time.perf_counter`` from ``Popen`` to ``os.wait4`` returning;
* CPU seconds: user + system from ``os.wait4``'s rusage, which holds the child
  and every descendant it (or they) waited for — a shell pipeline, exuvia's
  reader process. A descendant that is never waited for is not counted;
* peak RSS over the whole process tree: a sampler thread walks
  ``/proc/PID/task/*/children`` from the child every ``POLL`` seconds and sums
  ``VmRSS`` (shared pages count once per process: an upper bound) and ``Pss``
  from ``smaps_rollup`` (shared pages split between the processes sharing
  them); the peaks of both sums are kept. It is polling, not cgroup
  ``memory.peak``: this machine has cgroup v1 and its memory hierarchy belongs
  to the sandbox, and a cgroup would also charge the page cache of the files
  written. A process living shorter than ``POLL`` can be missed (``ru_maxrss``
  is used only when no sample saw anything: after a vfork it holds the
  benchmark's own RSS, so it is no floor);
* the machine load (``/proc/loadavg``) before and after the whole set.

``compare`` runs a list of commands ``runs`` times, alternating their order
(forwards on even runs, backwards on odd ones), and prints each run, then the
median/min/max wall time, median CPU, peak RSS, and each command's ratio to the
first one (the baseline): the median of the per-run ratios. On a shared
machine the figures are noisy; the printed load says how noisy.

    from bench.benchlib import Command, compare
    res = compare([Command("tar | sha256sum", "tar -cf - . | sha256sum", shell=True),
                   Command("exuvia", ["exuvia", "capture", ...], before=cleanup)], runs=5)
    res.ratio("exuvia")   # median of per-run wall ratios to the baseline
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL = 0.02  # seconds between samples of the process tree's memory


@dataclass
class Command:
    """One command of a comparison. ``argv`` is a list, or a string with ``shell=True``."""

    name: str
    argv: Sequence[str] | str
    shell: bool = False
    cwd: str | os.PathLike[str] | None = None
    env: dict[str, str] | None = None
    #: called before every run of this command (remove an output, drop a cache)
    before: Callable[[], None] | None = None
    #: called after every run (check the output, then remove it)
    after: Callable[[], None] | None = None
    #: exit codes counted as success
    ok_codes: tuple[int, ...] = (0,)
    #: where stdout goes (default /dev/null); stderr is inherited
    stdout: str | os.PathLike[str] | None = None

    def text(self) -> str:
        return self.argv if isinstance(self.argv, str) else shlex.join(self.argv)


@dataclass
class Run:
    """One measured run of one command."""

    wall: float
    cpu: float
    user: float
    system: float
    #: peak of the summed VmRSS of the process tree, MiB
    rss_mib: float
    #: peak of the summed Pss of the process tree, MiB
    pss_mib: float
    #: the most processes seen at once in the tree
    procs: int
    exit_code: int


def loadavg() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    a, b, c = Path("/proc/loadavg").read_text().split()[:3]
    return float(a), float(b), float(c)


def load_text() -> str:
    one, five, fifteen = loadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


def machine() -> str:
    """A one-line description of this machine and Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return (
        f"{os.cpu_count()} CPUs ({model or platform.processor() or '?'}), "
        f"{mem_kib / (1 << 20):.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as fh:
                kids.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return kids


def _mem_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) of one process in KiB; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                    break
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def tree_memory(pid: int) -> tuple[int, int, int]:
    """Summed (VmRSS KiB, Pss KiB, process count) of ``pid`` and its descendants."""
    rss = pss = n = 0
    todo = [pid]
    seen: set[int] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r, s = _mem_kib(p)
        if r or s:
            rss += r
            pss += s
            n += 1
        todo.extend(_children(p))
    return rss, pss, n


def measure(cmd: Command) -> Run:
    """Run ``cmd`` once; wall, CPU of the tree, peak memory of the tree."""
    out = open(cmd.stdout, "wb") if cmd.stdout else subprocess.DEVNULL
    env = None if cmd.env is None else {**os.environ, **cmd.env}
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd.argv,
            shell=cmd.shell,
            cwd=cmd.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            executable="/bin/bash" if cmd.shell else None,
        )
        peak = [0, 0, 0]
        done = threading.Event()

        def sample() -> None:
            while True:
                rss, pss, n = tree_memory(proc.pid)
                peak[0] = max(peak[0], rss)
                peak[1] = max(peak[1], pss)
                peak[2] = max(peak[2], n)
                if done.wait(POLL):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
    code = proc.returncode
    if code not in cmd.ok_codes:
        raise SystemExit(f"benchmark command {cmd.name!r} failed (exit {code}): {cmd.text()}")
    if peak[0] == 0:  # too short for a sample
        peak[0] = peak[1] = usage.ru_maxrss  # KiB on Linux
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        user=usage.ru_utime,
        system=usage.ru_stime,
        rss_mib=peak[0] / 1024,
        pss_mib=peak[1] / 1024,
        procs=peak[2],
        exit_code=code,
    )


@dataclass
class Result:
    """Every run of every command of one comparison, and the load around them."""

    names: list[str]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def baseline(self) -> str:
        return self.names[0]

    def walls(self, name: str) -> list[float]:
        return [r.wall for r in self.runs[name]]

    def ratios(self, name: str) -> list[float]:
        """Per-run wall time of ``name`` over the baseline's in the same run."""
        base = self.runs[self.baseline]
        return [r.wall / b.wall for r, b in zip(self.runs[name], base, strict=True)]

    def ratio(self, name: str) -> float:
        return statistics.median(self.ratios(name))

    def cpu(self, name: str) -> float:
        return statistics.median(r.cpu for r in self.runs[name])

    def peak_rss(self, name: str) -> float:
        return max(r.rss_mib for r in self.runs[name])

    def peak_pss(self, name: str) -> float:
        return max(r.pss_mib for r in self.runs[name])

    def summary(self, target: float | None = None) -> str:
        """The lines printed at the end of ``compare``."""
        lines = [
            f"machine: {machine()}",
            f"load average (1 min) before {self.load_before[0]:.2f}, after "
            f"{self.load_after[0]:.2f}  (5 min: {self.load_before[1]:.2f} -> "
            f"{self.load_after[1]:.2f}; shared machine: figures are noisy)",
        ]
        base = self.baseline
        for name in self.names:
            w = self.walls(name)
            line = (
                f"{name}: wall median {statistics.median(w):.2f}s (min {min(w):.2f}, max "
                f"{max(w):.2f}), cpu median {self.cpu(name):.2f}s, peak RSS "
                f"{self.peak_rss(name):.0f} MiB (PSS {self.peak_pss(name):.0f} MiB, "
                f"{max(r.procs for r in self.runs[name])} processes)"
            )
            lines.append(line)
        for name in self.names[1:]:
            rs = self.ratios(name)
            cpu_ratio = self.cpu(name) / self.cpu(base) if self.cpu(base) else float("nan")
            tail = f"; target <= {target:.2f}" if target is not None else ""
            lines.append(
                f"ratio {name} / {base}: median {statistics.median(rs):.2f} "
                f"(min {min(rs):.2f}, max {max(rs):.2f}{tail}); cpu ratio {cpu_ratio:.2f}"
            )
        return "\n".join(lines)


def _run_line(i: int, name: str, r: Run) -> str:
    return (
        f"run {i} {name}: wall {r.wall:.2f}s cpu {r.cpu:.2f}s (user {r.user:.2f} sys "
        f"{r.system:.2f}) peak RSS {r.rss_mib:.0f} MiB PSS {r.pss_mib:.0f} MiB"
    )


def compare(
    commands: Sequence[Command],
    runs: int = 5,
    *,
    warmup: bool = True,
    target: float | None = None,
    quiet: bool = False,
) -> Result:
    """Time ``commands`` ``runs`` times each, alternating order; the first is the baseline.

    ``warmup`` runs each command once first, untimed (warm page cache, imports).
    Prints every run and the summary unless ``quiet``.
    """
    if len(commands) < 1 or runs < 1:
        raise ValueError("compare needs at least one command and one run")
    names = [c.name for c in commands]
    if len(set(names)) != len(names):
        raise ValueError(f"command names must differ: {names}")
    res = Result(names, {n: [] for n in names})

    def one(cmd: Command) -> Run:
        if cmd.before is not None:
            cmd.before()
        r = measure(cmd)
        if cmd.after is not None:
            cmd.after()
        return r

    if warmup:
        for cmd in commands:
            one(cmd)
    res.load_before = loadavg()
    if not quiet:
        print(f"timing {len(commands)} commands x {runs} runs; {load_text()}", flush=True)
    for i in range(runs):
        order = list(commands) if i % 2 == 0 else list(commands)[::-1]
        for cmd in order:
            r = one(cmd)
            res.runs[cmd.name].append(r)
            if not quiet:
                print(_run_line(i, cmd.name, r), flush=True)
        if not quiet and len(commands) > 1:
            base = res.runs[names[0]][-1].wall
            ratios = ", ".join(f"{n} {res.runs[n][-1].wall / base:.2f}" for n in names[1:])
            print(f"run {i} ratios to {names[0]}: {ratios}", flush=True)
    res.load_after = loadavg()
    if not quiet:
        print(res.summary(target), flush=True)
    return res


if __name__ == "__main__":  # a quick self-check: two trivial commands
    r = compare(
        [
            Command("sleep 0.2", ["sleep", "0.2"]),
            Command("sha256sum of 64 MiB", "head -c 67108864 /dev/zero | sha256sum", shell=True),
        ],
        runs=int(sys.argv[1]) if len(sys.argv) > 1 else 3,
    )
