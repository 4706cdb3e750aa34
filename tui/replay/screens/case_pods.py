"""`p` in a case: which pods the list, the counts and the histograms show."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList

from tui.replay.render import safe


class PodFilterScreen(ModalScreen[list[str] | None]):
    """Space toggles a pod, Enter applies, Escape leaves the filter as it was."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "apply", "Apply", priority=True),
    ]

    def __init__(self, labels: list[str], selected: list[str]) -> None:
        super().__init__()
        self.labels = labels
        self.selected = set(selected)

    def compose(self) -> ComposeResult:
        with Vertical(id="filter"):
            yield Label(Text("Pods shown (space toggles, Enter applies)", style="bold"))
            yield SelectionList[str](
                *((safe(lab), lab, lab in self.selected) for lab in self.labels), id="pod-list"
            )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_apply(self) -> None:
        chosen = list(self.query_one("#pod-list", SelectionList).selected)
        if not chosen:
            self.notify("choose at least one pod", severity="warning")
            return
        self.dismiss([lab for lab in self.labels if lab in chosen])

    def action_cancel(self) -> None:
        self.dismiss(None)
