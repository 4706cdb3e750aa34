"""The command line: every command has help; errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle
from tui.cli import COMMANDS, build_parser, command_of, main
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


def test_the_lazy_parser_shows_every_command_as_the_full_one_does() -> None:
    """`main` imports only the command that runs, every other one a placeholder: the
    top-level help, each placeholder's help line and the command list are those of
    the parser with every module registered."""
    full = build_parser()
    for only in ("", "timeline", "info", "verify", "agent", "nosuch"):
        lazy = build_parser(only=only)
        assert lazy.format_help() == full.format_help()
        assert _help_lines(lazy) == _help_lines(full)
    assert [name for name, _m, _h in COMMANDS] == list(_help_lines(full))


def _help_lines(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub._choices_actions}


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["timeline", "b.exv"], "timeline"),
        (["--version"], None),
        (["-h", "info"], "info"),
        (["--", "scan", "x"], "scan"),
        ([], None),
    ],
)
def test_the_command_word(argv: list[str], word: str | None) -> None:
    assert command_of(argv) == word


def test_a_timeline_export_imports_no_ui_cluster_or_store_client(tmp_path: Path) -> None:
    """`exuvia timeline` (a real export of a real bundle, in a fresh interpreter) imports
    no other command and nothing the terminal UI, the live collectors, the cluster or
    the evidence store need."""
    bundle = make_bundle(
        tmp_path / "b.exv", fs=[fs_entry(f"/f{i}", T0 + i * NS, T0, T0) for i in range(20)]
    )
    out = tmp_path / "t.jsonl"
    code = (
        "import sys, tui.cli\n"
        f"rc = tui.cli.main(['timeline', {str(bundle)!r}, '-q', '--format', 'jsonl',"
        f" '-o', {str(out)!r}])\n"
        "print(' '.join(sorted(sys.modules)))\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert res.returncode == 0, res.stderr
    assert '"entity":"/f19"' in out.read_text()  # the export did run
    roots = {m.split(".")[0] for m in res.stdout.split()}
    assert "forensics" in roots
    assert not roots & {"textual", "kubernetes", "boto3", "botocore", "collectors"}, roots
    commands = {m for m in res.stdout.split() if m.startswith("tui.commands.")}
    assert "tui.commands.timeline_cmd" in commands
    assert not commands & {f"tui.commands.{mod}" for _c, mod, _h in COMMANDS} - {
        "tui.commands.timeline_cmd"
    }, commands
