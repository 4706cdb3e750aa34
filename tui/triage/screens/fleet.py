"""The pods a selector or workload names (`exuvia triage k8s://NS -l app=web`), live,
and a fleet capture of all of them on one key (`c`) into one case directory.

The pods are listed as resolved when the command started (resolution errors are
one line before any screen); `r` lists them again. `c` runs the same fleet
capture as `exuvia capture … -o DIR/` (collectors.k8s.fleet) in a worker: each
row shows its pod container's state as it goes, and a line the total. The case
goes to ``--output-dir``/<case id>/.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from forensics.errors import ExuviaError
from tui.triage.screens.capture import capture_options
from tui.triage.screens.pod_capture import k8s_options
from tui.triage.session import TriageSession
from tui.triage.text import lit

STATE_STYLE = {"complete": "green", "incomplete": "yellow", "failed": "red", "capturing": "cyan"}


class FleetScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "capture", "Capture all"),
        Binding("r", "refresh", "List again"),
        Binding("escape", "app.quit", "Quit"),
    ]

    def __init__(self, request: Any, resolution: Any, client: Any, session: TriageSession) -> None:
        super().__init__()
        self.request = request
        self.resolution = resolution
        self.client = client
        self.session = session
        self.started = False
        self.result: Any = None  # the FleetResult when the capture ended
        self.states: dict[tuple[str, str, str], str] = {}

    def compose(self) -> ComposeResult:
        yield Static(lit(f"fleet: {self.request.target}"), id="fleet-title")
        yield DataTable(id="fleet-table", cursor_type="row")
        yield Static(id="fleet-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#fleet-table", DataTable)
        table.add_columns("namespace", "pod", "container", "node", "phase", "owner", "state")
        self._fill()
        self._status(f"{len(self.states)} pod containers; c: capture them all into one case")

    def _fill(self) -> None:
        table = self.query_one("#fleet-table", DataTable)
        table.clear()
        self.states.clear()
        pods = {(p["namespace"], p["name"]): p for p in self.resolution.pods}
        for item in self.resolution.plan():
            rec = pods[(item.namespace, item.pod)]
            owner = rec["owners"][-1] if rec["owners"] else None
            key = (item.namespace, item.pod, item.container)
            self.states[key] = "failed" if item.reason else "pending"
            table.add_row(
                lit(item.namespace), lit(item.pod), lit(item.container), lit(item.node),
                lit(rec["phase"]), lit(f"{owner['kind']}/{owner['name']}" if owner else "-"),
                lit(self.states[key]), key="/".join(key),
            )  # fmt: skip

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#fleet-status", Static).update(lit(text, style))

    def action_refresh(self) -> None:
        if self.started:
            return
        from collectors.k8s.resolve import resolve  # noqa: PLC0415

        try:
            self.resolution = resolve(self.client, self.request, self.client.namespace)
        except ExuviaError as err:
            self._status(str(err), "red")
            return
        self._fill()
        self._status(f"{len(self.states)} pod containers; c: capture them all into one case")

    def action_capture(self) -> None:
        if self.started:
            return
        self.started = True
        self.session.record("fleet.capture.requested", target=self.request.target)
        self._status("capturing…")
        self._capture()

    @work(thread=True, exclusive=True)
    def _capture(self) -> None:
        from collectors.k8s.fleet import FleetCapture, new_case_id  # noqa: PLC0415

        case_id = self.session.opts.case or new_case_id()
        opts = dataclasses.replace(
            capture_options(self.session, self.session.opts.output_dir / case_id),
            case=case_id, argv=["exuvia", "triage", self.request.target], threads=0,
        )  # fmt: skip

        def event(ev: Any) -> None:
            self.app.call_from_thread(self._event, ev)

        fleet = FleetCapture(self.request, opts, k8s_options(self.session), events=event)
        try:
            res = fleet.run()
        except ExuviaError as err:
            self.session.record("fleet.capture.failed", error=str(err))
            self.app.call_from_thread(self._status, f"fleet capture failed: {err}", "red")
            return
        self.session.record("fleet.capture.finished", case=str(res.directory), state=res.state,
                            case_sha256=res.case_sha256)  # fmt: skip
        self.app.call_from_thread(self._done, res)

    def _event(self, ev: Any) -> None:
        if ev.item is not None and ev.kind in ("started", "finished"):
            key = (ev.item.namespace, ev.item.pod, ev.item.container)
            state = "capturing" if ev.kind == "started" else str(ev.status)
            self.states[key] = state
            table = self.query_one("#fleet-table", DataTable)
            if "/".join(key) in table.rows:
                table.update_cell("/".join(key), table.ordered_columns[-1].key,
                                  lit(state, STATE_STYLE.get(state, "")))  # fmt: skip
        self._status(f"{ev.done}/{ev.total} done, {ev.total_bytes / 1e6:.1f} MB received")

    def _done(self, res: Any) -> None:
        self.result = res
        s = res.summary
        self._status(
            f"case {res.directory}: {res.state} ({s.get('complete', 0)} complete, "
            f"{s.get('incomplete', 0)} incomplete, {s.get('failed', 0)} failed); "
            f"case.json sha256 {res.case_sha256[:16]}…",
            "green" if res.state == "complete" else "yellow",
        )
