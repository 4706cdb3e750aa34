"""`o` on a log line: the lines around it, as the log has them."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from forensics.timeline import Event
from tui.replay.render import safe

AROUND = 50


class ContextScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, ev: Event, lines: list[tuple[int, str, bool]]) -> None:
        super().__init__()
        self.ev = ev
        self.lines = lines

    def compose(self) -> ComposeResult:
        t = safe(self.ev.ref.member, "bold").append("\n\n")
        for line, text, this in self.lines:
            t.append(f"{line:>8}  ", style="dim")
            t.append_text(safe(text, "reverse" if this else ""))
            t.append("\n")
        with VerticalScroll(id="context"):
            yield Static(t or Text("(no lines)"))
        yield Footer()
