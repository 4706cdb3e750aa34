"""``--memory [anon|all]``, ``--memory-max SIZE``, ``--memory-pids PID,…`` (docs/memory.md).

Their own module so the commands that share capture options (capture, fleet,
store) add them with one call and read them with another.
"""

from __future__ import annotations

import argparse

from collectors.memory.acquire import MemoryOptions
from collectors.memory.maps import MODES
from tui.commands.options import size_arg


def pid_list(text: str) -> tuple[int, ...]:
    """'12,34 56' -> (12, 34, 56); every entry a positive integer."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a list of pids: {text!r} (use e.g. 1,42)")
    return tuple(int(p) for p in parts)


def add_memory_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("process memory (off by default: memory holds secrets)")
    g.add_argument(
        "--memory",
        nargs="?",
        const="anon",
        choices=MODES,
        default=None,
        help="also capture each process's memory as an ELF core (memory/<pid>.core, "
        "opened by `gdb EXE CORE`), read live without stopping it: anon (the default "
        "when given) = anonymous, heap, stack, memfd, deleted-file and written private "
        "file mappings; all = every readable mapping",
    )
    g.add_argument(
        "--memory-max",
        type=size_arg,
        default=None,
        metavar="SIZE",
        help="store at most SIZE bytes of memory per process and in total (e.g. 512M); "
        "what is left out is recorded as skipped",
    )
    g.add_argument(
        "--memory-pids",
        type=pid_list,
        default=None,
        metavar="PID,…",
        help="only these processes (host pids, of the target's PID namespace; for "
        "k8s:// the pod's pids, as the agent sees them; host pids with --node-level)",
    )


def memory_from_args(args: argparse.Namespace) -> MemoryOptions | None:
    """The options, or None when memory was not asked for. --memory-max or
    --memory-pids alone do not turn it on: they are refused."""
    mode = getattr(args, "memory", None)
    extra = getattr(args, "memory_max", None) is not None or getattr(args, "memory_pids", None)
    if mode is None:
        if extra:
            raise argparse.ArgumentTypeError("--memory-max/--memory-pids need --memory")
        return None
    return MemoryOptions(mode=mode, max_size=args.memory_max, pids=args.memory_pids)
