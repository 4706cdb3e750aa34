"""The network collector: "socket", "interface" and "netns" records.

Everything comes from ``<procfs>/<pid>/net/…``, which shows the TARGET's network
namespace. Socket owners are found by scanning the fds (``socket:[inode]``) of
every process in the target's PID namespace; sockets held only by processes
outside it (e.g. a pod sidecar) keep an empty ``owners`` list.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from typing import Any, Literal

from collectors import procfs
from collectors.context import CollectContext
from collectors.processes import last_nspid, namespace_members
from forensics.errors import TargetGone
from forensics.records import Record, Skip, skip_from_oserror
from forensics.textsafe import bytes_field

COLLECTOR = "network"
Endian = Literal["little", "big"]

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
    11: "CLOSING", 12: "NEW_SYN_RECV",
}  # fmt: skip
DGRAM_STATES = {1: "ESTABLISHED", 7: "UNCONN"}
UNIX_TYPES = {1: "STREAM", 2: "DGRAM", 5: "SEQPACKET"}
UNIX_STATES = {0: "FREE", 1: "UNCONNECTED", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING"}
UNIX_ACCEPTCON = 0x10000
PACKET_TYPES = {1: "STREAM", 2: "DGRAM", 3: "RAW", 10: "PACKET"}
IPV6_SCOPES = {0x00: "global", 0x10: "host", 0x20: "link", 0x40: "site", 0x80: "compat"}

# (table, family, required): a missing required table is worth a Skip
INET_TABLES = (
    ("tcp", 4, True), ("tcp6", 6, True), ("udp", 4, True), ("udp6", 6, True),
    ("raw", 4, False), ("raw6", 6, False), ("icmp", 4, False), ("icmp6", 6, False),
)  # fmt: skip
IPV4_METHOD = (
    "fib_trie '/32 host LOCAL' leaves; interface = longest matching subnet in net/route, "
    "127.0.0.0/8 -> loopback, else the only interface with a route"
)


# ---------------------------------------------------------------- decoding


def decode_addr(hexaddr: str, byteorder: Endian = sys.byteorder) -> str:
    """An address from net/tcp*, udp*: 32-bit words printed in host byte order.

    IPv4-mapped IPv6 addresses are rendered ``::ffff:a.b.c.d``.
    """
    if len(hexaddr) not in (8, 32):
        raise ValueError(f"bad address {hexaddr!r}")
    raw = b"".join(
        int(hexaddr[i : i + 8], 16).to_bytes(4, byteorder) for i in range(0, len(hexaddr), 8)
    )
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    v6 = ipaddress.IPv6Address(raw)
    return f"::ffff:{v6.ipv4_mapped}" if v6.ipv4_mapped else str(v6)


def _endpoint(text: str, byteorder: Endian) -> tuple[str, int]:
    addr, _, port = text.partition(":")
    return decode_addr(addr, byteorder), int(port, 16)


def parse_inet(
    raw: bytes, proto: str, byteorder: Endian = sys.byteorder
) -> Iterator[dict[str, Any] | str]:
    """Entries of net/{tcp,udp,raw,icmp}[6]; a malformed line is yielded as its text."""
    states = TCP_STATES if proto.startswith("tcp") else DGRAM_STATES
    for line in raw.decode("ascii", "replace").splitlines()[1:]:
        f = line.split()
        if not f:
            continue
        try:
            laddr, lport = _endpoint(f[1], byteorder)
            raddr, rport = _endpoint(f[2], byteorder)
            st = int(f[3], 16)
            txq, _, rxq = f[4].partition(":")
            yield {
                "proto": proto,
                "family": "inet6" if proto.endswith("6") else "inet",
                "local_addr": laddr,
                "local_port": lport,
                "remote_addr": raddr,
                "remote_port": rport,
                "state": states.get(st, f"0x{st:02X}"),
                "state_code": st,
                "tx_queue": int(txq, 16),
                "rx_queue": int(rxq, 16),
                "uid": int(f[7]),
                "inode": int(f[9]),
            }
        except (IndexError, ValueError):
            yield line


def parse_unix(raw: bytes) -> Iterator[dict[str, Any] | bytes]:
    """Entries of net/unix; abstract names start with '@'. Malformed lines as bytes."""
    for line in raw.splitlines()[1:]:
        f = line.split(None, 7)
        if not f:
            continue
        try:
            flags, typ, st = int(f[3], 16), int(f[4], 16), int(f[5], 16)
            rec: dict[str, Any] = {
                "proto": "unix",
                "family": "unix",
                "type": UNIX_TYPES.get(typ, str(typ)),
                "state": "LISTEN" if flags & UNIX_ACCEPTCON else UNIX_STATES.get(st, str(st)),
                "state_code": st,
                "flags": flags,
                "refcount": int(f[1], 16),
                "inode": int(f[6]),
            }
        except (IndexError, ValueError):
            yield line
            continue
        path = f[7] if len(f) > 7 else None
        if path is None:
            rec["path"] = None
            rec["abstract"] = False
        else:
            rec.update(bytes_field("path", path))
            rec["abstract"] = path.startswith(b"@")
        yield rec


def parse_packet(raw: bytes) -> Iterator[dict[str, Any] | str]:
    """Entries of net/packet (sk RefCnt Type Proto Iface R Rmem User Inode)."""
    for line in raw.decode("ascii", "replace").splitlines()[1:]:
        f = line.split()
        if not f:
            continue
        try:
            typ = int(f[2])
            yield {
                "proto": "packet",
                "family": "packet",
                "type": PACKET_TYPES.get(typ, str(typ)),
                "protocol": f"0x{int(f[3], 16):04x}",
                "ifindex": int(f[4]),
                "running": f[5] == "1",
                "rx_queue": int(f[6]),
                "uid": int(f[7]),
                "inode": int(f[8]),
            }
        except (IndexError, ValueError):
            yield line


DEV_FIELDS = (
    "rx_bytes", "rx_packets", "rx_errors", "rx_drop", "rx_fifo", "rx_frame",
    "rx_compressed", "rx_multicast", "tx_bytes", "tx_packets", "tx_errors", "tx_drop",
    "tx_fifo", "tx_colls", "tx_carrier", "tx_compressed",
)  # fmt: skip


def parse_dev(raw: bytes) -> dict[str, dict[str, int]]:
    """net/dev: {interface name: counters}."""
    out: dict[str, dict[str, int]] = {}
    for line in raw.decode("utf-8", "replace").splitlines()[2:]:
        name, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or len(values) < len(DEV_FIELDS) or not all(v.isdigit() for v in values):
            continue
        out[name.strip()] = dict(zip(DEV_FIELDS, map(int, values), strict=False))
    return out


def parse_if_inet6(raw: bytes) -> list[dict[str, Any]]:
    """net/if_inet6: the 16 address bytes are printed in network order."""
    out: list[dict[str, Any]] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        f = line.split()
        if len(f) != 6 or len(f[0]) != 32:
            continue
        try:
            scope = int(f[3], 16)
            out.append(
                {
                    "interface": f[5],
                    "addr": str(ipaddress.IPv6Address(bytes.fromhex(f[0]))),
                    "ifindex": int(f[1], 16),
                    "prefix_len": int(f[2], 16),
                    "scope": IPV6_SCOPES.get(scope, f"0x{scope:02x}"),
                    "flags": int(f[4], 16),
                }
            )
        except ValueError:
            continue
    return out


def parse_route(raw: bytes, byteorder: Endian = sys.byteorder) -> list[dict[str, Any]]:
    """net/route (the main IPv4 table); addresses as host-order 32-bit hex."""
    out: list[dict[str, Any]] = []
    for line in raw.decode("utf-8", "replace").splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            mask = decode_addr(f[7], byteorder)
            out.append(
                {
                    "interface": f[0],
                    "destination": decode_addr(f[1], byteorder),
                    "gateway": decode_addr(f[2], byteorder),
                    "flags": int(f[3], 16),
                    "metric": int(f[6]),
                    "mask": mask,
                    "prefix_len": ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen,
                }
            )
        except ValueError:
            continue
    return out


def parse_fib_trie_local(raw: bytes) -> list[str]:
    """IPv4 addresses of this namespace: leaves with a ``/32 host LOCAL`` line."""
    addrs: list[str] = []
    leaf: str | None = None
    for line in raw.decode("utf-8", "replace").splitlines():
        s = line.strip()
        if s.startswith("|--"):
            leaf = s[3:].strip()
        elif not s.startswith("/"):
            leaf = None  # a subtree ("+--") or a table header ("Local:")
        elif leaf and s.split() == ["/32", "host", "LOCAL"] and leaf not in addrs:
            addrs.append(leaf)
    return addrs


def map_ipv4(
    addrs: list[str], routes: list[dict[str, Any]], ifnames: list[str]
) -> dict[str, tuple[str | None, int | None, str]]:
    """{addr: (interface, prefix_len, method)} per :data:`IPV4_METHOD`."""
    out: dict[str, tuple[str | None, int | None, str]] = {}
    loopback = "lo" if "lo" in ifnames else None
    route_ifs = sorted({r["interface"] for r in routes})
    for addr in addrs:
        ip = ipaddress.IPv4Address(addr)
        best: dict[str, Any] | None = None
        for r in routes:
            if r["prefix_len"] == 0 or r["interface"] == "*":
                continue
            net = ipaddress.IPv4Network(f"{r['destination']}/{r['prefix_len']}", strict=False)
            if ip in net and (best is None or r["prefix_len"] > best["prefix_len"]):
                best = r
        if best is not None:
            out[addr] = (best["interface"], best["prefix_len"], "route-subnet")
        elif ip.is_loopback:
            out[addr] = (loopback, 8, "loopback")
        elif len(route_ifs) == 1:
            out[addr] = (route_ifs[0], None, "only-routed-interface")
        else:
            out[addr] = (None, None, "unmapped")
    return out


# ---------------------------------------------------------------- collecting


def _read(ctx: CollectContext, name: str, required: bool, skips: list[Skip]) -> bytes | None:
    try:
        data, truncated = procfs.read_capped(f"{ctx.proc_dir}/net/{name}")
    except OSError as err:
        if required or not procfs.is_gone(err):
            skips.append(skip_from_oserror(COLLECTOR, f"net/{name}", err, "cannot read"))
        return None
    if truncated:
        cap = procfs.MAX_READ
        skips.append(Skip(COLLECTOR, f"net/{name}", f"truncated at {cap} bytes", None,
                          {"cap_bytes": cap}))  # fmt: skip
    return data


def socket_owners(
    ctx: CollectContext, members: list[int], skips: list[Skip]
) -> dict[int, list[dict[str, Any]]]:
    """{socket inode: [{pid, nspid, name, fd}]} over the fds of ``members``."""
    owners: dict[int, list[dict[str, Any]]] = {}
    for pid in members:
        base = f"{ctx.procfs}/{pid}"
        try:
            status = procfs.parse_status(procfs.read_capped(f"{base}/status")[0])
            comm = procfs.parse_stat(procfs.read_capped(f"{base}/stat")[0]).comm
            fds = list(procfs.iter_fds(ctx.procfs, pid))
        except (OSError, ValueError) as err:
            if isinstance(err, OSError) and not procfs.is_gone(err):
                skips.append(skip_from_oserror(COLLECTOR, f"pid {pid}", err, "cannot scan fds"))
            continue
        for fd, target in fds:
            if fd < 0:
                reason = f"more than {procfs.MAX_FDS} fds; sockets past the cap have no owner"
                skips.append(Skip(COLLECTOR, f"pid {pid}", reason))
            elif target is not None and target.startswith(b"socket:["):
                owner = {
                    "pid": pid,
                    "nspid": last_nspid(status),
                    "fd": fd,
                    **bytes_field("name", comm),
                }
                owners.setdefault(int(target[8:-1]), []).append(owner)
    return owners


def collect_network(ctx: CollectContext) -> Iterator[Record | Skip]:
    """Yield "socket", "interface" and one "netns" record for the target's netns.

    Raises TargetGone (on first iteration) if the target has already exited.
    """
    members, skips = namespace_members(ctx, COLLECTOR)
    try:
        netns: int | None = procfs.parse_ns_link(procfs.readlink(f"{ctx.proc_dir}/ns/net"))
    except OSError as err:
        if procfs.is_gone(err):
            raise TargetGone(f"target pid {ctx.pid} is gone from {ctx.procfs}") from err
        skips.append(skip_from_oserror(COLLECTOR, "ns/net", err, "cannot readlink"))
        netns = None
    except ValueError:
        netns = None
    owners = socket_owners(ctx, members, skips)
    yield from skips
    skips.clear()

    def emit(entry: dict[str, Any] | str | bytes, table: str) -> Record | Skip:
        if not isinstance(entry, dict):
            text = entry.decode("utf-8", "replace") if isinstance(entry, bytes) else entry
            return Skip(COLLECTOR, f"net/{table}", "malformed line", None, {"line": text[:200]})
        entry["netns"] = netns
        entry["owners"] = owners.get(entry["inode"], [])
        return Record("socket", entry)

    for table, _family, required in INET_TABLES:
        raw = _read(ctx, table, required, skips)
        if raw is not None:
            yield from (emit(e, table) for e in parse_inet(raw, table))
    raw = _read(ctx, "unix", True, skips)
    if raw is not None:
        yield from (emit(e, "unix") for e in parse_unix(raw))
    raw = _read(ctx, "packet", False, skips)
    if raw is not None:
        yield from (emit(e, "packet") for e in parse_packet(raw))

    dev_raw = _read(ctx, "dev", True, skips)
    devs = parse_dev(dev_raw) if dev_raw is not None else {}
    v6_raw = _read(ctx, "if_inet6", False, skips)
    v6 = parse_if_inet6(v6_raw) if v6_raw is not None else []
    route_raw = _read(ctx, "route", True, skips)
    routes = parse_route(route_raw) if route_raw is not None else []
    fib_raw = _read(ctx, "fib_trie", True, skips)
    v4_addrs = parse_fib_trie_local(fib_raw) if fib_raw is not None else []
    v4_map = map_ipv4(v4_addrs, routes, list(devs))
    yield from skips

    for name, counters in devs.items():
        ifindex = next((a["ifindex"] for a in v6 if a["interface"] == name), None)
        yield Record(
            "interface",
            {
                "name": name,
                "ifindex": ifindex,
                "netns": netns,
                **counters,
                "ipv4": [
                    {"addr": a, "prefix_len": p, "method": m}
                    for a, (n, p, m) in v4_map.items()
                    if n == name
                ],
                "ipv6": [
                    {k: v for k, v in a.items() if k != "interface"}
                    for a in v6
                    if a["interface"] == name
                ],
                "ipv4_method": IPV4_METHOD,
            },
        )
    yield Record(
        "netns",
        {
            "inode": netns,
            "pid": ctx.pid,
            "ipv4_local": v4_addrs,
            "ipv4_unmapped": [a for a, (n, _, _) in v4_map.items() if n is None],
            "routes": routes,
            "ipv4_method": IPV4_METHOD,
        },
    )
