"""Shown before anything else when a bundle does not verify."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.replay.render import safe


class VerifyFailedScreen(ModalScreen[None]):
    BINDINGS = [Binding("enter", "dismiss", "Continue anyway"), Binding("q", "app.quit", "Quit")]

    def __init__(self, failures: list[str]) -> None:
        super().__init__()
        self.failures = failures

    def compose(self) -> ComposeResult:
        t = Text("THIS BUNDLE FAILED VERIFICATION\n\n", style="bold")
        t.append(
            "What it holds does not match its manifest; treat everything shown as unproven.\n\n"
        )
        for line in self.failures[:12]:
            t.append("  • ").append_text(safe(line)).append("\n")
        if len(self.failures) > 12:
            t.append(f"  … and {len(self.failures) - 12} more\n")
        t.append("\nEnter: open it anyway (the banner stays)    q: quit", style="bold")
        with Vertical(id="verify-failed"):
            yield Static(t)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
