"""The triage dashboard's findings: computed from the live target in a worker
(collectors/live/findings.py), shown by the findings view (tui/findings/screen.py,
`!`), and the jump from a finding's evidence to its process, file or socket tab."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from textual.widgets import TabbedContent

from collectors.live.findings import live_findings
from forensics.errors import ExuviaError
from forensics.findings import FindingsReport
from tui.findings.screen import FindingsScreen, Jump
from tui.triage.widgets.file_browser import FileBrowser
from tui.triage.widgets.process_tree import ProcessTree

if TYPE_CHECKING:
    from tui.triage.screens.dashboard import DashboardScreen


def start(screen: DashboardScreen) -> None:
    def work() -> None:
        try:
            report = live_findings(screen.target, screen.root, screen.session.opts.procfs)
        except (ExuviaError, OSError) as err:
            screen.app.call_from_thread(_failed, screen, str(err))
            return
        screen.app.call_from_thread(_ready, screen, report)

    screen.run_worker(work, thread=True, group="findings", exclusive=True)


def _ready(screen: DashboardScreen, report: FindingsReport) -> None:
    screen.findings = report
    screen.session.record("findings.computed", target=screen.target.uri,
                          findings=len(report.findings), counts=report.counts)  # fmt: skip
    view = screen.findings_view
    if view is not None and view.is_attached:
        view.show_report(report)


def _failed(screen: DashboardScreen, message: str) -> None:
    view = screen.findings_view
    if view is not None and view.is_attached:
        view.show_error(message)


def open_view(screen: DashboardScreen) -> None:
    view = FindingsScreen(screen.target.uri, screen.findings)
    screen.findings_view = view
    screen.app.push_screen(view, lambda result: jump(screen, result))
    if screen.findings is None:
        start(screen)  # again: the target lives on


def jump(screen: DashboardScreen, result: Jump | None, tries: int = 20) -> None:
    """To the evidence's process (tree row), file (its directory, cursor on it) or
    socket (the sockets tab); triage has no timeline rows to go to."""
    screen.findings_view = None
    if result is None:
        return
    ev, _how = result
    tabs = screen.query_one("#tabs", TabbedContent)
    if ev.pivot in ("process", "socket") and isinstance(ev.key, int):
        tab = "processes" if ev.pivot == "process" else "sockets"
        tabs.active = tab
        if tab == "processes":
            tree = screen.query_one(ProcessTree)
            if str(ev.key) in tree.rows:
                tree.move_cursor(row=tree.get_row_index(str(ev.key)))
                tree.focus()
        return
    if ev.pivot == "file" and isinstance(ev.key, str):
        tabs.active = "files"
        found = list(screen.query(FileBrowser))
        if not found:  # mounted lazily
            if tries > 0:
                screen.set_timer(0.05, lambda: jump(screen, result, tries - 1))
            return
        browser = found[0]
        browser.select_after = ev.key
        browser.changed_only = False
        parent = posixpath.dirname(ev.key).encode("utf-8", "surrogateescape") or b"/"
        if browser.path == parent:
            browser.load()
        else:
            browser.path = parent
        return
    if ev.pivot == "log":
        tabs.active = "logs"
        return
    screen.notify(f"{ev.member}:{ev.line}: nothing to open for it", markup=False)


__all__ = ["jump", "open_view", "start"]
