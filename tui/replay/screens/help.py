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
        ("m", "in the process tree: its captured memory, hex and strings of a region"),
        ("I", "software inventory (SBOM)"), ("B", "bookmarks and notes"),
        ("Y", "YARA matches (exuvia scan); Enter: the match's event"),
    ]),
    ("Case notes (kept beside the bundle, never in it)", [
        ("b", "bookmark"), ("t", "tag"), ("a", "write a note"), ("e", "export the view"),
    ]),
    ("Playback", [("p", "play / pause"), ("[ ]", "slower / faster")]),
    ("", [("Esc", "back"), ("q", "quit")]),
]  # fmt: skip


#: the keys of a case (tui/replay/case_app.py)
CASE_KEYS = [
    ("Moving", [
        ("↑ ↓, PgUp PgDn, wheel", "one event / one screen (more load as you go)"),
        ("g", "go to a time"),
    ]),
    ("Pods", [
        ("p", "which pods to show (space toggles, Enter applies)"), ("a", "every pod again"),
        ("x", "the event's file (sha256), executable or remote address in the other pods; "
              "Enter opens it there"),
        ("D", "sibling comparison: the replicas ranked, what only some have; Enter opens "
              "the record (sockets and environments: their pods)"),
    ]),
    ("Looking", [
        ("!", "every pod's findings, those in several pods first; Enter: the evidence"),
        ("/", "search every pod (full text)"), ("d", "show / hide the detail pane"),
    ]),
    ("", [("Esc", "back"), ("q", "quit")]),
]  # fmt: skip


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, list[tuple[str, str]]]] | None = None) -> None:
        super().__init__()
        self.keys = keys if keys is not None else KEYS

    def compose(self) -> ComposeResult:
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for section, rows in self.keys:
            if section:
                table.add_row("", "")
                table.add_row(f"[b]{section}[/b]", "")
            for k, what in rows:
                table.add_row(k, what)
        with VerticalScroll(id="help"):
            yield Static(table)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
