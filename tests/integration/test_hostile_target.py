"""Hostile target filesystems and processes, in real runc containers.

The hostile tree is made in a running container's root (its overlay upper
layer) through /proc/PID/root; hostile processes (tests/support/hostile.c, a
static binary) run inside the container with ``runc exec``. Every capture goes
through the real command line in a subprocess, so its peak RSS is measurable
(os.wait4) and a hang is a timeout.

Required everywhere: nothing outside the target's root is read (a host canary
never appears in the decompressed bundle, with every copy policy), no hang, no
traceback, every skip recorded with its reason, memory and descriptors bounded.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.bundle import verify_bundle
from forensics.bundle.format import decode_path, record_collector
from forensics.textsafe import field_bytes
from forensics.timeline.bundleio import stream_members
from tests.support.bundles import artifacts, member, member_names
from tests.support.hostile import build_hostile, install, run_inside
from tui.demo.launch import LabContainer

REPO = Path(__file__).parents[2]
POLICIES = ["none", "changed", "small", "all"]
TIB = 1 << 40
DEEP = 2000
NOFILE = 1024
#: the capture of the hostile tree must stay under this peak RSS
RSS_LIMIT = 300 << 20

# names that must round-trip exactly (bytes), each holding its own name as content
NAMES: list[bytes] = [
    b"a" * 255,
    "é".encode() * 127 + b"x",  # 255 bytes of UTF-8
    b"bad-\xff\xfe-utf8",
    b"two\nlines",
    b"[bold red]x[/]",  # a directory "[bold red]x[" holding "]": the path is the markup
    b"\x1b]0;pwn\x07",
    b"\x1b[2J\x1b[31mred",
    b"tab\there\rcr",
    b"%41-not-an-escape",
]
ESCAPES = (b"\x1b", b"\x07")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    maxrss: int  # bytes
    seconds: float


#: forks the command and writes its peak RSS (KiB) to the fd in argv[1]. A process's peak RSS
#: includes the memory of whatever it was forked from until it execs (Linux keeps
#: the old mm's high-water mark), so wait4 on a child of pytest would count
#: pytest's own memory; a grandchild forked from this small launcher does not.
_LAUNCHER = """
import os, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(report, str(usage.ru_maxrss).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_exuvia(*args: str, timeout: float = 600, nofile: int | None = None) -> Run:
    """The real CLI in a subprocess; its own peak RSS (through a small launcher that
    waits for it), and a timeout kills it."""
    out_r, err_r, rss_r = (os.pipe(), os.pipe(), os.pipe())

    limit = ["prlimit", f"--nofile={nofile}:{nofile}"] if nofile is not None else []
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, str(rss_r[1]),
         *limit, sys.executable, "-m", "tui.cli", *args],
        stdout=out_r[1], stderr=err_r[1], stdin=subprocess.DEVNULL, cwd=REPO,
        pass_fds=(rss_r[1],), start_new_session=True,
    )  # fmt: skip
    os.close(out_r[1])
    os.close(err_r[1])
    os.close(rss_r[1])
    chunks: dict[int, list[bytes]] = {out_r[0]: [], err_r[0]: []}

    def drain(fd: int) -> None:
        while data := os.read(fd, 1 << 16):
            chunks[fd].append(data)
        os.close(fd)

    readers = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in chunks]
    for t in readers:
        t.start()
    # the launcher and the capture share a new session: a timeout kills both
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    for t in readers:
        t.join()
    with os.fdopen(rss_r[0], "rb") as fh:
        reported = fh.read()
    maxrss_kib = int(reported) if reported.strip() else 0
    seconds = time.monotonic() - t0
    assert seconds < timeout, f"exuvia {args[0]} hung (killed after {timeout:g}s)"
    return Run(
        proc.returncode,
        b"".join(chunks[out_r[0]]).decode("utf-8", "replace"),
        b"".join(chunks[err_r[0]]).decode("utf-8", "replace"),
        maxrss_kib * 1024,
        seconds,
    )


def decompressed(bundle: Path) -> bytes:
    with bundle.open("rb") as fh:
        return zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()


def fs_by_path(bundle: Path) -> dict[bytes, dict[str, Any]]:
    return {field_bytes(r, "path"): r for r in artifacts(bundle)["filesystem"] if "path" in r}


