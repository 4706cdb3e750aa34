"""`e`: write the current (filtered) view in one of `exuvia timeline`'s formats."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select

from forensics.errors import ExuviaError
from forensics.timeline import FORMATS, Timeline, write_export

if TYPE_CHECKING:
    from tui.replay.app import ReplayApp

EXT = {"jsonl": ".jsonl", "csv": ".csv", "l2tcsv": ".l2tcsv", "bodyfile": ".body"}


class ExportScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, replay: ReplayApp) -> None:
        super().__init__()
        self.replay = replay

    def compose(self) -> ComposeResult:
        default = Path.cwd() / f"{self.replay.bundle.name}.view.jsonl"
        with Vertical(id="export"):
            yield Label(
                Text("Export the current view (filters apply; search does not)", style="bold")
            )
            yield Select(
                [(f, f) for f in FORMATS], value="jsonl", allow_blank=False, id="export-format"
            )
            yield Input(str(default), id="export-path")
            yield Checkbox("with my bookmarks, tags and notes", id="export-notes")
            yield Label("", id="export-result")
            with Horizontal():
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Close", id="export-cancel")

    def on_select_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#export-path", Input)
        p = Path(path.value)
        if p.suffix in EXT.values():
            path.value = str(p.with_suffix(EXT.get(str(event.value), ".jsonl")))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export-go":
            self.export()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True)
    def export(self) -> None:
        fmt = str(self.query_one("#export-format", Select).value)
        out = self.query_one("#export-path", Input).value.strip()
        with_notes = self.query_one("#export-notes", Checkbox).value
        r = self.replay
        notes = r.notes.notes if (with_notes and r.notes is not None) else None
        if r.tl is None or not out:
            return
        try:
            with Timeline(r.tl.path) as tl:
                n = write_export(tl, r.filters.query(), fmt, out, notes=notes)
            msg = Text(f"wrote {n:,} {'file entries' if fmt == 'bodyfile' else 'events'} to {out}",
                       style="green")  # fmt: skip
        except (ExuviaError, ValueError) as err:
            msg = Text(str(err), style="bold red")
        self.app.call_from_thread(self.query_one("#export-result", Label).update, msg)
