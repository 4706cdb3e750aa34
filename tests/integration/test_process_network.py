"""The process and network collectors against real processes in their own namespaces.

A helper started with ``unshare --pid --net --fork --mount-proc`` becomes PID 1
of a new PID namespace in a new network namespace. It brings ``lo`` up, listens
on TCP 127.0.0.1:8080, forks a child (comm ``kid) (x``) that binds UDP
127.0.0.1:5353, carries API_TOKEN=xyz in its environment and a non-UTF-8 argv
element. The collectors are pointed at its host pid and must see exactly those
two processes and sockets, and nothing of the host.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from collectors import procfs
from collectors.context import CollectContext
from collectors.network import collect_network
from collectors.processes import collect_processes
from forensics.errors import TargetGone
from forensics.records import Record, Skip

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)"),
]

HELPER = r"""
import fcntl, os, socket, struct, sys, time
s = socket.socket()
ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b""))  # SIOCGIFFLAGS
flags = struct.unpack("16sH", ifr[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))  # SIOCSIFFLAGS: up
s.close()
tcp = socket.socket()
tcp.bind(("127.0.0.1", 8080))
tcp.listen()
r, w = os.pipe()
kid = os.fork()
if kid == 0:
    tcp.close()
    with open("/proc/self/comm", "w") as f:
        f.write("kid) (x")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 5353))
    os.write(w, b"k")
    while True:
        time.sleep(3600)
