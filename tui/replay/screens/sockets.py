"""`S`: every socket of the capture with its owning processes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from forensics.snapshot import Snapshot
from tui.replay.render import safe


class SocketsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, snap: Snapshot) -> None:
        super().__init__()
        self.snap = snap

    def compose(self) -> ComposeResult:
        yield DataTable(id="sockets", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("proto", "state", "local", "remote", "owners", "inode"):
            table.add_column(Text(col))
        for s in self.snap.sockets:
            local = s.get("path") or f"{s.get('local_addr', '')}:{s.get('local_port', '')}"
            remote = (
                f"{s.get('remote_addr', '')}:{s.get('remote_port', '')}"
                if "remote_addr" in s
                else ""
            )
            owners = ", ".join(
                f"{o.get('pid')}/{o.get('name')} fd {o.get('fd')}" for o in s.get("owners") or []
            )
            table.add_row(*(safe(v) for v in (
                s.get("proto") or s.get("family") or "?", s.get("state") or "",
                local, remote, owners or "-", s.get("inode", ""),
            )))  # fmt: skip
        table.focus()
