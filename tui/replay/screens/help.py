"""`?`: every key of the replay app."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Moving", [
        ("↑ ↓ j k, wheel", "one event"), ("PgUp PgDn space", "one screen"),
        ("Home End G", "first / last event"), ("g", "go to a time"),
        ("click histogram", "jump there"), ("+ -", "zoom the histogram in / out"),
    ]),
    ("Narrowing", [
        ("/", "search (full text); n N next / previous hit"),
        ("f", "filters: sources, kinds, entity, time, text"),
        ("1-8", "toggle a source: fs proc log net runtime custody k8s scan"),
        ("c", "clear every filter"), ("click a chip", "remove that filter"),
    ]),
    ("Looking", [
        ("!", "findings, ranked (the view it opens on); Enter: the evidence's row, o: its view"),
        ("o", "open: the process, the file entry, or the log's surrounding lines"),
        ("d", "show / hide the detail pane"), ("z", "UTC / local time"),
        ("P F S", "process tree / file tree / sockets"), ("M", "manifest and custody log"),
        ("I", "software inventory (SBOM)"), ("B", "bookmarks and notes"),
        ("Y", "YARA matches (exuvia scan); Enter: the match's event"),
    ]),
    ("Case notes (kept beside the bundle, never in it)", [
        ("b", "bookmark"), ("t", "tag"), ("a", "write a note"), ("e", "export the view"),
    ]),
    ("Playback", [("p", "play / pause"), ("[ ]", "slower / faster")]),
    ("", [("Esc", "back"), ("q", "quit")]),
]  # fmt: skip


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for section, rows in KEYS:
            if section:
                table.add_row("", "")
                table.add_row(f"[b]{section}[/b]", "")
            for k, what in rows:
                table.add_row(k, what)
        with VerticalScroll(id="help"):
            yield Static(table)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
