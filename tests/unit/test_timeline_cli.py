"""`exuvia timeline`: listing, exports, the summary on stderr, one-line errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.errors import ExuviaError
from tests.unit.test_timeline_support import NS, T0, fs_entry, make_bundle
from tui.cli import _Parser
from tui.commands import timeline_cmd


def exuvia(*argv: str) -> int:
    """What tui.cli.main does, with the timeline command registered."""
    parser = _Parser(prog="exuvia")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    timeline_cmd.register(sub)
    args = parser.parse_args(list(argv))
    try:
        rc: int = args.handler(args)
        return rc
    except ExuviaError as err:
        print(f"exuvia: error: {err}", file=sys.stderr)
        return 2


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fs = b"\n".join(
        [
            json.dumps(fs_entry("/etc/app.conf", T0, T0, T0 + NS, T0)).encode(),
            b"{broken",
            json.dumps(fs_entry("/tmp/x", T0 + 2 * NS, "bad", T0 + 2 * NS)).encode(),  # type: ignore[arg-type]
        ]
    )
    log = b"2026-11-23T15:55:05Z started\nno time here\n9999-01-01T00:00:00Z absurd\n"
    return make_bundle(tmp_path / "b.exv", fs=fs, runtime_logs=[("raw", log)])


def test_listing_and_summary(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exuvia("timeline", str(bundle), "--source", "fs,log") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == (
        "2026-11-23T15:55:00.000000000Z  ma.b              fs      "
        "/etc/app.conf (file, 10 bytes, 0644, 0:0)"
    )
    assert lines[1].startswith("2026-11-23T15:55:01.000000000Z  ..c. ")
    assert any("started" in x for x in lines)
    assert any(x.endswith("no time here ~") for x in lines)  # inferred times are marked
    assert "timeline: " in err
    assert "could not be parsed: 3 (record malformed 1, time invalid 1, log time invalid 1)" in err
    assert "log lines without a time of their own (kept, flagged time_inferred): 2" in err


def test_export_with_extension_and_filters(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.body"
    assert exuvia("timeline", str(bundle), "-o", str(out)) == 0
    assert "wrote 2 file entries (bodyfile)" in capsys.readouterr().err
    assert out.read_text().splitlines()[0].startswith("0|/etc/app.conf|")
    jl = tmp_path / "o.txt"
    assert exuvia("timeline", str(bundle), "-o", str(jl), "--kind", "file.changed", "-q") == 0
    assert capsys.readouterr().err == ""
    rows = [json.loads(x) for x in jl.read_text().splitlines()]  # default format: jsonl
    assert [(r["entity"], r["macb"]) for r in rows] == [
        ("/etc/app.conf", "..c."),
        ("/tmp/x", "m.c."),
    ]
    csvf = tmp_path / "w.csv"
    argv = ["timeline", str(bundle), "-o", str(csvf), "--from", "2026-11-23T15:55:01Z"]
    assert exuvia(*argv, "--to", "2026-11-23T15:55:03Z", "--search", "tmp") == 0
    assert len(csvf.read_text().splitlines()) == 1 + 1


def test_tz_changes_naive_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = make_bundle(tmp_path / "b.exv", runtime_logs=[("raw", b"2026-11-23 17:55:00 local\n")])
    cache = ["--source", "log"]
    assert exuvia("timeline", str(b), *cache, "--tz", "+02:00") == 0
    assert capsys.readouterr().out.startswith("2026-11-23T15:55:00.000000000Z")
    assert exuvia("timeline", str(b), *cache, "--tz", "UTC") == 0
    assert capsys.readouterr().out.startswith("2026-11-23T17:55:00.000000000Z")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "disk"], "unknown source 'disk'"),
        (["--kind", "file.deleted"], "unknown kind 'file.deleted'"),
        (["--tz", "Mars/Base"], "unknown time zone"),
        (["--format", "xml", "-o", "x"], "invalid choice"),
    ],
)
def test_bad_options_are_one_line_errors(
    bundle: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        exuvia("timeline", str(bundle), *argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_bad_time_is_a_one_line_error(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exuvia("timeline", str(bundle), "--from", "last tuesday") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("exuvia: error: --from/--to: not a time: 'last tuesday'")


def test_not_a_bundle_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.exv"
    junk.write_bytes(b"\x00" * 10)
    assert exuvia("timeline", str(junk)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("exuvia: error:") and "not an exuvia bundle" in err[0]


def test_help_describes_the_exports(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        exuvia("timeline", "--help")
    out = capsys.readouterr().out
    for word in ("jsonl", "l2tcsv", "bodyfile", "--from", "--search", "--tz"):
        assert word in out


def test_the_command_runs_as_a_process(bundle: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from tests.unit.test_timeline_cli import exuvia;"
        "sys.exit(exuvia(*sys.argv[1:]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, "timeline", str(bundle), "-o", "-", "--format", "l2tcsv"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env={"XDG_CACHE_HOME": str(tmp_path / "x"), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].startswith("date,time,timezone,MACB,")
    assert "could not be parsed: 3" in res.stderr


def test_register_adds_one_subcommand() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    timeline_cmd.register(sub)
    assert list(sub.choices) == ["timeline"]
