"""`B`: the case's bookmarks, tags and notes; Enter goes to the event."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, OptionList
from textual.widgets.option_list import Option

from forensics.notes import NotesFile
from forensics.timeutil import iso_ns
from tui.replay.render import safe


class NotesScreen(Screen[int | None]):
    """Dismisses with the time of the chosen note's event."""

    BINDINGS = [Binding("escape,q", "cancel", "Back")]

    def __init__(self, notes: NotesFile) -> None:
        super().__init__()
        self.notes_file = notes

    def compose(self) -> ComposeResult:
        options = []
        for note in self.notes_file.sorted_notes():
            t = Text(iso_ns(note.ts) + "  ")
            if note.bookmarked:
                t.append("★ ", style="yellow")
            if note.tags:
                t.append_text(safe("[" + ", ".join(note.tags) + "] ", "cyan"))
            t.append_text(safe(note.summary[:80]))
            if note.text:
                t.append("\n    ").append_text(safe(note.text, "italic"))
            options.append(Option(t, id=note.key))
        yield OptionList(*options, id="notes")
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        note = self.notes_file.notes.get(event.option.id or "")
        self.dismiss(note.ts if note else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
