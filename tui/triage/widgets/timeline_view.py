"""What has been seen so far, in time order: container start, process starts,
files changed since start, timed log lines and the examiner's own actions."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from tui.triage.text import lit, utc


@dataclass(frozen=True, slots=True)
class SeenEvent:
    ts_ns: int
    kind: str
    entity: str
    message: str


class TimelineView(DataTable[Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        for col in ("TIME (UTC)", "KIND", "ENTITY", "MESSAGE"):
            self.add_column(col, key=col)

    def show(self, events: list[SeenEvent]) -> None:
        self.clear()
        for ev in sorted(events, key=lambda e: e.ts_ns):
            style = "yellow" if ev.kind.startswith("triage") else ""
            self.add_row(
                lit(utc(ev.ts_ns)),
                lit(ev.kind, style),
                lit(ev.entity),
                lit(ev.message),
            )
