"""The target's sockets and the processes that own them."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from collectors.live.sockets import SocketRow
from tui.triage.text import lit


class SocketTable(DataTable[Text]):
    COLUMNS = ("PROTO", "STATE", "LOCAL", "REMOTE", "INODE", "OWNERS")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for col in self.COLUMNS:
            self.add_column(col, key=col)

    def show(self, rows: list[SocketRow]) -> None:
        self.clear()
        for r in sorted(rows, key=lambda s: (s.proto, s.state != "LISTEN", s.local)):
            style = "bold" if r.state == "LISTEN" else ""
            self.add_row(
                lit(r.proto, style),
                lit(r.state, style),
                lit(r.local, style),
                lit(r.remote),
                lit(r.inode),
                lit(", ".join(r.owners) or "-"),
            )
