"""Screens of the replay app, one class per module, and the ways to open them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forensics.timeline import Event
from tui.replay.filters import Filters

if TYPE_CHECKING:
    from forensics.snapshot import Snapshot
    from tui.replay.app import ReplayApp


def open_view(app: ReplayApp, name: str) -> None:
    """Open one of the whole-capture views by name."""
    if name == "inventory":
        from tui.replay.screens.inventory import InventoryScreen

        app.push_screen(InventoryScreen(str(app.bundle)))
        return
    if name == "files":
        if app.tl is not None:
            from tui.replay.screens.files import FileScreen

            app.push_screen(FileScreen(app.tl, str(app.bundle)))
        return
    if name == "yara":
        if app.tl is not None:
            from tui.replay.screens.yara import YaraScreen

            def chosen(ev: Event | None) -> None:
                lst = app.events_list
                if ev is not None and lst is not None:
                    if app.filters.active or app.search_text:
                        app.search_text = None
                        app.set_filters(Filters())
                    lst.goto_event(ev)
                    lst.focus()

            app.push_screen(YaraScreen(app.tl), chosen)
        return
    if name == "notes":
        if app.notes is not None:
            from tui.replay.screens.notes import NotesScreen

            def done(ts: int | None) -> None:
                if ts is not None:
                    app.goto_time(ts)

            app.push_screen(NotesScreen(app.notes), done)
        return
    app.when_snapshot(lambda snap: _open_snapshot_view(app, name, snap))


def _open_snapshot_view(app: ReplayApp, name: str, snap: Snapshot) -> None:
    if name == "processes":
        from tui.replay.screens.processes import ProcessScreen

        app.push_screen(ProcessScreen(snap))
    elif name == "sockets":
        from tui.replay.screens.sockets import SocketsScreen

        app.push_screen(SocketsScreen(snap))
    elif name == "manifest":
        from tui.replay.screens.manifest import ManifestScreen

        app.push_screen(ManifestScreen(snap, app.report))


def open_pivot(app: ReplayApp, ev: Event) -> None:
    """From an event to what it is about: its process, its file entry, its log."""
    if ev.source == "proc":
        pid = ev.attrs.get("pid")
        from tui.replay.screens.processes import ProcessScreen

        app.when_snapshot(
            lambda snap: app.push_screen(ProcessScreen(snap, pid if isinstance(pid, int) else None))
        )
    elif ev.source == "fs" and app.tl is not None:
        from tui.replay.screens.files import FileScreen

        app.push_screen(FileScreen(app.tl, str(app.bundle), ev.entity))
    elif ev.source == "log" and app.tl is not None:
        from tui.replay.screens.context import AROUND, ContextScreen

        app.push_screen(ContextScreen(ev, app.tl.context(ev, AROUND)))
    else:
        app.notify("nothing to open for this event; its record is in the detail pane")
