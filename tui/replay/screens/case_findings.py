"""`!` in a case: every pod's findings ranked together (forensics/findings/case.py),
those held in several pods first; Enter opens the finding's first evidence record."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from forensics.errors import ExuviaError
from forensics.findings.case import CaseFindings, analyze_case
from forensics.findings.model import Finding
from forensics.timeline.case import CaseEvent
from tui.replay.render import safe


class CaseFindingsScreen(ModalScreen[CaseEvent | None]):
    BINDINGS = [Binding("escape,q", "cancel", "Back")]

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.owner = app
        self.rows: list[Finding | None] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="siblings"):
            yield Label(Text("running the findings rules over every pod …", style="dim"),
                        id="findings-head")  # fmt: skip
            yield DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("severity", "finding", "pod"):
            table.add_column(Text(col))
        if self.owner.case_findings is not None:
            self._show(self.owner.case_findings, None)
        else:
            self.analyze()

    @work(thread=True)
    def analyze(self) -> None:
        try:
            result = analyze_case(self.owner.case_dir)
        except ExuviaError as err:
            self.app.call_from_thread(self._show, None, str(err))
            return
        self.app.call_from_thread(self._show, result, None)

    def _show(self, result: CaseFindings | None, error: str | None) -> None:
        head = self.query_one("#findings-head", Label)
        if result is None:
            head.update(safe(f"cannot run the findings: {error}", "bold red"))
            return
        self.owner.case_findings = result
        counts = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n) or "none"
        head.update(Text(f"findings of every pod: {counts}", style="bold"))
        table = self.query_one(DataTable)
        if result.across:
            table.add_row(Text(""), Text("held in several pods", style="bold"), Text(""))
            self.rows.append(None)
            for a in result.across:
                table.add_row(safe(a.severity.label.upper()), safe(a.title),
                              safe(", ".join(a.labels)))  # fmt: skip
                self.rows.append(a.findings[0])
            table.add_row(Text(""), Text("every finding", style="bold"), Text(""))
            self.rows.append(None)
        for f in result.findings:
            table.add_row(safe(f.severity.label.upper()), safe(f.title),
                          safe(str(f.where.get("label", "?"))))  # fmt: skip
            self.rows.append(f)
        for b, _rep, err in result.bundles:
            if err:
                table.add_row(Text(""), safe(f"not analysed: {err}", "yellow"), safe(b.label))
                self.rows.append(None)
        table.focus()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        message.stop()
        i = message.cursor_row
        f = self.rows[i] if 0 <= i < len(self.rows) else None
        ct = self.owner.ct
        if f is None or ct is None:
            return
        label = str(f.where.get("label"))
        tl = ct.timeline_of(label)
        where = next((w for w in ct.wheres if w.label == label), None)
        for ev in f.evidence:
            found = tl.event_at_ref(ev.member, ev.line) if tl is not None else None
            if found is not None and where is not None:
                self.dismiss(CaseEvent(where, found))
                return
        self.notify("its evidence has no time of its own: showing that pod")
        if where is not None:
            self.owner.set_pods([where.label])
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