def skips_of(bundle: Path) -> list[dict[str, Any]]:
    return artifacts(bundle)["skips"]


def skip_for(bundle: Path, path: bytes) -> list[str]:
    subject = path.decode("utf-8", "replace")
    return [s["reason"] for s in skips_of(bundle) if s["subject"] == subject]


def assert_every_skip_has_a_reason(bundle: Path) -> None:
    for s in skips_of(bundle):
        assert s["collector"] and s["subject"] and len(s["reason"]) > 5, s


# --- the shared hostile tree -------------------------------------------------------


@dataclass
class Canary:
    """A host directory the target's symlinks point at; nothing of it may be read."""

    dir: Path
    file: Path
    token: bytes  # the canary file's content
    inner_name: str  # a file name only the host directory has


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Canary:
    d = tmp_path_factory.mktemp("canary-host-only")
    token = f"HOST-CANARY-{uuid.uuid4().hex}".encode()
    f = d / "secret"
    f.write_bytes(token + b"\n")
    inner = f"inner-{uuid.uuid4().hex}"
    (d / inner).write_bytes(token)
    return Canary(d, f, token, inner)


@pytest.fixture(scope="session")
def hostile_bin(lab_dir: Path) -> Path:
    return build_hostile(lab_dir / "hostile-build")


