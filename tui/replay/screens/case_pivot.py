"""`x` in a case: the event's file, executable or remote address in the other pods."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from forensics.timeline.case import CaseEvent
from forensics.timeline.case_pivots import CasePivots, Keys, Pivot
from tui.replay.render import safe


class PivotScreen(ModalScreen[CaseEvent | None]):
    """Enter opens the other pod's event in the list; Escape goes back."""

    BINDINGS = [Binding("escape,q", "cancel", "Back")]

    def __init__(self, pivots: CasePivots, ce: CaseEvent) -> None:
        super().__init__()
        self.cp = pivots
        self.ce = ce
        self.found: list[Pivot] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="pivot"):
            yield Label(Text("in the other pods", style="bold"), id="pivot-head")
            yield DataTable(id="pivot-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("pivot", "pod", "there", "record"):
            table.add_column(Text(col))
        self.query_one("#pivot-head", Label).update(Text("looking in the other pods …"))
        self.lookup()

    @work(thread=True)
    def lookup(self) -> None:
        keys, found = self.cp.pivots(self.ce)
        self.app.call_from_thread(self._show, keys, found)

    def _show(self, keys: Keys, found: list[Pivot]) -> None:
        self.found = found
        head = Text(f"{self.ce.where.label}: ", style="bold")
        if keys.empty:
            head.append("this event names no file hash, executable or remote address")
        else:
            what = [*(f"sha256 {h[:16]}…" for h in keys.hashes), *keys.exes, *keys.remotes]
            head.append_text(safe(", ".join(what)))
            head.append(f" — {len(found)} in other pods" if found else " — in no other pod")
        for label, why in self.cp.errors.items():
            head.append("\n").append_text(safe(f"not searched: {label}: {why}", "yellow"))
        self.query_one("#pivot-head", Label).update(head)
        table = self.query_one(DataTable)
        for p in found:
            table.add_row(safe(f"{p.kind} {p.key}"), safe(p.where.label), safe(p.detail),
                          safe(f"{p.member}:{p.line}"))  # fmt: skip
        table.focus()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        message.stop()
        i = message.cursor_row
        if 0 <= i < len(self.found):
            ce = self.cp.event_of(self.found[i])
            if ce is None:
                self.notify("that record has no event in the timeline", severity="warning")
                return
            self.dismiss(ce)

    def action_cancel(self) -> None:
        self.dismiss(None)