os.read(r, 1)
print("ready", kid, flush=True)
sys.stdin.read()
"""
ODD_ARG = b"--tag=\xff\xfe"


@dataclass
class Sandbox:
    init_pid: int
    kid_pid: int
    spawned_ns: int  # time.time_ns() just before the helper was started
    unshare: subprocess.Popen[bytes]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def _wait_children(pid: int, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(pid)
        if kids:
            return kids
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} got no child within {timeout}s")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "API_TOKEN": "xyz", "HOME": "/"}
    argv = [b"unshare", b"--pid", b"--net", b"--fork", b"--mount-proc", os.fsencode(sys.executable)]
    argv += [b"-c", HELPER.encode(), ODD_ARG]
    spawned = time.time_ns()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == [b"ready"], f"helper did not start: {line!r}"
        (init_pid,) = _wait_children(proc.pid)
        (kid_pid,) = _wait_children(init_pid)
        yield Sandbox(init_pid, kid_pid, spawned, proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # init exits; the kernel kills the rest of the namespace
        proc.wait(timeout=10)


def _records(items: list[Record | Skip], kind: str) -> list[dict[str, Any]]:
    return [r.data for r in items if isinstance(r, Record) and r.kind == kind]


def test_processes_exact(sandbox: Sandbox) -> None:
    items = list(collect_processes(CollectContext(pid=sandbox.init_pid)))
    assert all(isinstance(i, Record | Skip) for i in items)
    assert [s for s in items if isinstance(s, Skip)] == []
    procs = {p["pid"]: p for p in _records(items, "process")}
    assert set(procs) == {sandbox.init_pid, sandbox.kid_pid}  # and nothing of the host
    init, kid = procs[sandbox.init_pid], procs[sandbox.kid_pid]

    assert (init["nspid"], init["nsppid"], init["ppid"]) == (1, 0, sandbox.unshare.pid)
    assert init["nspid_chain"] == [sandbox.init_pid, 1]
    assert (kid["nspid"], kid["nsppid"], kid["ppid"]) == (2, 1, sandbox.init_pid)
    assert kid["name"] == "kid) (x" and init["name"] == os.path.basename(sys.executable)[:15]

    assert init["exe"] == os.path.realpath(sys.executable)
    assert not init["exe_deleted"] and not init["exe_memfd"]
    assert init["cwd"] == "/" and init["root"] == "/"
    assert init["cmdline"][:2] == [sys.executable, "-c"]
    exact = [base64.b64decode(a) for a in init["cmdline_b64"]]
    assert exact[-1] == ODD_ARG and init["cmdline"][-1] == "--tag=\ufffd\ufffd"

    for p in (init, kid):
        assert p["environ"]["API_TOKEN"] == "<redacted>"
        assert p["environ_redacted"] == ["API_TOKEN"] and p["environ"]["HOME"] == "/"
        assert p["uid"] == {"real": 0, "effective": 0, "saved": 0, "fs": 0}
        assert p["namespaces"]["pid"] != procfs.pidns_inode("/proc", os.getpid())
        assert p["namespaces"]["net"] == init["namespaces"]["net"]
        assert p["threads"] == 1 and p["state"] in ("S", "R") and p["rss_bytes"] > 0
        assert p["start_clock"] == procfs.START_CLOCK
        assert any(m["path"] == init["exe"] for m in p["maps"])

    # start time: within a second of when the test started the helper
    assert sandbox.spawned_ns - 50_000_000 <= init["start_ns"] <= sandbox.spawned_ns + 1_000_000_000
    assert init["start_ns"] <= kid["start_ns"] <= init["start_ns"] + 1_000_000_000

    socks = [f["target"] for f in init["fds"] if f["target"].startswith("socket:")]
    assert socks, init["fds"]


def test_processes_redaction_off(sandbox: Sandbox) -> None:
    items = list(collect_processes(CollectContext(pid=sandbox.init_pid, redact=False)))
    for p in _records(items, "process"):
        assert p["environ"]["API_TOKEN"] == "xyz" and p["environ_redacted"] == []


def test_network(sandbox: Sandbox) -> None:
    items = list(collect_network(CollectContext(pid=sandbox.init_pid)))
    netns = procfs.parse_ns_link(procfs.readlink(f"/proc/{sandbox.init_pid}/ns/net"))
    assert netns != procfs.parse_ns_link(procfs.readlink("/proc/self/ns/net"))
    socks = _records(items, "socket")
    inet = [s for s in socks if s["family"].startswith("inet")]
    assert {(s["proto"], s["local_addr"], s["local_port"], s["state"]) for s in inet} == {
        ("tcp", "127.0.0.1", 8080, "LISTEN"),
        ("udp", "127.0.0.1", 5353, "UNCONN"),
    }
    tcp = next(s for s in inet if s["proto"] == "tcp")
    udp = next(s for s in inet if s["proto"] == "udp")
    assert [(o["pid"], o["nspid"]) for o in tcp["owners"]] == [(sandbox.init_pid, 1)]
    assert [(o["pid"], o["nspid"], o["name"]) for o in udp["owners"]] == [
        (sandbox.kid_pid, 2, "kid) (x")
    ]
    assert all(s["netns"] == netns for s in socks)

    ifaces = {i["name"]: i for i in _records(items, "interface")}
    assert set(ifaces) == {"lo"}
    lo = ifaces["lo"]
    assert [a["addr"] for a in lo["ipv4"]] == ["127.0.0.1"] and lo["netns"] == netns
    assert lo["ipv4"][0]["method"] == "loopback"
    assert {a["addr"] for a in lo["ipv6"]} <= {"::1"}
    (ns_rec,) = _records(items, "netns")
    assert ns_rec["inode"] == netns and ns_rec["ipv4_local"] == ["127.0.0.1"]


def test_process_exiting_mid_collection(sandbox: Sandbox) -> None:
    if shutil.which("nsenter") is None:
        pytest.skip("needs nsenter(1)")
    # A third process in the namespace whose parent (nsenter) stays on the host.
    enter = subprocess.Popen(
        ["nsenter", "--target", str(sandbox.init_pid), "--pid", "--", "sleep", "600"]
    )
    try:
        (victim,) = _wait_children(enter.pid)
        gen = collect_processes(CollectContext(pid=sandbox.init_pid))
        first = next(gen)  # the target comes first; membership is already fixed
        assert isinstance(first, Record) and first.data["pid"] == sandbox.init_pid
        os.kill(victim, 9)  # nsenter, its parent on the host, reaps it and exits
        enter.wait(timeout=10)
        deadline = time.monotonic() + 60
        while os.path.exists(f"/proc/{victim}") and time.monotonic() < deadline:
            time.sleep(0.01)
        rest = list(gen)
    finally:
        if enter.poll() is None:
            enter.kill()
            enter.wait()
    pids = {r.data["pid"] for r in rest if isinstance(r, Record)}
    assert pids == {sandbox.kid_pid}
    skips = [(s.subject, s.reason) for s in rest if isinstance(s, Skip)]
    assert skips == [(f"pid {victim}", "exited during collection")]


def test_process_outside_parent_has_nsppid_zero(sandbox: Sandbox) -> None:
    if shutil.which("nsenter") is None:
        pytest.skip("needs nsenter(1)")
    enter = subprocess.Popen(
        ["nsenter", "--target", str(sandbox.init_pid), "--pid", "--", "sleep", "600"]
    )
    try:
        (joined,) = _wait_children(enter.pid)
        items = list(collect_processes(CollectContext(pid=sandbox.init_pid)))
    finally:
        enter.kill()
        os.kill(joined, 9)
        enter.wait()
    procs = {p["pid"]: p for p in _records(items, "process")}
    assert set(procs) == {sandbox.init_pid, sandbox.kid_pid, joined}
    assert procs[joined]["nsppid"] == 0 and procs[joined]["ppid"] == enter.pid
    assert procs[joined]["nspid"] >= 3 and procs[joined]["name"] == "sleep"


def test_gone_target_raises() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    for collect in (collect_processes, collect_network):
        with pytest.raises(TargetGone, match=str(proc.pid)):
            list(collect(CollectContext(pid=proc.pid)))