def _mkdeep(base: str, depth: int) -> None:
    """``depth`` nested directories "d" below ``base`` (fd-relative: the path
    is longer than PATH_MAX), with a file at the bottom."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        bottom = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(bottom, b"the bottom\n")
        os.close(bottom)
    finally:
        os.close(fd)


def build_hostile_tree(root: str, canary: Canary) -> None:
    h = f"{root}/hostile"
    os.mkdir(h)
    # symlinks out of the root, absolute and relative, to a file and a directory
    os.mkdir(f"{h}/links")
    os.symlink(str(canary.file), f"{h}/links/abs-file")
    os.symlink(str(canary.dir), f"{h}/links/abs-dir")
    os.symlink("../" * 12 + str(canary.file).lstrip("/"), f"{h}/links/rel-file")
    os.symlink("../" * 12 + str(canary.dir).lstrip("/"), f"{h}/links/rel-dir")
    os.symlink(f"/proc/self/root{canary.file}", f"{h}/links/proc-self-root")
    os.symlink("abs-dir/secret", f"{h}/links/chain")
    os.symlink("loop-b", f"{h}/links/loop-a")
    os.symlink("loop-a", f"{h}/links/loop-b")
    os.symlink("self", f"{h}/links/self")
    os.symlink("/", f"{h}/links/root")
    # special files: never opened, let alone read
    os.mkdir(f"{h}/special")
    os.mkfifo(f"{h}/special/fifo")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(f"{h}/special/sock")
    s.close()
    os.mknod(f"{h}/special/zero", 0o666 | 0o020000, os.makedev(1, 5))  # endless zeros
    os.mknod(f"{h}/special/random", 0o666 | 0o020000, os.makedev(1, 8))
    os.mknod(f"{h}/special/mem", 0o600 | 0o020000, os.makedev(1, 1))  # /dev/mem
    host_disk = os.stat("/").st_dev
    os.mknod(f"{h}/special/disk", 0o600 | 0o060000, host_disk)  # the host's disk
    # names
    os.mkdir(f"{h}/names")
    hb = os.fsencode(h)
    for name in NAMES:
        os.makedirs(os.path.dirname(hb + b"/names/" + name), exist_ok=True)
        with open(hb + b"/names/" + name, "wb") as fh:
            fh.write(b"content of " + name)
    os.mkdir(hb + b"/names/\x1b]0;pwn\x07dir")
    with open(hb + b"/names/\x1b]0;pwn\x07dir/[red]inner[-red]", "wb") as fh:
        fh.write(b"inner")
    # hard links
    os.mkdir(f"{h}/hard")
    Path(f"{h}/hard/a").write_bytes(b"linked content\n")
    os.link(f"{h}/hard/a", f"{h}/hard/b")
    os.link(f"{h}/hard/a", f"{h}/hard/c")
    # mode 000 and other owners
    os.mkdir(f"{h}/perm")
    Path(f"{h}/perm/zero-mode").write_bytes(b"mode 000 content\n")
    os.chmod(f"{h}/perm/zero-mode", 0)
    os.mkdir(f"{h}/perm/closed-dir")
    Path(f"{h}/perm/closed-dir/inside").write_bytes(b"inside a mode 000 directory\n")
    os.chmod(f"{h}/perm/closed-dir", 0)
    Path(f"{h}/perm/other-owner").write_bytes(b"owned by 4242\n")
    os.chown(f"{h}/perm/other-owner", 4242, 4343)
    os.chmod(f"{h}/perm/other-owner", 0o600)
    os.mkdir(f"{h}/perm/other-dir", 0o700)
    Path(f"{h}/perm/other-dir/f").write_bytes(b"in a 4242 directory\n")
    os.chown(f"{h}/perm/other-dir", 4242, 4343)
    # a sparse 1 TiB file with a little data at both ends
    with open(f"{h}/sparse", "wb") as fh:
        fh.write(b"sparse head\n")
        fh.seek(TIB - 4096)
        fh.write(b"sparse tail\n")
        fh.truncate(TIB)
    # 2,000 levels of directories
    os.mkdir(f"{h}/deep")
    _mkdeep(f"{h}/deep", DEEP)


@dataclass
class Captured:
    bundle: Path
    run: Run
    policy: str


@pytest.fixture(scope="module")
def hostile_box(lab: Any, canary: Canary) -> Iterator[LabContainer]:
    box: LabContainer = lab.runc()
    try:
        build_hostile_tree(box.root, canary)
        yield box
    finally:
        # rm's fts has no recursion limit; the lab's shutil.rmtree would hit one
        subprocess.run(["rm", "-rf", f"{box.root}/hostile/deep"], check=False)
        box.stop()


@pytest.fixture(scope="module")
def captures(hostile_box: LabContainer) -> dict[str, Captured]:
    """One capture of the hostile tree per copy policy (made lazily, then reused)."""
    return {}


def captured(captures: dict[str, Captured], box: LabContainer, tmp: Path, policy: str) -> Captured:
    if policy not in captures:
        out = tmp / f"hostile-{policy}-{uuid.uuid4().hex[:6]}.exv"
        run = run_exuvia("capture", box.uri, "-o", str(out), "--files", policy, "-q",
                         timeout=300, nofile=NOFILE)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        print(f"capture --files {policy}: {run.seconds:.1f}s, peak RSS {run.maxrss >> 20} MiB")
        captures[policy] = Captured(out, run, policy)
    return captures[policy]


@pytest.fixture(params=POLICIES)
def cap(
    request: pytest.FixtureRequest,
    captures: dict[str, Captured],
    hostile_box: LabContainer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Captured:
    return captured(captures, hostile_box, tmp_path_factory.mktemp("cap"), request.param)


def test_capture_of_the_hostile_tree_completes_bounded_and_verifies(cap: Captured) -> None:
    report = verify_bundle(cap.bundle)
    assert report.ok and report.complete, report.failures()
    assert cap.run.maxrss < RSS_LIMIT, f"peak RSS {cap.run.maxrss >> 20} MiB"
    assert_every_skip_has_a_reason(cap.bundle)
    # in the hostile tree only the sparse file is a skip: links, special files,
    # odd names, hard links, mode 000 and the deep tree are all records
    hostile = [s for s in skips_of(cap.bundle) if s["subject"].startswith("/hostile")]
    assert [s["subject"] for s in hostile] == ["/hostile/sparse"], hostile
    print(f"skips ({cap.policy}):", sorted({s["reason"][:60] for s in skips_of(cap.bundle)}))
    # descriptors: under a 1024 nofile limit nothing ran out of them
    assert not [s for s in skips_of(cap.bundle) if s.get("errno") == "EMFILE"]


def test_nothing_outside_the_root_is_read(cap: Captured, canary: Canary) -> None:
    raw = decompressed(cap.bundle)
    assert canary.token not in raw
    assert canary.inner_name.encode() not in raw  # the host directory was never listed
    fs = fs_by_path(cap.bundle)
    links = {
        b"abs-file": str(canary.file),
        b"abs-dir": str(canary.dir),
        b"chain": "abs-dir/secret",
        b"loop-a": "loop-b",
        b"self": "self",
        b"root": "/",
    }
    for name, target in links.items():
        rec = fs[b"/hostile/links/" + name]
        assert rec["type"] == "symlink" and rec["link_target"] == target
        assert "sha256" not in rec and "member" not in rec
    below = (b"/hostile/links/abs-dir/", b"/hostile/links/root/")
    assert not [p for p in fs if p.startswith(below)]
    assert not [n for n in member_names(cap.bundle) if n.startswith("files/hostile/links/")]


def test_special_files_are_recorded_never_opened(cap: Captured) -> None:
    fs = fs_by_path(cap.bundle)
    kinds = {b"fifo": "fifo", b"sock": "socket", b"zero": "chardev", b"random": "chardev",
             b"mem": "chardev", b"disk": "blockdev"}  # fmt: skip
    for name, kind in kinds.items():
        rec = fs[b"/hostile/special/" + name]
        assert rec["type"] == kind
        assert "sha256" not in rec and "member" not in rec and "read_error" not in rec
    assert fs[b"/hostile/special/zero"]["rdev"] == "1:5"
    disk = os.stat("/").st_dev
    assert fs[b"/hostile/special/disk"]["rdev"] == f"{os.major(disk)}:{os.minor(disk)}"


def test_names_round_trip_exactly(cap: Captured) -> None:
    fs = fs_by_path(cap.bundle)
    names = set(member_names(cap.bundle))
    for name in NAMES:
        path = b"/hostile/names/" + name
        rec = fs[path]  # field_bytes gave the exact bytes back
        assert rec["sha256"] == hashlib.sha256(b"content of " + name).hexdigest()
        if cap.policy != "none":  # all of them are small and changed since start
            assert "member" in rec and rec["member"] in names
            assert decode_path(rec["member"].removeprefix("files")) == path
            assert member(cap.bundle, rec["member"]) == b"content of " + name
    inner = b"/hostile/names/\x1b]0;pwn\x07dir/[red]inner[-red]"
    assert fs[inner]["type"] == "file"
    # member names stay printable: the escape bytes are percent-encoded
    for n in names:
        assert not any(c in n for c in "\x1b\x07\n\r\t"), n


def test_hard_links_are_recorded_and_hashed_once(cap: Captured) -> None:
    fs = fs_by_path(cap.bundle)
    a, b, c = (fs[b"/hostile/hard/" + n] for n in (b"a", b"b", b"c"))
    want = hashlib.sha256(b"linked content\n").hexdigest()
    assert a["sha256"] == b["sha256"] == c["sha256"] == want
    assert a["nlink"] == 3 and a["inode"] == b["inode"] == c["inode"]
    assert "hardlink_of" not in a
    assert b["hardlink_of"] == c["hardlink_of"] == "/hostile/hard/a"
    copies = [n for n in member_names(cap.bundle) if n.startswith("files/hostile/hard/")]
    assert len(copies) <= 1  # content at most once, whatever the policy
    if "member" in a:
        assert b["member"] == c["member"] == a["member"] == copies[0]


def test_mode_000_and_other_owners_are_read_as_root(cap: Captured) -> None:
    """The capture runs as root (CAP_DAC_OVERRIDE) in the read-only view: mode
    000 files and directories and other users' files are read and hashed."""
    fs = fs_by_path(cap.bundle)
    rec = fs[b"/hostile/perm/zero-mode"]
    assert rec["mode"] == "0000"
    assert rec["sha256"] == hashlib.sha256(b"mode 000 content\n").hexdigest()
    assert fs[b"/hostile/perm/closed-dir"]["mode"] == "0000"
    inside = fs[b"/hostile/perm/closed-dir/inside"]
    assert inside["sha256"] == hashlib.sha256(b"inside a mode 000 directory\n").hexdigest()
    other = fs[b"/hostile/perm/other-owner"]
    assert (other["uid"], other["gid"], other["mode"]) == (4242, 4343, "0600")
    assert other["sha256"] == hashlib.sha256(b"owned by 4242\n").hexdigest()
    assert fs[b"/hostile/perm/other-dir/f"]["sha256"]


