"""The replay app's findings: computed in a worker as the app opens, shown by the
findings view (tui/findings/screen.py, `!`), and the jump from a finding's
evidence to its timeline row, its process or its file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forensics.errors import ExuviaError
from forensics.findings import Evidence, FindingsReport, analyze_bundle
from tui.findings.screen import FindingsScreen, Jump
from tui.replay.filters import Filters

if TYPE_CHECKING:
    from tui.replay.app import ReplayApp


def start(app: ReplayApp) -> None:
    """Compute the findings in a thread (the CPU is shared with the store's build)."""

    def work() -> None:
        try:
            report = analyze_bundle(app.bundle)
        except ExuviaError as err:
            app.call_from_thread(_failed, app, str(err))
            return
        app.call_from_thread(_ready, app, report)

    app.run_worker(work, thread=True, group="findings")


def _ready(app: ReplayApp, report: FindingsReport) -> None:
    app.findings = report
    screen = app.findings_screen
    if screen is not None and screen.is_attached:
        screen.show_report(report)


def _failed(app: ReplayApp, message: str) -> None:
    app.findings_error = message
    screen = app.findings_screen
    if screen is not None and screen.is_attached:
        screen.show_error(message)


def open_view(app: ReplayApp) -> None:
    screen = FindingsScreen(app.bundle.name, app.findings)
    app.findings_screen = screen
    app.push_screen(screen, lambda result: jump(app, result))
    if app.findings is None and app.findings_error is not None:
        app.call_after_refresh(screen.show_error, app.findings_error)


def jump(app: ReplayApp, result: Jump | None, tries: int = 0) -> None:
    """To the evidence: its timeline row (``how == "timeline"``, when it has one),
    else (or with ``how == "view"``) the process, file or socket view. While the
    timeline is still being built, the jump waits for it."""
    app.findings_screen = None
    if result is None:
        return
    ev, how = result
    tl = app.tl
    needs_store = how == "timeline" or ev.pivot == "file"
    if needs_store and (tl is None or app.events_list is None):
        if tries > 600:
            app.notify("the timeline did not open; no row to go to", severity="error")
            return
        if tries == 0:
            app.notify("the timeline is still being built: going there when it is ready")
        app.set_timer(0.1, lambda: jump(app, result, tries + 1))
        return
    if how == "timeline" and tl is not None:
        event = tl.event_at_ref(ev.member, ev.line)
        lst = app.events_list
        if event is not None and lst is not None:
            if app.filters.active or app.search_text:
                app.search_text = None
                app.set_filters(Filters())
            lst.goto_event(event)
            lst.focus()
            return
    _open_view(app, ev)


def _open_view(app: ReplayApp, ev: Evidence) -> None:
    from tui.replay.screens.files import FileScreen  # noqa: PLC0415
    from tui.replay.screens.processes import ProcessScreen  # noqa: PLC0415

    if ev.pivot == "file" and app.tl is not None and isinstance(ev.key, str):
        app.push_screen(FileScreen(app.tl, str(app.bundle), ev.key))
    elif ev.pivot in ("process", "socket") and isinstance(ev.key, int):
        pid = ev.key
        app.when_snapshot(lambda snap: app.push_screen(ProcessScreen(snap, pid)))
    else:
        app.notify(f"{ev.member}:{ev.line} has no timeline row or view of its own",
                   markup=False)  # fmt: skip


__all__ = ["jump", "open_view", "start"]
