"""The pane beside the timeline: everything known about the selected event."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from forensics.notes import Note
from forensics.timeline import Event
from tui.replay.render import fmt_time, safe, safe_block

PIVOTS = {
    "proc": "o: open the process (cmdline, fds, maps, children, sockets)",
    "fs": "o: open the file entry (hash, mode, owner, content preview)",
    "log": "o: the surrounding lines",
}


def pretty(record: Any) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def describe(
    ev: Event,
    *,
    note: Note | None = None,
    zone: tzinfo | None = None,
    raw: Any = None,
    context: list[tuple[int, str, bool]] | None = None,
    pivots: dict[str, str] | None = None,
) -> Text:
    """The detail text of ``ev``; every value from the bundle made literal."""
    t = Text()
    t.append("time   ", style="bold")
    t.append(fmt_time(ev.ts))
    if zone is not None:
        t.append("\n       " + fmt_time(ev.ts, zone))
    t.append("\nkind   ", style="bold")
    t.append(", ".join(ev.kinds) + (f"  ({ev.macb})" if ev.macb else ""))
    t.append("\nsource ", style="bold")
    t.append(ev.source)
    t.append("\nentity ", style="bold")
    t.append_text(safe(ev.entity))
    if ev.flag_names:
        t.append("\nflags  ", style="bold")
        t.append(", ".join(ev.flag_names), style="yellow")
    t.append("\nrecord ", style="bold")
    t.append_text(safe(f"{ev.ref.member} line {ev.ref.line}"))
    t.append("\n\n")
    t.append_text(safe_block(ev.message))
    if note is not None and not note.empty:
        t.append("\n\n")
        if note.bookmarked:
            t.append("★ bookmarked  ", style="bold yellow")
        if note.tags:
            t.append("tags: ", style="bold")
            t.append_text(safe(", ".join(note.tags)))
        if note.text:
            t.append("\nnote: ", style="bold")
            t.append_text(safe_block(note.text))
    hints = PIVOTS if pivots is None else pivots
    if ev.source in hints:
        t.append("\n\n" + hints[ev.source], style="dim")
    if context:
        t.append("\n\nsurrounding lines\n", style="bold")
        for line, text, this in context:
            t.append(f"{line:>7} ", style="dim")
            t.append_text(safe(text, style="reverse" if this else ""))
            t.append("\n")
    record = raw if raw is not None else (dict(ev.attrs) if ev.attrs else None)
    if record:
        t.append("\n\nrecord\n" if not context else "\nrecord\n", style="bold")
        t.append_text(safe_block(pretty(record)))
    return t


class DetailPane(VerticalScroll):
    """Scrollable; its content is replaced whenever the cursor moves."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(Text("no event selected", style="dim"), id="detail-body")

    def show(self, text: Text) -> None:
        self.query_one("#detail-body", Static).update(text)
        self.scroll_home(animate=False)