def test_sparse_1tib_file_is_never_read_in_full(cap: Captured) -> None:
    """Decision (docs/hostile-targets.md): a file with more than 64 MiB of holes is
    not read in full: its data regions are hashed with their offsets, it is never
    copied, and a skip says so."""
    rec = fs_by_path(cap.bundle)[b"/hostile/sparse"]
    assert rec["size"] == TIB and rec["sparse"] is True
    assert "sha256" not in rec and "member" not in rec
    assert rec["data_bytes"] < 1 << 20
    offsets = [e[0] for e in rec["data_extents"]]
    assert offsets[0] == 0 and offsets[-1] <= TIB - 4096 < offsets[-1] + rec["data_extents"][-1][1]
    reasons = skip_for(cap.bundle, b"/hostile/sparse")
    assert any("sparse" in r and "not read in full" in r for r in reasons), reasons
    assert cap.run.seconds < 240


def test_sparse_file_is_not_copied_even_when_the_size_cap_allows_it(
    hostile_box: LabContainer, tmp_path: Path
) -> None:
    out = tmp_path / "sparse-2t.exv"
    run = capture_cli(hostile_box, out, "--files", "all", "--max-file-size", "2T", timeout=240)
    rec = fs_by_path(out)[b"/hostile/sparse"]
    assert rec["sparse"] is True and "member" not in rec
    assert out.stat().st_size < 64 << 20 and run.seconds < 240


