"""`Y`: the YARA matches of the capture (`exuvia scan`, `capture --scan`); Enter goes to
the match's event. Rule names, tags, metadata and matched bytes come from the rules
and the evidence: every one is shown through :func:`safe`, never as markup."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from forensics.timeline import Event, Query, Timeline
from tui.replay.render import safe

#: matches listed (the timeline holds every one)
MAX_LISTED = 2000


def match_text(ev: Event) -> Text:
    a = ev.attrs
    t = Text()
    t.append_text(safe(f"{a.get('namespace', '?')}:{a.get('rule', '?')}", "bold red"))
    tags = a.get("tags")
    if isinstance(tags, list) and tags:
        t.append(" ").append_text(safe("[" + ", ".join(map(str, tags)) + "]", "cyan"))
    t.append("  ").append_text(safe(str(a.get("path") or a.get("member") or ev.entity)))
    t.append(f"  @{a.get('offset', '?')}", style="dim")
    meta = a.get("meta")
    if isinstance(meta, dict):
        for k, v in list(meta.items())[:4]:
            t.append("\n    ").append_text(safe(f"{k} = {v}", "italic"))
    strings = a.get("strings")
    if isinstance(strings, list):
        for s in strings[:3]:
            if isinstance(s, dict):
                t.append("\n    ").append_text(
                    safe(f"{s.get('id')} @{s.get('offset')}: {s.get('data')}", "yellow")
                )
    return t


class YaraScreen(Screen[Event | None]):
    """Dismisses with the chosen match's event (None: back)."""

    BINDINGS = [Binding("escape,q", "cancel", "Back")]

    def __init__(self, tl: Timeline) -> None:
        super().__init__()
        self.events = tl.events(Query(kinds=("yara.match",)), limit=MAX_LISTED)

    def compose(self) -> ComposeResult:
        if not self.events:
            hint = "no YARA matches: run `exuvia scan BUNDLE --rules RULES` (or capture --scan)"
            yield Static(Text(hint, style="dim"))
        else:
            yield OptionList(
                *(Option(match_text(ev), id=str(i)) for i, ev in enumerate(self.events)),
                id="yara",
            )
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        i = int(event.option.id or 0)
        self.dismiss(self.events[i] if 0 <= i < len(self.events) else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
