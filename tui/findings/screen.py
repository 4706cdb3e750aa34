"""The findings view: ranked findings on the left, the chosen one's rationale and
evidence on the right. Enter jumps to the evidence.

It dismisses with ``(evidence, how)``: ``how`` is ``"timeline"`` (Enter: the
evidence's timeline row, where the app has one) or ``"view"`` (``o``: its
process, file or socket in the app's own view); None when closed. Every string
from a bundle or a target goes through :func:`tui.replay.render.safe`.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from forensics.findings import Evidence, Finding, FindingsReport
from tui.replay.render import safe

SEVERITY_STYLE = {
    "critical": "bold white on dark_red",
    "high": "bold white on red3",
    "medium": "bold black on dark_orange",
    "low": "bold white on dodger_blue3",
    "info": "bold white on grey37",
}
Jump = tuple[Evidence, str]


def finding_label(f: Finding) -> Text:
    t = Text(f" {f.severity.label.upper():<8} ", style=SEVERITY_STYLE[f.severity.label])
    t.append(" ")
    if f.where:
        t.append_text(safe(f"[{f.where.get('label', '?')}] ", "cyan"))
    t.append_text(safe(f.title))
    return t


def finding_detail(f: Finding) -> Text:
    t = finding_label(f)
    t.append("\n\n")
    t.append_text(safe(f.rationale))
    t.append("\n\n")
    t.append(f"{f.id}", style="dim")
    t.append(f"  rule {f.rule}  evidence {f.strength.label}", style="dim")
    t.append("\n\nEnter: the evidence's timeline row   o: its process or file   Tab: evidence",
             style="dim")  # fmt: skip
    return t


def evidence_label(e: Evidence) -> Text:
    t = Text(f"{e.pivot:<8}", style="bold")
    t.append_text(safe(f"{e.member}:{e.line}  {e.role}"))
    if e.text:
        t.append("\n         ").append_text(safe(e.text[:200], "dim"))
    return t


class FindingsScreen(Screen[Jump | None]):
    DEFAULT_CSS = """
    FindingsScreen { layout: vertical; }
    #findings-head { height: auto; max-height: 6; background: $panel; padding: 0 1; }
    #findings-body { height: 1fr; }
    #findings-list { width: 55%; height: 1fr; }
    #findings-side { width: 1fr; border-left: solid $panel; }
    #finding-detail { height: auto; max-height: 60%; padding: 0 1; overflow-y: auto; }
    #evidence-list { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Timeline"),
        Binding("o", "open_view", "Open process/file"),
        Binding("tab", "app.focus_next", "Evidence", show=False),
    ]

    def __init__(self, title: str, report: FindingsReport | None = None) -> None:
        super().__init__()
        self.heading = title
        self.report: FindingsReport | None = None
        self._pending = report
        self.current: Finding | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"findings — {self.heading}: analysing …", style="bold"),
                     id="findings-head")  # fmt: skip
        with Horizontal(id="findings-body"):
            yield OptionList(id="findings-list")
            with Vertical(id="findings-side"):
                yield Static(id="finding-detail")
                yield OptionList(id="evidence-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#findings-list").focus()
        if self._pending is not None:
            self.show_report(self._pending)

    def show_report(self, report: FindingsReport) -> None:
        if not self.is_mounted:  # still composing: some of its widgets are not there yet
            self.call_later(self.show_report, report)  # runs once the screen is mounted
            return
        self.report = report
        counts = ", ".join(f"{n} {k}" for k, n in report.counts.items() if n) or "none"
        head = Text(f"findings — {self.heading}: {len(report.findings)} ({counts})", style="bold")
        for spot in report.blind_spots[:3]:
            head.append("\n  blind spot: ", style="yellow").append_text(safe(spot))
        if len(report.blind_spots) > 3:
            head.append(f"\n  … {len(report.blind_spots) - 3} more blind spots", style="yellow")
        self.query_one("#findings-head", Static).update(head)
        lst = self.query_one("#findings-list", OptionList)
        lst.clear_options()
        lst.add_options([Option(finding_label(f), id=f.id) for f in report.findings])
        if report.findings:
            lst.highlighted = 0
            self._show(report.findings[0])
        else:
            self.query_one("#finding-detail", Static).update(
                Text("No rule found anything (see the blind spots above).", style="dim")
            )

    def show_error(self, message: str) -> None:
        if not self.is_mounted:
            self.call_later(self.show_error, message)
            return
        self.query_one("#findings-head", Static).update(
            Text(f"findings — {self.heading}: ", style="bold").append_text(
                safe(f"could not be computed: {message}", "red")
            )
        )

    def _finding(self, option_id: str | None) -> Finding | None:
        if self.report is None:
            return None
        return next((f for f in self.report.findings if f.id == option_id), None)

    def _show(self, f: Finding) -> None:
        self.current = f
        self.query_one("#finding-detail", Static).update(finding_detail(f))
        ev = self.query_one("#evidence-list", OptionList)
        ev.clear_options()
        ev.add_options([Option(evidence_label(e), id=str(i)) for i, e in enumerate(f.evidence)])
        if f.evidence:
            ev.highlighted = 0

    @on(OptionList.OptionHighlighted, "#findings-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        f = self._finding(event.option.id)
        if f is not None:
            self._show(f)

    @on(OptionList.OptionSelected, "#findings-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        f = self._finding(event.option.id)
        if f is not None and f.evidence:
            self.dismiss((f.evidence[0], "timeline"))

    @on(OptionList.OptionSelected, "#evidence-list")
    def _evidence_selected(self, event: OptionList.OptionSelected) -> None:
        if self.current is not None and event.option.id is not None:
            self.dismiss((self.current.evidence[int(event.option.id)], "timeline"))

    def action_open_view(self) -> None:
        if self.current is None or not self.current.evidence:
            return
        ev_list = self.query_one("#evidence-list", OptionList)
        i = ev_list.highlighted if ev_list.has_focus and ev_list.highlighted is not None else 0
        self.dismiss((self.current.evidence[i], "view"))

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["FindingsScreen", "Jump", "evidence_label", "finding_label"]