def test_2000_deep_directories_are_walked_with_bounded_descriptors(cap: Captured) -> None:
    fs = fs_by_path(cap.bundle)
    bottom = b"/hostile/deep" + b"/d" * DEEP + b"/bottom.txt"
    assert fs[bottom]["sha256"] == hashlib.sha256(b"the bottom\n").hexdigest()
    assert not [s for s in skip_for(cap.bundle, bottom) if s]


def test_info_and_timeline_never_emit_raw_escapes(
    captures: dict[str, Captured], hostile_box: LabContainer, tmp_path: Path
) -> None:
    cap = captured(captures, hostile_box, tmp_path, "all")
    for args in (("info", str(cap.bundle)), ("timeline", str(cap.bundle)),
                 ("verify", str(cap.bundle)), ("sbom", str(cap.bundle))):  # fmt: skip
        res = run_exuvia(*args, timeout=300)
        assert res.returncode == 0, res.stderr
        for stream in (res.stdout, res.stderr):
            for esc in ESCAPES:
                assert esc.decode() not in stream, f"raw {esc!r} in `exuvia {args[0]}` output"
    timeline = run_exuvia("timeline", str(cap.bundle), timeout=300).stdout
    assert "[bold red]x[/]" in timeline  # markup shown literally, not interpreted


# --- hostile processes -----------------------------------------------------------


def capture_cli(box: LabContainer, out: Path, *extra: str, timeout: float = 300) -> Run:
    run = run_exuvia("capture", box.uri, "-o", str(out), "-q", *extra, timeout=timeout)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run


