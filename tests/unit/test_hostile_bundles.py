"""Hostile bundles: `exuvia verify`, `info` and `timeline` refuse or flag each one
with a clear message, never a traceback, never write outside their cache
directory and never use a member name as a path.

Every bundle here is crafted with tarfile / hand-built zstd frames
(tests/support/bundle_craft.py). The commands run as real subprocesses with a
private cwd, HOME and XDG_CACHE_HOME; the test then lists every file under its
temporary directory and under /tmp to prove nothing appeared anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from forensics.bundle import verify_bundle
from forensics.bundle.format import MANIFEST_NAME
from forensics.bundle.reader import BundleReader
from forensics.errors import BundleError
from tests.support.bundle_craft import (
    bomb_member,
    header_member,
    regular,
    rle_frame,
    special,
    tar_bytes,
    write_real_bundle,
    zstd,
)

TAG = f"exuvia-hostile-{uuid.uuid4().hex[:12]}"
#: names that would land outside any cache directory if ever used as paths
ESCAPES = [f"/tmp/{TAG}/absolute", f"../../../../../../tmp/{TAG}/dotdot"]
GIB = 1 << 30
#: peak RSS allowed for one command over a bundle that inflates to gigabytes
RSS_LIMIT_MIB = 300

PROC = b'{"kind":"process","pid":7,"start_ns":1763913600000000000,"cmdline":["x"]}\n'


def _plain(path: Path, entries: list[object], compress: bool = True) -> Path:
    data = tar_bytes([header_member(), *entries])  # type: ignore[list-item]
    path.write_bytes(zstd(data) if compress else data)
    return path


def absolute_names(path: Path) -> Path:
    return _plain(
        path, [regular(ESCAPES[0], b"pwned\n"), regular("artifacts/processes.jsonl", PROC)]
    )


def dotdot_names(path: Path) -> Path:
    return _plain(
        path, [regular(ESCAPES[1], b"pwned\n"), regular("artifacts/processes.jsonl", PROC)]
    )


def symlink_out(path: Path) -> Path:
    return _plain(
        path,
        [
            special("files/etc/passwd", tarfile.SYMTYPE, "/etc/passwd"),
            special(f"files/{TAG}", tarfile.SYMTYPE, f"../../../../tmp/{TAG}"),
            regular(f"files/{TAG}/through-link", b"pwned\n"),
        ],
    )


def hardlink_out(path: Path) -> Path:
    return _plain(path, [special("files/etc/shadow", tarfile.LNKTYPE, "/etc/shadow")])


def device_members(path: Path) -> Path:
    return _plain(
        path,
        [
            special("files/dev/mem", tarfile.CHRTYPE),
            special("files/dev/sda", tarfile.BLKTYPE),
            special("files/run/fifo", tarfile.FIFOTYPE),
        ],
    )


def duplicate_names(path: Path) -> Path:
    return _plain(
        path,
        [regular("artifacts/processes.jsonl", PROC), regular("artifacts/processes.jsonl", b"{}\n")],
    )


def lying_manifest(path: Path) -> Path:
    """A real bundle whose manifest says other sizes and hashes for two members
    (its self_check recomputed, as someone editing it would)."""
    real = path.with_suffix(".real")
    write_real_bundle(real, compress="none")
    with tarfile.open(real) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    out: list[object] = []
    for info, original in members:
        data = original
        if info.name == MANIFEST_NAME:
            doc = json.loads(original)
            doc.pop("self_check")
            for entry in doc["members"]:
                if entry["name"] == "artifacts/a1.jsonl":
                    entry["size"] += 100  # lies about a size
                if entry["name"] == "artifacts/a2.jsonl":
                    entry["sha256"] = "0" * 64  # lies about a hash
            body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()[:-1]
            data = body + b',"self_check":"%s"}\n' % hashlib.sha256(body).hexdigest().encode()
        out.append((tarfile.TarInfo(info.name), data))
    path.write_bytes(tar_bytes(out))  # type: ignore[arg-type]
    real.unlink()
    return path


def truncated(path: Path) -> Path:
    real = path.with_suffix(".real")
    write_real_bundle(real, members=40)
    data = real.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    real.unlink()
    return path


def zstd_bomb(path: Path) -> Path:
    """~32 KiB on disk, 1 GiB of zeros once inflated (32,768:1), in a member every
    reader hashes. Memory, not size, is the point: the peak RSS is asserted."""
    head = tar_bytes([header_member()], end=False)
    path.write_bytes(rle_frame([head, *bomb_member("files/var/big", GIB, 0), bytes(1024)]))
    return path


def one_gib_line(path: Path) -> Path:
    """A runtime log member of one 1 GiB line (no newline): the timeline reads its lines."""
    head = tar_bytes([header_member()], end=False)
    segments = [head, *bomb_member("logs/runtime/01-stdio.log", GIB, ord("A")), bytes(1024)]
    path.write_bytes(rle_frame(segments))
    return path


def nested_manifest(path: Path) -> Path:
    deep = b"[" * 200_000 + b"]" * 200_000
    return _plain(path, [regular(MANIFEST_NAME, deep)])


def nested_records(path: Path) -> Path:
    deep = b'{"kind":"process","x":' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
    fs = b'{"kind":"fs_entry","path":"/a","x":' + b"{" * 5 + b"[" * 100_000 + b"]" * 100_000
    return _plain(
        path,
        [
            regular("artifacts/processes.jsonl", PROC + deep + PROC),
            regular("artifacts/filesystem.jsonl", fs + b"}" * 5 + b"}\n"),
            regular("artifacts/target.json", b"[" * 100_000 + b"]" * 100_000),
        ],
    )


CASES: dict[str, Callable[[Path], Path]] = {
    "absolute-names": absolute_names,
    "dotdot-names": dotdot_names,
    "symlink-out": symlink_out,
    "hardlink-out": hardlink_out,
    "devices": device_members,
    "duplicates": duplicate_names,
    "lying-manifest": lying_manifest,
    "truncated": truncated,
    "zstd-bomb": zstd_bomb,
    "1gib-line": one_gib_line,
    "nested-manifest": nested_manifest,
    "nested-records": nested_records,
}


#: what `timeline` must say about each crafted structure
TIMELINE_FLAGS = {
    "absolute-names": f"'{ESCAPES[0]}' has an absolute path",
    "dotdot-names": f"'{ESCAPES[1]}' has a '..' component",
    "symlink-out": "'files/etc/passwd' is a link member",
    "hardlink-out": "'files/etc/shadow' is a link member",
    "devices": "'files/dev/mem' is a non-file member",
}


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def run_cli(args: list[str], cwd: Path, home: Path, cache: Path) -> tuple[int, str, str, int]:
    """Run `exuvia ARGS` in a subprocess; returns (exit, stdout, stderr, peak RSS KiB)."""
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(cache),
        "TMPDIR": str(home.parent / "tmp"),  # temporary files must not be left either
        "COLUMNS": "200",
    }
    wrapper = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "sys.stdout.buffer.write(r.stdout); sys.stderr.buffer.write(r.stderr)\n"
        "sys.stderr.write('\\n@@rss %d @@rc %d' % ("
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "tui.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )
    m = re.search(r"\n@@rss (\d+) @@rc (-?\d+)$", r.stderr)
    assert m, r.stderr
    return int(m.group(2)), r.stdout, r.stderr[: m.start()], int(m.group(1))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    return {name: make(d / f"{name}.exv") for name, make in CASES.items()}


def _one_clean_line(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("exuvia: error: ")
    assert "\x1b" not in lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_cli_refuses_or_flags_and_writes_only_its_cache(
    case: str, bundles: dict[str, Path], tmp_path: Path
) -> None:
    src = bundles[case]
    inbox = tmp_path / "in"
    inbox.mkdir()
    bundle = inbox / src.name
    bundle.write_bytes(src.read_bytes())
    cwd, home, cache, tmp = (tmp_path / n for n in ("cwd", "home", "xdg", "tmp"))
    for d in (cwd, home, cache, tmp):
        d.mkdir()
    before = _tree(tmp_path)

    results = {
        cmd: run_cli([cmd, str(bundle)], cwd, home, cache) for cmd in ("verify", "info", "timeline")
    }
    for cmd, (rc, out, err, rss) in results.items():
        assert "Traceback" not in out + err, (cmd, err)
        assert rss < RSS_LIMIT_MIB * 1024, (cmd, f"peak RSS {rss // 1024} MiB")
        assert rc in (0, 1, 2) or (cmd, rc, case) == ("verify", 3, "truncated"), (cmd, rc, err)
        if rc == 2:
            _one_clean_line(err)
        assert "\x1b" not in out

    rc, out, _err, _ = results["verify"]
    if case == "truncated":  # a stream merely cut short: exit 3, "cut off", never OK
        assert rc == 3 and out.startswith("CUT OFF"), out
    else:
        assert rc == 1 and out.startswith("FAILED"), out  # every other case is an alteration
    rc, out, err, _ = results["info"]
    assert rc != 0 or case == "lying-manifest", (out, err)  # info does not re-hash
    rc, out, err, _ = results["timeline"]
    assert rc == 2 or "warning:" in err, (out, err)  # refused, or built and flagged
    if case in TIMELINE_FLAGS:
        assert f"warning: crafted bundle? member {TIMELINE_FLAGS[case]}" in err, err

    # nothing new anywhere but the bundle's cache directory and the user cache
    allowed = (str(inbox / f"{bundle.name}.exuvia-cache"), str(cache / "exuvia"))
    new = {p for p in _tree(tmp_path) - before if not p.startswith(allowed)}
    assert new == set(), sorted(new)
    assert not Path(f"/tmp/{TAG}").exists()
    for d in (cwd, home, tmp):
        assert sorted(d.iterdir()) == [], d


def test_verify_names_each_problem(bundles: dict[str, Path]) -> None:
    expect = {
        "absolute-names": f"member {ESCAPES[0]!r} has an absolute path (never used as a path)",
        "dotdot-names": "has a '..' component",
        "symlink-out": "is a symbolic link",
        "hardlink-out": "is a hard link",
        "devices": "is a character device",
        "duplicates": "duplicate member 'artifacts/processes.jsonl'",
        "lying-manifest": "artifacts/a2.jsonl",
        "truncated": "stream broken",
        "zstd-bomb": "no manifest",
        "1gib-line": "no manifest",
        "nested-manifest": "manifest is not valid JSON",
        "nested-records": "no manifest",
    }
    for case, needle in expect.items():
        report = verify_bundle(bundles[case])
        text = "\n".join([*report.failures(), report.incomplete_reason, *report.unverifiable])
        assert not report.ok, case
        assert needle in text, (case, text)
    lying = verify_bundle(bundles["lying-manifest"])
    assert "artifacts/a1.jsonl" in lying.altered + lying.truncated
    assert "artifacts/a2.jsonl" in lying.altered


def test_info_flags_crafted_structure(bundles: dict[str, Path], tmp_path: Path) -> None:
    # a manifest-bearing bundle with a link and an absolute name after it
    real = tmp_path / "real.exv"
    write_real_bundle(real, compress="none")
    with tarfile.open(real) as tar:
        members = [(tarfile.TarInfo(m.name), tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    extra = [special("files/x", tarfile.SYMTYPE, "/etc/shadow"), regular(ESCAPES[0], b"x")]
    crafted = tmp_path / "crafted.exv"
    crafted.write_bytes(tar_bytes([*members[:2], extra[0], *members[2:], extra[1]]))
    _manifest, warnings = BundleReader(crafted).manifest_and_warnings()
    text = "\n".join(warnings)
    assert "'files/x' is a symbolic link" in text
    assert "has an absolute path" in text and "follows the manifest" in text
    with pytest.raises(BundleError, match="not valid JSON"):
        BundleReader(bundles["nested-manifest"]).manifest()
