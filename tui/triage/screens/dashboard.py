"""The live dashboard of one local target: header, five tabs, capture on `c`."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from collectors.context import CollectContext
from collectors.fs.browse import TargetRoot
from collectors.live.processes import ProcessSampler, ProcRow
from collectors.live.sockets import SocketRow, sample_sockets
from collectors.targets.base import TargetInfo
from forensics.errors import ExuviaError, TargetGone
from tui.triage import findings_actions
from tui.triage.screens.capture import CaptureScreen
from tui.triage.session import TriageSession
from tui.triage.text import notice
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.log_view import LogView
from tui.triage.widgets.process_tree import ProcessTree
from tui.triage.widgets.socket_table import SocketTable
from tui.triage.widgets.target_header import TargetHeader
from tui.triage.widgets.timeline_view import SeenEvent, TimelineView

TABS = ("processes", "files", "sockets", "logs", "timeline")
#: 1..5 switch tabs (the local dashboard and the pod's share them)
TAB_BINDINGS: list[BindingType] = [
    Binding(str(i), f"tab('{tab}')", label, show=False)
    for i, (tab, label) in enumerate(
        zip(TABS, ("Procs", "Files", "Sockets", "Logs", "Timeline"), strict=True), 1
    )
]


class DashboardScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "capture", "Capture"),
        *TAB_BINDINGS,
        Binding("r", "refresh_now", "Refresh"),
        Binding("exclamation_mark", "findings", "Findings"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, target: TargetInfo, root: TargetRoot, session: TriageSession) -> None:
        super().__init__()
        self.target = target
        self.root = root
        self.session = session
        self.ctx = CollectContext(pid=target.pid, procfs=session.opts.procfs)
        self.sampler = ProcessSampler(self.ctx)
        self.procs: list[ProcRow] = []
        self.gone = False
        self.first_tree_at: float | None = None
        self.findings: Any = None  # a FindingsReport (tui/triage/findings_actions.py)
        self.findings_view: Any = None

    def compose(self) -> ComposeResult:
        yield TargetHeader(self.target, self.root.view_note, id="header")
        with TabbedContent(id="tabs", initial="processes"):
            with TabPane("Processes [1]", id="processes"):
                yield ProcessTree(id="proc-tree")
            # the other tabs are mounted after the first frame: the tree comes first
            with TabPane("Files [2]", id="files"):
                yield Lazy(FileBrowser(self.root, self.session, id="files-browser"))
            with TabPane("Sockets [3]", id="sockets"):
                yield Lazy(SocketTable(id="socket-table"))
            with TabPane("Logs [4]", id="logs"):
                yield Lazy(
                    LogView(
                        self.target.log_paths, self.target.log_format, self.session, id="log-view"
                    )
                )
            with TabPane("Timeline [5]", id="timeline"):
                yield Lazy(TimelineView(id="timeline-view"))
        yield Footer()

    def on_mount(self) -> None:
        self.session.record("target.opened", target=self.target.uri, pid=self.target.pid)
        # The first sample is taken here, on the UI thread (a few ms for a container):
        # the first frame then already holds the tree. Later ones run in a worker.
        try:
            self._show_procs(self.sampler.sample())
        except ExuviaError as err:
            self._gone(str(err))
        self.set_interval(self.session.opts.refresh_s, self.sample)
        self.set_interval(5.0, self._refresh_sockets)
        self.query_one(ProcessTree).focus()
        if self.session.opts.findings_first:
            findings_actions.open_view(self)

    # -- processes ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="procs")
    def sample(self) -> None:
        try:
            rows = self.sampler.sample()
        except (TargetGone, ExuviaError) as err:
            self.app.call_from_thread(self._gone, str(err))
            return
        if not rows:
            # a running container has at least its first process: none left means it is
            # exiting (the sample can see that before /proc/PID itself goes), and the last
            # sample stays on screen
            self.app.call_from_thread(self._gone, "no process of the target is left")
            return
        self.app.call_from_thread(self._show_procs, rows)

    def _show_procs(self, rows: list[ProcRow]) -> None:
        self.procs = rows
        self.query_one(ProcessTree).show(rows)
        if self.first_tree_at is None:
            self.first_tree_at = time.monotonic()
            self.app.post_message(self.app.FirstTree())  # type: ignore[attr-defined]

    def _gone(self, why: str) -> None:
        if not self.gone:
            self.gone = True
            self.add_class("-gone")
            notice(self, f"target gone: {why}", "error", 30)

    # -- tabs --------------------------------------------------------------------
    @on(TabbedContent.TabActivated, "#tabs")
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or ""
        self.session.record("tab.opened", tab=tab)
        self._focus_tab(tab)
        if tab == "sockets":
            self.load_sockets()
        elif tab == "timeline":
            self.load_timeline()

    def _focus_tab(self, tab: str, tries: int = 20) -> None:
        """Focus the tab's main widget; a lazily mounted one may come a frame later."""
        sel = {
            "processes": "#proc-tree",
            "files": "#fb-list",
            "sockets": "#socket-table",
            "logs": "#log-body",
            "timeline": "#timeline-view",
        }.get(tab)
        if sel is None:
            return
        found = list(self.query(sel))
        if found:
            found[0].focus()
        elif tries > 0:
            self.set_timer(0.02, lambda: self._focus_tab(tab, tries - 1))

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_refresh_now(self) -> None:
        self.sample()
        active = self.query_one("#tabs", TabbedContent).active
        if active == "sockets":
            self.load_sockets()
        elif active == "timeline":
            self.load_timeline()

    def _refresh_sockets(self) -> None:
        if self.query_one("#tabs", TabbedContent).active == "sockets" and not self.gone:
            self.load_sockets()

    @work(thread=True, exclusive=True, group="sockets")
    def load_sockets(self) -> None:
        try:
            rows = sample_sockets(self.ctx)
        except ExuviaError as err:
            self.app.call_from_thread(self._gone, str(err))
            return
        self.app.call_from_thread(self._show_sockets, rows)

    def _show_sockets(self, rows: list[SocketRow], tries: int = 50) -> None:
        tables = list(self.query(SocketTable))
        for table in tables:
            table.show(rows)
        if not tables and tries > 0:  # mounted lazily: not there yet
            self.set_timer(0.02, lambda: self._show_sockets(rows, tries - 1))

    @work(thread=True, exclusive=True, group="timeline")
    def load_timeline(self) -> None:
        evs: list[SeenEvent] = []
        t = self.target
        if t.created_ns:
            evs.append(SeenEvent(t.created_ns, "container.created", t.uri, t.runtime))
        if t.started_ns:
            evs.append(SeenEvent(t.started_ns, "container.started", t.uri, t.runtime))
        for p in self.procs:
            cmd = " ".join(p.cmdline) or p.name
            evs.append(SeenEvent(p.start_ns, "process.started", f"pid {p.nspid}", cmd))
        for c in self.root.changed(limit=2000):
            if c.mtime_ns:
                what = "file.deleted" if c.kind == "deleted" else "file.modified"
                evs.append(SeenEvent(c.mtime_ns, what, c.path.decode("utf-8", "replace"), c.kind))
        for ln in [ln for v in self.query(LogView) for ln in v.lines][-1000:]:
            if ln.ts_ns:
                evs.append(SeenEvent(ln.ts_ns, "log.line", ln.stream or "log", ln.text))
        for a in self.session.actions():
            detail = ", ".join(f"{k}={v}" for k, v in (a.get("details") or {}).items())
            evs.append(SeenEvent(a["ts_ns"], a["action"], a["examiner"], detail))
        self.app.call_from_thread(self._show_timeline, evs)

    def _show_timeline(self, evs: list[SeenEvent], tries: int = 50) -> None:
        views = list(self.query(TimelineView))
        for view in views:
            view.show(evs)
        if not views and tries > 0:  # mounted lazily: not there yet
            self.set_timer(0.02, lambda: self._show_timeline(evs, tries - 1))

    # -- capture -----------------------------------------------------------------
    def action_capture(self) -> None:
        self.session.record("capture.requested", target=self.target.uri)
        self.app.push_screen(CaptureScreen(self.target, self.root, self.session))

    def action_findings(self) -> None:
        self.findings = None  # live: recomputed each time it is opened
        findings_actions.open_view(self)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
