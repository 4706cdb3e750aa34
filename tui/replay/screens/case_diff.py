"""`D` in a case: the sibling comparison (forensics/case/diff.py) as a view.

The replicas ranked, most odd first, then what only some have; Enter on a
difference opens its first record in the list."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from forensics.case.diff import CaseDiff, Difference, diff_case
from forensics.errors import ExuviaError
from forensics.timeline.case import CaseEvent
from tui.replay.render import safe


class SiblingScreen(ModalScreen[CaseEvent | None]):
    BINDINGS = [Binding("escape,q", "cancel", "Back")]

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.owner = app
        self.rows: list[tuple[str, Difference] | None] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="siblings"):
            yield Label(Text("comparing the replicas …", style="dim"), id="siblings-head")
            yield DataTable(id="siblings-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("score", "replica / difference", "in"):
            table.add_column(Text(col))
        if self.owner.diff is not None:
            self._show(self.owner.diff, None)
        else:
            self.compare()

    @work(thread=True)
    def compare(self) -> None:
        try:
            result = diff_case(self.owner.case_dir)
        except ExuviaError as err:
            self.app.call_from_thread(self._show, None, str(err))
            return
        self.app.call_from_thread(self._show, result, None)

    def _show(self, result: CaseDiff | None, error: str | None) -> None:
        head = self.query_one("#siblings-head", Label)
        if result is None:
            head.update(safe(f"cannot compare: {error}", "bold red"))
            return
        self.owner.diff = result
        head.update(Text(f"sibling comparison: {len(result.groups)} group(s) of replicas",
                         style="bold"))  # fmt: skip
        table = self.query_one(DataTable)
        if not result.groups:
            table.add_row(Text(""), Text("no workload has two captured replicas"), Text(""))
            self.rows.append(None)
        for g in result.groups:
            table.add_row(Text(""), safe(f"== {g.name}: {len(g.labels)} replicas", "bold"),
                          Text(""))  # fmt: skip
            self.rows.append(None)
            for label, score in g.ranking:
                table.add_row(Text(f"{score:.2f}"), safe(label),
                              Text(f"{len(g.of_bundle(label))} differences"))  # fmt: skip
                self.rows.append(None)
            if not g.differences:
                table.add_row(Text(""), Text("no differences: the replicas look alike"), Text(""))
                self.rows.append(None)
            for d in g.differences:
                table.add_row(Text(f"{d.weight:.2f}"), safe(d.title()),
                              safe(", ".join(d.bundles)))  # fmt: skip
                self.rows.append((g.name, d))
        table.focus()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        message.stop()
        i = message.cursor_row
        row = self.rows[i] if 0 <= i < len(self.rows) else None
        ct = self.owner.ct
        if row is None or ct is None:
            return
        d = row[1]
        for label, refs in d.refs.items():
            tl = ct.timeline_of(label)
            where = next((w for w in ct.wheres if w.label == label), None)
            for ref in refs:
                member, _, line = ref.rpartition(":")
                ev = tl.event_at_ref(member, int(line)) if tl is not None else None
                if ev is not None and where is not None:
                    self.dismiss(CaseEvent(where, ev))
                    return
        # sockets and environments have no time of their own: show those pods instead
        self.notify("these records have no time of their own: showing those pods' events")
        self.owner.set_pods([lab for lab in d.bundles if ct.timeline_of(lab) is not None])
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