def test_symlink_swapped_for_a_directory_during_the_walk(
    lab: Any, hostile_bin: Path, canary: Canary, tmp_path: Path
) -> None:
    """A process inside exchanges directories with symlinks out of the root (and
    files with symlinks to the canary file) as fast as it can while we walk."""
    pairs = 64
    with lab.runc() as box:
        install(box, hostile_bin)
        for k in range(pairs):
            race = f"{box.root}/race/{k}"
            os.makedirs(f"{race}/d")
            for i in range(20):
                Path(f"{race}/d/inside-{i}").write_bytes(b"inside the root\n")
            os.symlink(str(canary.dir), f"{race}/l")
            Path(f"{race}/f").write_bytes(b"a file inside\n")
            os.symlink(str(canary.file), f"{race}/fl")
        run_inside(box, "swap", "/race", str(pairs), log=tmp_path / "swap.log")
        # the swapper runs before the captures start: it has exchanged d and l once
        deadline = time.monotonic() + 60
        while not os.path.islink(f"{box.root}/race/0/d"):
            assert time.monotonic() < deadline, "the swapper never exchanged /race/0/d"
            time.sleep(0.001)
        outs = []
        for policy in POLICIES:
            out = tmp_path / f"race-{policy}.exv"
            capture_cli(box, out, "--files", policy)
            outs.append(out)
    race_skips: list[str] = []
    inside = {hashlib.sha256(b"a file inside\n").hexdigest(),
              hashlib.sha256(b"inside the root\n").hexdigest()}  # fmt: skip
    for out in outs:
        assert verify_bundle(out).ok
        raw = decompressed(out)
        assert canary.token not in raw and canary.inner_name.encode() not in raw
        fs = fs_by_path(out)
        skips = skips_of(out)
        skipped = {s["subject"] for s in skips}
        for k in range(pairs):
            for name in ("d", "l", "f", "fl"):
                path = f"/race/{k}/{name}"
                rec = fs.get(path.encode())
                if rec is None:  # caught between steps of an exchange
                    assert path in skipped, path
                elif rec["type"] == "symlink" and "link_target" in rec:
                    assert rec["link_target"] in (str(canary.dir), str(canary.file))
                elif rec["type"] == "symlink":  # swapped between statx and readlink
                    assert path in skipped, path
        for path, rec in fs.items():
            if path.startswith(b"/race/") and path.count(b"/") > 3:
                # below d or l: only ever the directory inside the root
                assert path.rsplit(b"/", 1)[1].startswith(b"inside-"), path
            if rec.get("sha256"):
                assert not path.startswith(b"/race/") or rec["sha256"] in inside, path
        assert_every_skip_has_a_reason(out)
        race_skips.extend(s["reason"] for s in skips if s["subject"].startswith("/race"))
    print("race skips:", sorted(set(race_skips)), len(race_skips))
    # the race was really run: the walk met swapped entries, and said so
    assert race_skips
    known = ("directory was replaced", "replaced by a symlink during the walk",
             "cannot read link", "vanished during the walk",
             "replaced during the walk")  # fmt: skip
    assert all(r.startswith(known) for r in race_skips), race_skips


def test_file_growing_while_read_is_consistent_or_flagged(
    lab: Any, hostile_bin: Path, tmp_path: Path
) -> None:
    with lab.runc() as box:
        install(box, hostile_bin)
        grow = f"{box.root}/tmp/growing.log"
        with open(grow, "wb") as fh:
            fh.write(b"x" * (48 << 20))
        run_inside(box, "grow", "/tmp/growing.log", str(4 << 30), log=tmp_path / "grow.log")
        deadline = time.monotonic() + 60  # the writer is appending before the captures start
        while os.stat(grow).st_size <= 48 << 20:
            assert time.monotonic() < deadline, "the writer never grew the file"
            time.sleep(0.01)
        out = tmp_path / "grow.exv"
        capture_cli(box, out, "--files", "all", "--max-file-size", "2G")
        hashed_only = tmp_path / "grow-none.exv"  # hashed, not copied
        capture_cli(box, hashed_only, "--files", "none")
        size_after = os.stat(grow).st_size
    rec = fs_by_path(hashed_only)[b"/tmp/growing.log"]
    assert "member" not in rec and rec["hashed_bytes"] < size_after
    assert rec.get("changed_during_read") is True
    assert verify_bundle(out).ok
    rec = fs_by_path(out)[b"/tmp/growing.log"]
    copied = member(out, rec["member"])
    hashed = rec["hashed_bytes"]
    # the hash covers exactly the bytes taken, and those are what was copied
    assert hashed == len(copied) and rec["sha256"] == hashlib.sha256(copied).hexdigest()
    assert hashed < size_after
    assert rec.get("changed_during_read") is True
    reasons = skip_for(out, b"/tmp/growing.log")
    assert any("changed while being read" in r for r in reasons), reasons


def test_process_rewriting_its_cmdline(lab: Any, hostile_bin: Path, tmp_path: Path) -> None:
    fake = "[kworker/0:1] \x1b]0;pwn\x07 [bold red]x[/]\nnext"
    with lab.runc() as box:
        install(box, hostile_bin)
        pid = run_inside(box, "argv", fake, "padding-" + "p" * 64, log=tmp_path / "argv.log")
        deadline = time.monotonic() + 60
        while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(fake.encode()[:10]):
            assert time.monotonic() < deadline, "the process never rewrote its command line"
            time.sleep(0.02)
        kernel_view = Path(f"/proc/{pid}/cmdline").read_bytes()
        out = tmp_path / "argv.exv"
        capture_cli(box, out, "--files", "none")
    procs = artifacts(out)["processes"]
    rec = next(p for p in procs if p["pid"] == pid)
    # recorded exactly as the kernel shows it, and the exe link tells the truth
    got = "\0".join(rec["cmdline"]).encode()
    assert kernel_view.rstrip(b"\0").startswith(got) or got.startswith(kernel_view.rstrip(b"\0"))
    assert rec["cmdline"][0].startswith("[kworker/0:1] \x1b]0;pwn\x07")
    assert rec["exe"] == "/hostile"
    assert rec["name"] == fake[:15]
    res = run_exuvia("timeline", str(out), timeout=300)
    assert res.returncode == 0 and "\x1b" not in res.stdout and "\x07" not in res.stdout


