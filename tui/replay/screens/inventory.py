"""`I`: the software inventory (what `exuvia sbom --format table` prints)."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from forensics.errors import ExuviaError
from forensics.inventory.analyze import build_inventory
from forensics.inventory.report import table_lines
from tui.replay.render import safe


class InventoryScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, bundle: str) -> None:
        super().__init__()
        self.bundle = bundle

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="inventory"):
            yield Static(Text("building the inventory …", style="dim"), id="inventory-body")
        yield Footer()

    def on_mount(self) -> None:
        self.build()

    @work(thread=True)
    def build(self) -> None:
        try:
            inv = build_inventory(self.bundle)
            cov = inv.coverage
            pct = "n/a" if cov.percent is None else f"{cov.percent}%"
            t = Text(
                f"{len(inv.packages)} packages, {cov.total} executables, {cov.accounted} "
                f"accounted for ({pct}), {len(cov.unaccounted)} unaccounted\n\n",
                style="bold",
            )
            for line in table_lines(inv):
                t.append_text(safe(line)).append("\n")
        except ExuviaError as err:
            t = safe(f"inventory failed: {err}", "bold red")
        self.app.call_from_thread(self.query_one("#inventory-body", Static).update, t)
