"""The target's sockets with their owning processes, for a live table."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.context import CollectContext
from collectors.network import collect_network
from forensics.records import Record


@dataclass(frozen=True, slots=True)
class SocketRow:
    proto: str
    state: str
    local: str
    remote: str
    inode: int
    owners: tuple[str, ...]  # "name[pid]" (pid inside the target's namespace when known)


def _addr(rec: dict[str, object], side: str) -> str:
    addr, port = rec.get(f"{side}_addr"), rec.get(f"{side}_port")
    if addr is None:
        path = rec.get("path")
        return str(path) if path and side == "local" else ""
    return f"[{addr}]:{port}" if ":" in str(addr) else f"{addr}:{port}"


def sample_sockets(ctx: CollectContext) -> list[SocketRow]:
    rows: list[SocketRow] = []
    for item in collect_network(ctx):
        if not isinstance(item, Record) or item.kind != "socket":
            continue
        d = item.data
        owners = tuple(
            f"{o.get('name')}[{o.get('nspid') if o.get('nspid') is not None else o.get('pid')}]"
            for o in d.get("owners") or []
        )
        rows.append(
            SocketRow(
                proto=str(d.get("proto") or d.get("table") or "?"),
                state=str(d.get("state") or ""),
                local=_addr(d, "local"),
                remote=_addr(d, "remote"),
                inode=int(d.get("inode") or 0),
                owners=owners,
            )
        )
    return rows