def test_files_deleted_mid_walk_are_recorded_skips(lab: Any, tmp_path: Path) -> None:
    """Deterministic: the capture's own progress callback (called every 512
    entries) deletes the rest of a big directory and a directory still to walk."""
    with lab.runc() as box:
        base = Path(f"{box.root}/aaa-vanish")  # walked early: sorted first under /
        (base / "files").mkdir(parents=True)
        for i in range(3000):
            (base / "files" / f"f{i:05d}").write_bytes(b"x")
        (base / "later").mkdir()
        (base / "later" / "f").write_bytes(b"y")
        deleted: list[str] = []

        def progress(phase: str, stats: Any) -> None:
            if phase == "filesystem" and stats is not None and not deleted:
                for p in (base / "files").iterdir():
                    p.unlink()
                (base / "later" / "f").unlink()
                (base / "later").rmdir()
                deleted.append("yes")

        with pytest.MonkeyPatch.context():
            res = capture(
                resolve(box.uri),
                CaptureOptions(output=tmp_path / "v.exv", examiner="t", files="all"),
                progress,
            )
    assert deleted and res.complete
    assert verify_bundle(res.path).ok
    skips = skips_of(res.path)
    vanished = [s for s in skips if s["subject"].startswith("/aaa-vanish/files/")]
    assert vanished and all(
        s["reason"] in ("vanished during the walk",) and s["errno"] == "ENOENT" for s in vanished
    )
    later = [s for s in skips if s["subject"] == "/aaa-vanish/later"]
    assert later and later[0]["reason"] == "directory vanished during the walk"
    fs = fs_by_path(res.path)
    listed = {p.decode() for p in fs if p.startswith(b"/aaa-vanish/files/")}
    # every file is accounted for: listed, or skipped as vanished, or both (its entry
    # was read before the deletion and its content after it)
    assert len(listed | {s["subject"] for s in vanished}) == 3000


def test_churning_directory_never_crashes(lab: Any, hostile_bin: Path, tmp_path: Path) -> None:
    """Files created and deleted all the time by a process inside."""
    with lab.runc() as box:
        install(box, hostile_bin)
        os.mkdir(f"{box.root}/churn")
        run_inside(box, "churn", "/churn", log=tmp_path / "churn.log")
        out = tmp_path / "churn.exv"
        capture_cli(box, out, "--files", "all")
    assert verify_bundle(out).ok
    allowed = ("vanished during the walk", "directory vanished during the walk",
               "replaced during the walk; not read",
               "replaced by a symlink during the walk; not followed")  # fmt: skip
    for s in skips_of(out):
        if s["subject"].startswith("/churn/"):
            assert s["reason"].startswith(allowed), s


# --- a million files ---------------------------------------------------------------


