"""Running container runtime command line tools, with clear one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from forensics.errors import RuntimeToolError

DEFAULT_TIMEOUT = 30.0
_MAX_STR = 4096
_MAX_LIST = 256


class ToolFailed(RuntimeToolError):
    """A runtime tool ran and exited non-zero; ``stderr`` keeps what it said."""

    def __init__(self, message: str, *, tool: str, returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.tool = tool
        self.returncode = returncode
        self.stderr = stderr


def find_tool(tool: str) -> str:
    """The full path of ``tool``, or RuntimeToolError('<tool> is not installed')."""
    path = shutil.which(tool)
    if path is None:
        raise RuntimeToolError(f"{tool} is not installed (not found on PATH)")
    return path


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``argv`` (a fixed list, never a shell) and return its stdout.

    Missing binary, timeout and non-zero exit become RuntimeToolError with one
    line; a non-zero exit is a ToolFailed carrying the stderr.
    """
    tool = argv[0]
    name = os.path.basename(tool)
    exe = find_tool(tool)
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            [exe, *argv[1:]],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=full_env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeToolError(
            f"{name} {' '.join(argv[1:3])} timed out after {timeout:g}s"
        ) from err
    except OSError as err:
        raise RuntimeToolError(f"cannot run {name}: {err.strerror or err}") from err
    if proc.returncode != 0:
        detail = _last_line(proc.stderr) or _last_line(proc.stdout) or "no message"
        raise ToolFailed(
            f"{name} {' '.join(argv[1:3])} failed (exit {proc.returncode}): {detail}",
            tool=name,
            returncode=proc.returncode,
            stderr=proc.stderr,
        )
    return proc.stdout


def run_json(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Run ``argv`` and parse its stdout as JSON (RuntimeToolError if it is not)."""
    out = run_tool(argv, timeout=timeout)
    try:
        return json.loads(out)
    except json.JSONDecodeError as err:
        name = os.path.basename(argv[0])
        raise RuntimeToolError(f"{name} {' '.join(argv[1:3])} did not print JSON: {err}") from err


ENV_KEYS = frozenset({"Env", "env"})
ENV_VALUE_OMITTED = "<omitted>"


def omit_env_values(env: list[Any]) -> list[Any]:
    """``["K=V", ...]`` -> ``["K=<omitted>", ...]``: names are kept, values never.

    The environment (with the capture's redaction policy) is recorded by the
    processes collector from /proc; runtime facts must not leak it unredacted.
    """
    return [f"{e.split('=', 1)[0]}={ENV_VALUE_OMITTED}" if isinstance(e, str) else e for e in env]


def trim_facts(obj: Any, *, drop: frozenset[str] = frozenset(), depth: int = 0) -> Any:
    """A copy of a runtime's JSON answer with huge and secret parts cut.

    Keys in ``drop`` are removed at any depth; environment lists (``Env``,
    ``env``) keep variable names only; strings longer than 4 KiB and lists
    longer than 256 items are truncated (with a marker); nesting is cut at
    depth 12.
    """
    if depth > 12:
        return "…(nested too deep)"
    if isinstance(obj, dict):
        return {
            str(k): (
                omit_env_values(v)
                if str(k) in ENV_KEYS and isinstance(v, list)
                else trim_facts(v, drop=drop, depth=depth + 1)
            )
            for k, v in obj.items()
            if str(k) not in drop
        }
    if isinstance(obj, list):
        items = [trim_facts(v, drop=drop, depth=depth + 1) for v in obj[:_MAX_LIST]]
        if len(obj) > _MAX_LIST:
            items.append(f"…({len(obj) - _MAX_LIST} more items)")
        return items
    if isinstance(obj, str) and len(obj) > _MAX_STR:
        return obj[:_MAX_STR] + f"…({len(obj) - _MAX_STR} more characters)"
    return obj


_GO_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?"  # date, time, fraction
    r"\s*(Z|z|[+-]\d\d:?\d\d)?(?:\s+[A-Z]{2,5})?$"  # zone, Go's trailing " UTC"
)


def parse_time(value: Any) -> int | None:
    """UTC ns from a runtime's timestamp, keeping every fractional digit.

    Accepts RFC 3339 (``2026-11-23T15:36:36.606509946Z``, any offset) and Go's
    ``time.String()`` form (``2026-11-23 15:36:36.606509946 +0000 UTC``). Go's zero
    time (year 1), empty and unparsable values give None.
    """
    if not isinstance(value, str):
        return None
    m = _GO_TIME.match(value.strip())
    if m is None:
        return None
    date, clock, frac, zone = m.groups()
    if date.startswith("0001-"):
        return None
    if zone is None or zone in ("Z", "z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        secs = int(datetime.fromisoformat(f"{date}T{clock}{zone}").timestamp())
    except ValueError:
        return None
    return secs * 1_000_000_000 + int((frac or "").ljust(9, "0"))
