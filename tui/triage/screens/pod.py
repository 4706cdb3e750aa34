"""One container of a Kubernetes pod: the live dashboard through the agent, its log,
and a capture on `c`.

On mount the agent is started (or a running one reused) next to the container
and ``agent serve`` is opened over exec (collectors.k8s.livepod); the tabs then
use the same widgets as a local target's dashboard, fed by the agent:
processes, files (browse, text/hex, hash; "changed since start" when the agent
can see the overlay upper layer), sockets. Logs come from the API. When the
agent cannot be started, the screen says why and keeps the log and the capture.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static, TabbedContent, TabPane

from collectors.k8s.pods import PodRow
from collectors.live.processes import ProcRow
from collectors.live.sockets import SocketRow
from forensics.errors import ExuviaError, TargetGone
from tui.triage.screens.dashboard import TAB_BINDINGS
from tui.triage.screens.pod_capture import run_pod_capture
from tui.triage.session import TriageSession
from tui.triage.text import age, lit, notice
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.process_tree import ProcessTree
from tui.triage.widgets.socket_table import SocketTable
from tui.triage.widgets.timeline_view import SeenEvent, TimelineView

LOG_BYTES = 64 << 10


class PodScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "capture", "Capture (agent)"),
        Binding("o", "open_replay", "Open in replay"),
        *TAB_BINDINGS,
        Binding("r", "refresh_now", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, pod: PodRow, container: str, client: Any, session: TriageSession) -> None:
        super().__init__()
        self.pod = pod
        self.container = container
        self.client = client
        self.session = session
        self.result: Any = None
        self.capturing = False
        self.live: Any = None  # collectors.k8s.livepod.PodLive once the agent answers
        self.live_error: str | None = None
        self.procs: list[ProcRow] = []
        self.gone = False
        #: set once the agent answered or failed: a capture then reuses its container
        self.settled = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static(id="pod-header")
        yield Static(id="pod-capture")
        with TabbedContent(id="tabs", initial="processes"):
            with TabPane("Processes [1]", id="processes"):
                yield Static(lit("starting the agent…", "dim"), id="pod-live-status")
                yield ProcessTree(id="proc-tree")
            with TabPane("Files [2]", id="files"):
                yield Static(lit("waiting for the agent…", "dim"), id="pod-files-status")
            with TabPane("Sockets [3]", id="sockets"):
                yield SocketTable(id="socket-table")
            with TabPane("Logs [4]", id="logs"):
                yield RichLog(
                    id="pod-log", wrap=False, markup=False, highlight=False, max_lines=5000
                )
            with TabPane("Timeline [5]", id="timeline"):
                yield TimelineView(id="timeline-view")
        yield Footer()

    def on_mount(self) -> None:
        self._header()
        self.session.record("target.opened", target=self.pod.uri(self.container))
        self.load_log()
        self.set_interval(5.0, self.load_log)
        self.connect()

    def _header(self) -> None:
        c = next((c for c in self.pod.containers if c.name == self.container), None)
        t = Text()
        t.append_text(lit(f"k8s {self.pod.namespace}/{self.pod.name}/{self.container}", "bold"))
        if c is not None:
            t.append_text(lit(f"  image {c.image}  {c.state}  restarts {c.restarts}"))
            if c.image_id:
                t.append("\n")
                t.append_text(lit(f"digest {c.image_id}", "dim"))
        t.append("\n")
        t.append_text(lit(f"node {self.pod.node}  phase {self.pod.phase}  "
                          f"age {age(self.pod.created_ns, time.time())}"))  # fmt: skip
        shell = self.session.pod_shell.get(self.pod.uri(self.container))
        if shell is not None:
            present, where = shell
            t.append("  ")
            badge = {True: ("sh", ""), False: ("no shell", "bold magenta"), None: ("?", "")}
            t.append_text(lit(badge[present][0], badge[present][1]))
            t.append_text(lit(f" ({where})", "dim"))
        if self.live is not None:
            t.append("\n")
            t.append_text(lit(f"agent {self.live.injection.container}: "
                              f"{self.live.remote.root.view_note}", "dim"))  # fmt: skip
        elif self.live_error:
            t.append("\n")
            t.append_text(lit(f"live views unavailable: {self.live_error}", "red"))
        self.query_one("#pod-header", Static).update(t)

    # -- the agent ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="pod-connect")
    def connect(self) -> None:
        from collectors.k8s.livepod import open_live  # noqa: PLC0415
        from tui.triage.screens.pod_capture import k8s_options  # noqa: PLC0415

        self.session.record("agent.requested", target=self.pod.uri(self.container))
        try:
            live = open_live(self.client, self.pod.namespace, self.pod.name, self.container,
                             k8s_options(self.session))  # fmt: skip
        except ExuviaError as err:
            self.session.record("agent.failed", target=self.pod.uri(self.container),
                                error=str(err))  # fmt: skip
            self.app.call_from_thread(self._no_live, str(err))
            return
        finally:
            self.settled.set()
        self.session.record("agent.serving", **live.summary())
        self.session.pod_shell[self.pod.uri(self.container)] = live.remote.shell
        if not self.is_attached:  # left meanwhile
            self._close_live(live)
            return
        self.app.call_from_thread(self._live_ready, live)

    def _no_live(self, why: str) -> None:
        self.live_error = why
        self._header()
        msg = lit(f"live views unavailable: {why}", "red")
        self.query_one("#pod-live-status", Static).update(msg)
        self.query_one("#pod-files-status", Static).update(msg)
        notice(self, why, "error", 15)

    def _live_ready(self, live: Any) -> None:
        self.live = live
        self._header()
        self.query_one("#pod-live-status", Static).display = False
        self.query_one("#pod-files-status", Static).display = False
        self.query_one("#files", TabPane).mount(
            FileBrowser(live.remote.root, self.session, id="files-browser")
        )
        self.sample()
        self.set_interval(self.session.opts.refresh_s, self.sample)
        self.set_interval(5.0, self._refresh_sockets)

    @work(thread=True, exclusive=True, group="procs")
    def sample(self) -> None:
        if self.live is None:
            return
        if self.gone:
            return
        try:
            rows = self.live.remote.sample()
        except TargetGone as err:
            self.app.call_from_thread(self._gone, str(err))
            return
        except ExuviaError as err:
            self.app.call_from_thread(notice, self, f"processes: {err}", "error")
            return
        self.app.call_from_thread(self._show_procs, rows)

    def _gone(self, why: str) -> None:
        """The container exited (or restarted): what is on screen stays, in red."""
        if not self.gone:
            self.gone = True
            self.add_class("-gone")
            notice(self, f"target gone: {why}", "error", 30)

    def _show_procs(self, rows: list[ProcRow]) -> None:
        self.procs = rows
        self.query_one(ProcessTree).show(rows)

    def _refresh_sockets(self) -> None:
        if self.query_one("#tabs", TabbedContent).active == "sockets" and not self.gone:
            self.load_sockets()

    @work(thread=True, exclusive=True, group="sockets")
    def load_sockets(self) -> None:
        if self.live is None:
            return
        try:
            rows = self.live.remote.sockets()
        except ExuviaError as err:
            self.app.call_from_thread(notice, self, f"sockets: {err}", "error")
            return
        self.app.call_from_thread(self._show_sockets, rows)

    def _show_sockets(self, rows: list[SocketRow]) -> None:
        self.query_one(SocketTable).show(rows)

    # -- tabs --------------------------------------------------------------------
    @on(TabbedContent.TabActivated, "#tabs")
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or ""
        self.session.record("tab.opened", tab=tab, target=self.pod.uri(self.container))
        if tab == "sockets":
            self.load_sockets()
        elif tab == "timeline":
            self._timeline()
        sel = {"processes": "#proc-tree", "files": "#fb-list", "sockets": "#socket-table",
               "logs": "#pod-log", "timeline": "#timeline-view"}.get(tab)  # fmt: skip
        found = list(self.query(sel)) if sel else []
        if found:
            found[0].focus()

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_refresh_now(self) -> None:
        self.sample()
        self.load_log()
        if self.query_one("#tabs", TabbedContent).active == "sockets":
            self.load_sockets()

    def _timeline(self) -> None:
        evs: list[SeenEvent] = []
        uri = self.pod.uri(self.container)
        if self.live is not None and self.live.remote.hello.get("started_ns"):
            evs.append(SeenEvent(int(self.live.remote.hello["started_ns"]),
                                 "container.started", uri, "k8s"))  # fmt: skip
        for p in self.procs:
            cmd = " ".join(p.cmdline) or p.name
            evs.append(SeenEvent(p.start_ns, "process.started", f"pid {p.nspid}", cmd))
        for a in self.session.actions():
            detail = ", ".join(f"{k}={v}" for k, v in (a.get("details") or {}).items())
            evs.append(SeenEvent(a["ts_ns"], a["action"], a["examiner"], detail))
        self.query_one(TimelineView).show(evs)

    # -- log ---------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="pod-log")
    def load_log(self) -> None:
        try:
            chunks = self.client.pod_log(
                self.pod.namespace, self.pod.name, self.container,
                previous=False, limit_bytes=LOG_BYTES,
            )  # fmt: skip
            data = b"".join(chunks)
        except ExuviaError as err:
            self.app.call_from_thread(notice, self, str(err), "warning")
            return
        self.app.call_from_thread(self._log, data)

    def _log(self, data: bytes) -> None:
        log = self.query_one("#pod-log", RichLog)
        log.clear()
        for line in data.decode("utf-8", "replace").splitlines()[-500:]:
            log.write(lit(line))

    # -- capture -----------------------------------------------------------------
    def action_capture(self) -> None:
        if self.capturing:
            return
        self.capturing = True
        self.session.record("capture.requested", target=self.pod.uri(self.container))
        self.query_one("#pod-capture", Static).update(lit("capture: starting the agent…"))
        self._capture()

    @work(thread=True, exclusive=True, group="pod-capture")
    def _capture(self) -> None:
        def status(text: Text) -> None:
            self.app.call_from_thread(self.query_one("#pod-capture", Static).update, text)

        self.settled.wait(300)  # one agent container for both, not two added at once
        live = self.live
        if live is not None:  # the capture's custody says the agent served this session
            self.session.record("agent.served", **live.summary(), requests=live.requests())

        self.result = run_pod_capture(self.session, self.pod, self.container, self.client, status)
        self.capturing = False

    def action_open_replay(self) -> None:
        if self.result is not None:
            self.app.exit(("replay", self.result.path))

    # -- leaving -----------------------------------------------------------------
    def _close_live(self, live: Any) -> None:
        reqs = live.requests()

        def close() -> None:
            live.close()

        self.session.record("agent.closed", target=live.uri, requests=reqs)
        threading.Thread(target=close, name="exuvia-agent-close", daemon=True).start()

    def on_unmount(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            self._close_live(live)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:  # not when opened straight from the command line
            self.app.pop_screen()