def _million(root: str, n: int) -> None:
    os.mkdir(f"{root}/many")
    fd = os.open(f"{root}/many", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(n):
            os.close(os.open(f"f{i:07d}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def test_a_million_empty_files_in_one_directory(lab: Any, tmp_path: Path) -> None:
    """Memory stays bounded (peak RSS of the capture process) and it finishes."""
    n = 1_000_000
    with lab.runc() as box:
        _million(box.root, n)
        out = tmp_path / "million.exv"
        run = capture_cli(box, out, "--files", "changed", timeout=1800)
    print(f"1M files: {run.seconds:.1f}s, peak RSS {run.maxrss >> 20} MiB")
    assert run.maxrss < RSS_LIMIT, f"peak RSS {run.maxrss >> 20} MiB"
    # ~300 MB of records: counted as they stream by (a reader never holds a
    # JSON member that big in memory)
    found = 0
    tail = b""
    for m in stream_members(out, lambda name: record_collector(name) == "filesystem"):
        while block := m.read(1 << 20):
            chunk = tail + block
            found += chunk.count(b'"path":"/many/f')
            tail = chunk[-32:]
            found -= tail.count(b'"path":"/many/f')
        found += tail.count(b'"path":"/many/f')
    assert found == n
    report = verify_bundle(out)
    assert report.ok and report.complete, report.failures()[:5]


# --- SIGKILL at random points -------------------------------------------------------


def test_sigkill_at_any_point_never_leaves_a_false_complete(lab: Any, tmp_path: Path) -> None:
    """Killed at ten points of a capture of a biggish target: the final name
    either does not exist or holds a complete bundle that verifies; a .partial
    verifies for what it holds (incomplete, truncated, never altered)."""
    rng = random.Random(9)
    with lab.runc() as box:
        big = Path(f"{box.root}/big")
        big.mkdir()
        for i in range(40):
            (big / f"blob{i:02d}").write_bytes(rng.randbytes(4 << 20))
        for i in range(3000):
            (big / f"small{i:04d}").write_bytes(rng.randbytes(512))
        # how long does a whole capture take?
        full = tmp_path / "full.exv"
        whole = capture_cli(box, full, "--files", "all").seconds
        assert verify_bundle(full).ok
        delays = sorted(rng.uniform(0.05, whole * 1.1) for _ in range(10))
        outcomes = []
        for i, delay in enumerate(delays):
            out = tmp_path / f"k{i}.exv"
            proc = subprocess.Popen(
                [sys.executable, "-m", "tui.cli", "capture", box.uri, "-o", str(out),
                 "--files", "all", "-q"],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            partial = out.with_name(out.name + ".partial")
            if out.exists():
                report = verify_bundle(out)
                assert report.ok and report.complete, (delay, report.failures())
                assert not partial.exists()
                outcomes.append("complete")
                continue
            assert not out.with_name(out.name + ".incomplete").exists()
            if not partial.exists():
                outcomes.append("nothing")
                continue
            report = verify_bundle(partial)
            if report.complete:  # killed after the seal, before the rename: all there
                assert report.ok, report.failures()
                outcomes.append("sealed-partial")
                continue
            assert not report.ok
            assert not report.altered and not report.missing and not report.extra, (
                delay, report.failures())  # fmt: skip
            assert report.cut_off and report.exit_status == 3, report.failures()
            v = run_exuvia("verify", str(partial), timeout=120)
            # 3: cut off, every member its checkpoints vouch for matches (never 0, never 1)
            assert v.returncode == 3 and "altered" not in v.stdout.lower(), v.stdout
            assert len(v.stderr.strip().splitlines()) <= 1 and "Traceback" not in v.stderr
            outcomes.append(f"partial({report.members_verified}/{report.members_read})")
    print("SIGKILL outcomes:", list(zip([round(d, 2) for d in delays], outcomes, strict=True)))
    assert any(o.startswith("partial") for o in outcomes)


@pytest.mark.parametrize("runtime", ["podman", "containerd"])
def test_hostile_tree_under_other_runtimes(
    runtime: str, lab: Any, canary: Canary, tmp_path: Path
) -> None:
    """The same tree in a podman and a containerd container, copied with --files all."""
    box: LabContainer = getattr(lab, runtime)()
    try:
        build_hostile_tree(box.root, canary)
        out = tmp_path / f"{runtime}.exv"
        run = run_exuvia("capture", box.uri, "-o", str(out), "--files", "all", "-q",
                         timeout=300, nofile=NOFILE)  # fmt: skip
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    finally:
        subprocess.run(["rm", "-rf", f"{box.root}/hostile/deep"], check=False)
        box.stop()
    assert verify_bundle(out).ok
    raw = decompressed(out)
    assert canary.token not in raw and canary.inner_name.encode() not in raw
    fs = fs_by_path(out)
    assert fs[b"/hostile/sparse"]["sparse"] is True
    assert fs[b"/hostile/links/abs-dir"]["type"] == "symlink"
    assert fs[b"/hostile/special/disk"]["type"] == "blockdev"
    assert fs[b"/hostile/deep" + b"/d" * DEEP + b"/bottom.txt"]["sha256"]
    assert run.maxrss < RSS_LIMIT
