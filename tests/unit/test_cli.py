"""The command line: every command has help; errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import build_parser, main
from tui.commands.options import size_arg


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_the_spine_commands_exist() -> None:
    assert {"capture", "verify", "info", "demo"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: exuvia {command}" in out
    assert len(out.splitlines()) > 3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["capture", "nosuch://x", "-o", "/tmp/never.exv"], "pid://"),
        (["capture", "pid://notanumber", "-o", "/tmp/never.exv"], "pid"),
        (["capture", "pid://999999999", "-o", "/tmp/never.exv"], "999999999"),
        (["verify", "/nonexistent/bundle.exv"], "cannot open"),
        (["info", "/nonexistent/bundle.exv"], "cannot open"),
        (["capture", "pid://1", "-o", "/tmp/x.exv", "--max-file-size", "lots"], "not a size"),
        (["capture", "pid://1", "-o", "/tmp/x.exv", "--zstd-level", "0"], "level from 1 to 19"),
        (["capture", "pid://1", "-o", "/tmp/x.exv", "--zstd-level", "x"], "level from 1 to 19"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert message in lines[-1]
    assert lines[-1].startswith("exuvia")


def test_verify_names_failures_and_exits_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.exv"
    junk.write_bytes(b"\0" * 4096)
    res = run_cli("verify", str(junk))
    assert res.returncode == 1
    assert res.stdout.startswith("FAILED")


@pytest.mark.parametrize(
    ("text", "value"), [("65536", 65536), ("64M", 64 << 20), ("1G", 1 << 30), ("2KiB", 2048)]
)
def test_sizes(text: str, value: int) -> None:
    assert size_arg(text) == value
