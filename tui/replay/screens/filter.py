"""`f`: every filter at once; Enter applies, Escape leaves them as they were."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList

from forensics.timeline.events import KIND_NAMES, SOURCE_NAMES
from forensics.timeline.logtime import parse_user_time, resolve_tz
from forensics.timeutil import iso_ns
from tui.replay.filters import Filters


class FilterScreen(ModalScreen[Filters | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, filters: Filters, tz: str) -> None:
        super().__init__()
        self.filters = filters
        self.tz = tz

    def compose(self) -> ComposeResult:
        f = self.filters
        with Vertical(id="filter"):
            yield Label(Text("Filters (all combine; empty = any)", style="bold"))
            with Horizontal(id="filter-lists"):
                yield SelectionList[str](
                    *((Text(s), s, s in f.sources) for s in SOURCE_NAMES), id="filter-sources"
                )
                yield SelectionList[str](
                    *((Text(k), k, k in f.kinds) for k in KIND_NAMES), id="filter-kinds"
                )
            yield Label("entity (exact; a trailing * matches a prefix)")
            yield Input(f.entity or "", id="filter-entity")
            yield Label(f"from / to (times without a zone are {self.tz})")
            with Horizontal(id="filter-times"):
                yield Input(iso_ns(f.start) if f.start is not None else "", id="filter-start")
                yield Input(iso_ns(f.end) if f.end is not None else "", id="filter-end")
            yield Label("text (full-text: all words; word* = prefix)")
            yield Input(f.text or "", id="filter-text")
            yield Label("", id="filter-error")
            with Horizontal(id="filter-buttons"):
                yield Button("Apply", variant="primary", id="filter-apply")
                yield Button("Cancel", id="filter-cancel")

    def _value(self, wid: str) -> str | None:
        return self.query_one(wid, Input).value.strip() or None

    def result(self) -> Filters:
        """The filters as entered; ValueError names the field that is wrong."""
        zone = resolve_tz(self.tz)
        times: list[int | None] = []
        for wid, name in (("#filter-start", "from"), ("#filter-end", "to")):
            text = self._value(wid)
            try:
                times.append(parse_user_time(text, zone, end_of_day=name == "to") if text else None)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return Filters(
            sources=frozenset(self.query_one("#filter-sources", SelectionList).selected),
            kinds=frozenset(self.query_one("#filter-kinds", SelectionList).selected),
            entity=self._value("#filter-entity"),
            start=times[0],
            end=times[1],
            text=self._value("#filter-text"),
        )

    def action_apply(self) -> None:
        try:
            self.dismiss(self.result())
        except ValueError as err:
            self.query_one("#filter-error", Label).update(Text(str(err), style="bold red"))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "filter-apply":
            self.action_apply()
        else:
            self.action_cancel()
