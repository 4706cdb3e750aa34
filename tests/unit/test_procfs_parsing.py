"""Parsers of the process and network collectors, on real /proc text and edge cases.

``data/procfs/host`` holds files copied from a Debian 12 host (kernel 6.x);
``data/procfs/netns`` was captured in a fresh network namespace holding known
sockets (tcp 127.0.0.1:8080 listening, tcp6 [::]:8443 listening with an
IPv4-mapped connection to it, udp 127.0.0.1:5353, udp6 [::1]:5354 connected,
an abstract unix listener and a unix datagram socket with a non-UTF-8 path).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from collectors import procfs
from collectors.context import CollectContext
from collectors.network import (
    decode_addr,
    map_ipv4,
    parse_dev,
    parse_fib_trie_local,
    parse_if_inet6,
    parse_inet,
    parse_packet,
    parse_route,
    parse_unix,
)
from collectors.processes import cmdline_fields, collect_processes, redact_environ
from forensics.errors import TargetGone
from forensics.records import Record, Skip
from forensics.textsafe import field_bytes

DATA = Path(__file__).parent / "data" / "procfs"


def data(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


# ------------------------------------------------------------------ process files


def test_stat_real() -> None:
    st = procfs.parse_stat(data("host/stat"))
    assert (st.pid, st.comm, st.state, st.ppid) == (13578, b"cat", "R", 13575)
    assert (st.pgrp, st.session, st.num_threads, st.starttime) == (13575, 3569, 1, 49297)
    assert st.vsize == 3133440 and st.rss_pages == 379
    assert st.flags == 4194304 and not st.flags & procfs.PF_KTHREAD


@pytest.mark.parametrize(
    "comm",
    [b"a) (b", b") (", b"x)", b"(", b"sp ace", b"))) 1 2 3 (((", b"\xff\xfe)"],
)
def test_stat_comm_with_parens_and_spaces(comm: bytes) -> None:
    raw = b"4242 (" + comm + b") S 1 4242 4242 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 2 0 "
    raw += b"12345 1000000 50 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n"
    st = procfs.parse_stat(raw)
    assert st.comm == comm
    assert (st.pid, st.state, st.ppid, st.utime, st.stime) == (4242, "S", 1, 7, 3)
    assert (st.num_threads, st.starttime, st.vsize, st.rss_pages) == (2, 12345, 1000000, 50)


@pytest.mark.parametrize("raw", [b"", b"12 no parens", b"12 (x) S 1 2"])
def test_stat_malformed(raw: bytes) -> None:
    with pytest.raises(ValueError):
        procfs.parse_stat(raw)


def test_status_real() -> None:
    st = procfs.parse_status(data("host/status"))
    assert st["Name"] == "cat"
    assert procfs.parse_ids(st["Uid"]) == {"real": 0, "effective": 0, "saved": 0, "fs": 0}
    assert procfs.parse_int_list(st["NSpid"]) == [13579]
    assert st["Seccomp"] == "0" and st["NoNewPrivs"] == "0"
    names = procfs.decode_caps(st["CapEff"])
    assert "CAP_SYS_ADMIN" in names and "CAP_SYS_RESOURCE" not in names
    assert names[-1] == "CAP_CHECKPOINT_RESTORE"


def test_caps_decode() -> None:
    assert procfs.decode_caps("0000000000000000") == []
    assert procfs.decode_caps("00000000a80425fb")[:3] == [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
    ]
    assert procfs.decode_caps(f"{1 << 45:016x}") == ["CAP_45"]  # a future bit


def test_maps_real_and_deleted() -> None:
    maps = dict(procfs.parse_maps(data("host/maps")))
    assert maps[b"/usr/bin/cat"] is False
    assert b"[heap]" in maps or b"[stack]" in maps
    raw = (
        b"7f00-7f01 r-xp 00000000 00:01 1234 /memfd:payload (deleted)\n"
        b"7f01-7f02 r-xp 00000000 08:01 99 /tmp/with space/lib.so\n"
        b"7f02-7f03 rw-p 00000000 00:00 0 \n"
        b"7f03-7f04 r-xp 00000000 00:01 1234 /memfd:payload (deleted)\n"
    )
    assert procfs.parse_maps(raw) == [
        (b"/memfd:payload", True),
        (b"/tmp/with space/lib.so", False),
    ]


def test_cmdline_non_utf8() -> None:
    raw = b"/app/bin\0--name=\xff\xfe\0\0last\0"
    out = cmdline_fields(raw)
    assert out["cmdline"] == ["/app/bin", "--name=\ufffd\ufffd", "", "last"]
    exact = [base64.b64decode(x) for x in out["cmdline_b64"]]
    assert exact == [b"/app/bin", b"--name=\xff\xfe", b"", b"last"]
    assert "cmdline_b64" not in cmdline_fields(b"a\0b\0")
    assert cmdline_fields(b"")["cmdline"] == []
    assert cmdline_fields(b"no-nul-after-setproctitle")["cmdline"] == ["no-nul-after-setproctitle"]


def test_environ_redaction() -> None:
    raw = (
        b"PATH=/bin\0API_TOKEN=xyz\0db_password=hunter2\0AWS_SECRET_ACCESS_KEY=k\0"
        b"HOME=/\0BAD=\xff\0NOEQUALS\0PATH=/second\0GITHUB_AUTH=a\0CREDENTIALS_FILE=/c\0"
    )
    pairs = procfs.parse_environ(raw)
    env, redacted, raw_b64 = redact_environ(pairs, redact=True)
    assert env["API_TOKEN"] == "<redacted>" and env["db_password"] == "<redacted>"
    assert redacted == [
        "API_TOKEN", "db_password", "AWS_SECRET_ACCESS_KEY", "GITHUB_AUTH", "CREDENTIALS_FILE",
    ]  # fmt: skip
    assert env["PATH"] == "/bin"  # first wins, as getenv(3)
    assert env["NOEQUALS"] == "" and env["HOME"] == "/"
    assert env["BAD"] == "\ufffd" and base64.b64decode(raw_b64["BAD"]) == b"\xff"
    assert "xyz" not in json.dumps([env, raw_b64])
    env2, redacted2, _ = redact_environ(pairs, redact=False)
    assert env2["API_TOKEN"] == "xyz" and redacted2 == []


def test_fdinfo_and_ns_link() -> None:
    info = procfs.parse_fdinfo(b"pos:\t42\nflags:\t02004002\nmnt_id:\t15\nino:\t7\nextra: x\n")
    assert info == {"pos": 42, "flags": "02004002", "mnt_id": 15, "ino": 7}
    assert procfs.parse_ns_link(b"pid:[4026531836]") == 4026531836
    with pytest.raises(ValueError):
        procfs.parse_ns_link(b"/not/a/ns")


def test_read_capped(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    assert procfs.read_capped(str(f), 100) == (b"x" * 100, False)
    assert procfs.read_capped(str(f), 10) == (b"x" * 10, True)


def test_start_ns_arithmetic() -> None:
    assert procfs.start_ns(1_000_000_000_000, 250, 100) == 1_000_000_000_000 + 2_500_000_000
    boot = procfs.boot_time_ns()
    assert abs(boot - procfs.boot_time_ns()) < 50_000_000


# ------------------------------------------------------------------ network files


def test_decode_addr() -> None:
    assert decode_addr("0100007F", "little") == "127.0.0.1"
    assert decode_addr("7F000001", "big") == "127.0.0.1"
    assert decode_addr("00000000000000000000000001000000", "little") == "::1"
    assert decode_addr("0000000000000000FFFF00000100007F", "little") == "::ffff:127.0.0.1"
    # 2001:db8::1 as four little-endian words
    assert decode_addr("B80D0120000000000000000001000000", "little") == "2001:db8::1"
    assert decode_addr("000080FE00000000FF000000000200FE", "little") == "fe80::ff:fe00:200"
    with pytest.raises(ValueError):
        decode_addr("123", "little")


def test_inet_tables_real() -> None:
    tcp = list(parse_inet(data("netns/tcp"), "tcp", "little"))
    assert all(isinstance(e, dict) for e in tcp)
    listen = next(e for e in tcp if isinstance(e, dict) and e["state"] == "LISTEN")
    assert (listen["local_addr"], listen["local_port"], listen["inode"]) == (
        "127.0.0.1",
        8080,
        27729,
    )
    est = next(e for e in tcp if isinstance(e, dict) and e["state"] == "ESTABLISHED")
    assert (est["remote_addr"], est["remote_port"]) == ("127.0.0.1", 8443)

    tcp6 = [e for e in parse_inet(data("netns/tcp6"), "tcp6", "little") if isinstance(e, dict)]
    assert tcp6[0]["local_addr"] == "::" and tcp6[0]["state"] == "LISTEN"
    assert tcp6[1]["local_addr"] == "::ffff:127.0.0.1" and tcp6[1]["local_port"] == 8443
    assert tcp6[1]["remote_port"] == est["local_port"] and tcp6[1]["family"] == "inet6"

    udp = [e for e in parse_inet(data("netns/udp"), "udp", "little") if isinstance(e, dict)]
    assert [(e["local_addr"], e["local_port"], e["state"]) for e in udp] == [
        ("127.0.0.1", 5353, "UNCONN")
    ]
    udp6 = [e for e in parse_inet(data("netns/udp6"), "udp6", "little") if isinstance(e, dict)]
    assert udp6[0]["local_addr"] == "::1" and udp6[0]["state"] == "ESTABLISHED"
    assert udp6[0]["remote_port"] == 5353

    for name in ("tcp6", "udp", "udp6", "raw"):  # header-only tables on the host
        assert list(parse_inet(data(f"host/net/{name}"), name, "little")) == []
    host = [e for e in parse_inet(data("host/net/tcp"), "tcp", "little") if isinstance(e, dict)]
    assert any(e["local_port"] == 2024 and e["state"] == "LISTEN" for e in host)


def test_inet_malformed_line_is_returned() -> None:
    raw = data("netns/tcp") + b"   9: garbage\n"
    out = list(parse_inet(raw, "tcp", "little"))
    assert out[-1] == "   9: garbage"


def test_unix_real() -> None:
    entries = [e for e in parse_unix(data("netns/unix")) if isinstance(e, dict)]
    by_inode = {e["inode"]: e for e in entries}
    abstract = next(e for e in entries if e["abstract"])
    assert abstract["path"] == "@exuvia-abstract"
    assert (abstract["type"], abstract["state"]) == ("STREAM", "LISTEN")
    named = next(e for e in entries if not e["abstract"])
    assert named["type"] == "DGRAM" and named["state"] == "UNCONNECTED"
    assert field_bytes(named, "path") == b"/tmp/exuvia sock\xff"
    assert len(by_inode) == 2
    host = [e for e in parse_unix(data("host/net/unix")) if isinstance(e, dict)]
    assert host and all(e["path"] is None and e["state"] == "CONNECTED" for e in host)


def test_packet() -> None:
    raw = data("host/net/packet") + b"ffff8880aabb0000 3 3 0003 2 1 0 0 31337\n"
    (entry,) = [e for e in parse_packet(raw) if isinstance(e, dict)]
    assert entry["type"] == "RAW" and entry["protocol"] == "0x0003"
    assert (entry["ifindex"], entry["inode"], entry["running"]) == (2, 31337, True)


def test_dev_real() -> None:
    devs = parse_dev(data("host/net/dev"))
    assert "lo" in devs and "eth0" in devs
    assert devs["lo"]["rx_bytes"] == devs["lo"]["tx_bytes"]
    assert set(parse_dev(data("netns/dev"))) == {"lo"}


def test_if_inet6_real() -> None:
    addrs = parse_if_inet6(data("host/net/if_inet6"))
    by_addr = {a["addr"]: a for a in addrs}
    assert by_addr["::1"]["interface"] == "lo" and by_addr["::1"]["scope"] == "host"
    assert by_addr["fe80::fc:ff:fe00:1"]["scope"] == "link"
    assert by_addr["fd00::2"]["prefix_len"] == 64 and by_addr["fd00::2"]["ifindex"] == 4


def test_route_fib_trie_and_mapping_real() -> None:
    routes = parse_route(data("host/net/route"), "little")
    assert routes[0]["gateway"] == "192.0.2.1" and routes[0]["prefix_len"] == 0
    assert (routes[1]["destination"], routes[1]["prefix_len"]) == ("192.0.2.0", 24)
    addrs = parse_fib_trie_local(data("host/net/fib_trie"))
    assert addrs == ["127.0.0.1", "192.0.2.2"]  # not 127.0.0.0 (/8) nor broadcasts
    mapped = map_ipv4(addrs, routes, ["lo", "eth0"])
    assert mapped["127.0.0.1"] == ("lo", 8, "loopback")
    assert mapped["192.0.2.2"] == ("eth0", 24, "route-subnet")
    assert parse_fib_trie_local(data("netns/fib_trie")) == ["127.0.0.1"]
    assert parse_route(data("netns/route"), "little") == []


def test_ipv4_mapping_fallbacks() -> None:
    # a calico-style pod: a /32 on eth0, only a link route to the gateway and a default
    routes = [
        {"interface": "eth0", "destination": "0.0.0.0", "prefix_len": 0},
        {"interface": "eth0", "destination": "169.254.1.1", "prefix_len": 32},
    ]
    assert map_ipv4(["10.1.2.3"], routes, ["lo", "eth0"])["10.1.2.3"] == (
        "eth0", None, "only-routed-interface",
    )  # fmt: skip
    routes.append({"interface": "eth1", "destination": "0.0.0.0", "prefix_len": 0})
    assert map_ipv4(["10.1.2.3"], routes, ["lo", "eth0", "eth1"])["10.1.2.3"][2] == "unmapped"


# ------------------------------------------------------------------ a fake procfs root


def _fake_proc(
    root: Path, pid: int, comm: bytes, ppid: int, nspid: str, ns: int, **files: bytes
) -> None:
    d = root / str(pid)
    (d / "ns").mkdir(parents=True)
    (d / "fd").mkdir()
    (d / "fdinfo").mkdir()
    os.symlink(f"pid:[{ns}]", d / "ns" / "pid")
    os.symlink("net:[777]", d / "ns" / "net")
    stat = f"{pid} (".encode() + comm + f") S {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0 ".encode()
    stat += b"150 50 0 0 20 0 1 0 1000 4096 2 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n"
    (d / "stat").write_bytes(stat)
    (d / "status").write_text(
        f"Name:\tx\nState:\tS (sleeping)\nPPid:\t{ppid}\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\n"
        f"NSpid:\t{nspid}\nCapEff:\t0000000000000400\nCapPrm:\t0\nCapBnd:\t0\n"
        "NoNewPrivs:\t1\nSeccomp:\t2\n"
    )
    for name, content in files.items():
        (d / name).write_bytes(content)
    os.symlink("/usr/bin/app (deleted)", d / "exe")
    os.symlink("socket:[9001]", d / "fd" / "3")
    (d / "fdinfo" / "3").write_bytes(b"pos:\t0\nflags:\t02\nmnt_id:\t9\n")


def test_collect_processes_on_fake_root(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    _fake_proc(root, 100, b"init) (x", 50, "100 1", 42, environ=b"API_TOKEN=xyz\0A=b\0")
    _fake_proc(root, 101, b"child", 100, "101 7", 42, cmdline=b"child\0\xff\0")
    _fake_proc(root, 102, b"other", 1, "102", 41)  # another PID namespace
    _fake_proc(root, 103, b"broken", 100, "103 8", 42)
    (root / "103" / "stat").write_bytes(b"103 garbage")
    out = list(collect_processes(CollectContext(pid=100, procfs=str(root))))
    recs = {r.data["pid"]: r.data for r in out if isinstance(r, Record)}
    skips = [s for s in out if isinstance(s, Skip)]
    assert set(recs) == {100, 101}
    assert [s.subject for s in skips] == ["pid 103"] and "malformed stat" in skips[0].reason
    init, child = recs[100], recs[101]
    assert (init["name"], init["nspid"], init["nsppid"], init["ppid"]) == ("init) (x", 1, 0, 50)
    assert (child["nspid"], child["nsppid"], child["nspid_chain"]) == (7, 1, [101, 7])
    assert init["environ"] == {"API_TOKEN": "<redacted>", "A": "b"}
    assert init["environ_redacted"] == ["API_TOKEN"]
    assert child["cmdline_b64"][1] == base64.b64encode(b"\xff").decode()
    assert init["exe_deleted"] is True and init["exe"] == "/usr/bin/app (deleted)"
    assert init["fds"] == [
        {"fd": 3, "target": "socket:[9001]", "pos": 0, "flags": "02", "mnt_id": 9}
    ]
    assert init["uid"] == {"real": 1, "effective": 2, "saved": 3, "fs": 4}
    assert init["cap_eff_names"] == ["CAP_NET_BIND_SERVICE"]
    assert (init["seccomp"], init["seccomp_mode"], init["no_new_privs"]) == (2, "filter", True)
    assert (init["cpu_user_s"], init["cpu_system_s"]) == (1.5, 0.5)
    assert init["namespaces"] == {"net": 777, "pid": 42}
    assert init["maps"] is None and init["cgroup"] is None  # absent files: None, no Skip
    json.dumps(list(recs.values()))
    redacted_off = list(collect_processes(CollectContext(pid=100, procfs=str(root), redact=False)))
    assert any(
        isinstance(r, Record) and r.data["environ"].get("API_TOKEN") == "xyz" for r in redacted_off
    )
    with pytest.raises(TargetGone):
        list(collect_processes(CollectContext(pid=999, procfs=str(root))))
