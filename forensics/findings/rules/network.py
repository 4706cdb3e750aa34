"""Sockets: listeners opened by processes started after the container, outbound
connections, and who holds them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from forensics.findings.facts import (
    Facts,
    Rec,
    proc_evidence,
    proc_label,
    socket_evidence,
    socket_text,
)
from forensics.findings.model import Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "network"
NS = 1_000_000_000


def _owners(facts: Facts, s: Rec) -> list[Rec]:
    out = []
    for o in s.get("owners") or []:
        if isinstance(o, dict) and isinstance(o.get("pid"), int):
            p = facts.process(o["pid"])
            if p is not None and p not in out:
                out.append(p)
    return out


def _loopback(addr: object) -> bool:
    try:
        ip = ipaddress.ip_address(str(addr).removeprefix("::ffff:"))
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _listening(s: Rec, ephemeral: int) -> bool:
    if s.get("family") not in ("inet", "inet6"):
        return False
    if str(s.get("proto", "")).startswith("tcp"):
        return bool(s.get("state") == "LISTEN")
    port = s.get("local_port")
    return bool(
        str(s.get("proto", "")).startswith("udp")
        and s.get("state") == "UNCONN"
        and isinstance(port, int)
        and 0 < port < ephemeral
    )


def late_listener(facts: Facts, rule: Rule) -> Iterator[Hit]:
    start = facts.container_start_ns()
    if start is None:
        return
    grace = int(rule.params["grace_s"] * NS)
    init = facts.init_process()
    for s in facts.sockets:
        if not _listening(s, rule.params["ephemeral_from"]):
            continue
        owners = _owners(facts, s)
        starts = [p.get("start_ns") for p in owners if isinstance(p.get("start_ns"), int)]
        if not owners or init in owners or len(starts) < len(owners):
            continue  # unknown owner, or the main process holds it too
        first = min(starts)
        if first - start <= grace:
            continue
        p = next(p for p in owners if p.get("start_ns") == first)
        ev = (socket_evidence(s, "the listening socket"), *(proc_evidence(o) for o in owners))
        values = {
            "proc": proc_label(p),
            "socket": socket_text(s),
            "port": s.get("local_port"),
            "after": f"{(first - start) / NS:.1f}",
        }
        attrs = {
            "pids": [o.get("pid") for o in owners],
            "local_port": s.get("local_port"),
            "proto": s.get("proto"),
            "started_after_s": round((first - start) / NS, 3),
        }
        yield Hit(f"sock:{s.get('inode')}", values, ev, first, attrs)


def outbound(facts: Facts, rule: Rule) -> Iterator[Hit]:
    ephemeral = rule.params["ephemeral_from"]
    listening = {s.get("local_port") for s in facts.sockets if _listening(s, ephemeral)} | {
        s.get("local_port") for s in facts.sockets if s.get("state") == "LISTEN"
    }
    for s in facts.sockets:
        proto = str(s.get("proto", ""))
        if s.get("family") not in ("inet", "inet6") or _loopback(s.get("remote_addr")):
            continue
        if proto.startswith("tcp") and s.get("state") not in rule.params["tcp_states"]:
            continue
        if proto.startswith("udp") and s.get("state") != "ESTABLISHED":
            continue
        if not proto.startswith(("tcp", "udp")) or s.get("local_port") in listening:
            continue  # an accepted inbound connection, or not a connection at all
        owners = _owners(facts, s)
        ev = (socket_evidence(s, "the connection"), *(proc_evidence(o) for o in owners))
        who = ", ".join(proc_label(o) for o in owners) or "no process of the container"
        values = {
            "remote": f"{s.get('remote_addr')}:{s.get('remote_port')}",
            "proto": proto,
            "state": s.get("state"),
            "who": who,
        }
        attrs = {"pids": [o.get("pid") for o in owners], "remote_addr": s.get("remote_addr"),
                 "remote_port": s.get("remote_port"), "state": s.get("state")}  # fmt: skip
        ts = min((o.get("start_ns") for o in owners if o.get("start_ns")), default=None)
        yield Hit(f"sock:{s.get('inode')}", values, ev, ts, attrs)


RULES = (
    Rule(
        "net.late-listener",
        Severity.HIGH,
        Strength.HEURISTIC,
        "{proc} listens on port {port}, started {after} s after the container: {socket}",
        "A listening socket held only by a process that started after the container's "
        "main process is what a backdoor or a bind shell looks like: the workload's own "
        "listeners are opened by the main process or at start-up.",
        late_listener,
        params={"grace_s": 1.0, "ephemeral_from": 32768},
        caveats="Supervisors (tini, shell entrypoints, process managers) that start the "
        "real server more than the grace period (1 s) after the container also trigger it; "
        "UDP sockets count as listeners when bound below the ephemeral range (32768).",
    ),
    Rule(
        "net.outbound",
        Severity.MEDIUM,
        Strength.DIRECT,
        "outbound {proto} connection to {remote} ({state}) by {who}",
        "Connections the container opened to another host, with the process holding "
        "them: command and control, exfiltration and lateral movement all need one. "
        "Loopback connections and accepted inbound connections are not listed.",
        outbound,
        params={
            "tcp_states": ("ESTABLISHED", "SYN_SENT", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT"),
            "ephemeral_from": 32768,
        },
        caveats="Most services talk to databases and APIs: compare the remote addresses "
        "with what the workload is expected to reach. Only connections open at the moment "
        "of capture are seen; a socket held by a process outside the container's PID "
        "namespace (a sidecar) has no owner here.",
    ),
)
