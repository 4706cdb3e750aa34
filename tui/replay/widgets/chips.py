"""Active filters as buttons; pressing one removes that filter."""

from __future__ import annotations

from rich.text import Text
from textual.containers import HorizontalScroll
from textual.message import Message
from textual.widgets import Button, Label

from tui.replay.filters import Filters
from tui.replay.render import safe


class FilterChips(HorizontalScroll):
    """Hidden while no filter is active."""

    class Removed(Message):
        def __init__(self, chip: str) -> None:
            super().__init__()
            self.chip = chip

    async def show(self, filters: Filters, search: str | None, hits: int | None) -> None:
        await self.remove_children()
        chips = filters.chips()
        widgets: list[Label | Button] = [
            Button(Text(label + " ×"), id=f"chip-{cid}", classes="chip", compact=True)
            for cid, label in chips
        ]
        if search:
            count = "…" if hits is None else f"{hits:,}"
            label = Text("search: ").append_text(safe(search)).append(f"  ({count} hits, n/N) ×")
            widgets.append(Button(label, id="chip-search", classes="chip search", compact=True))
        await self.mount_all(widgets)
        self.set_class(not widgets, "empty")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id and event.button.id.startswith("chip-"):
            self.post_message(self.Removed(event.button.id[5:]))
