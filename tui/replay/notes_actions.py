"""The replay app's case-note keys: bookmark (b), tag (t), note (a); each takes the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forensics.errors import ExuviaError
from forensics.timeline import Event

if TYPE_CHECKING:
    from tui.replay.app import ReplayApp


def note_target(app: ReplayApp) -> Event | None:
    ev = app.current()
    if ev is None:
        return None
    if app.notes is None:
        app.notify(app.notes_error or "notes are unavailable", severity="error", markup=False)
        return None
    return ev


def notes_changed(app: ReplayApp, ev: Event) -> None:
    lst = app.events_list
    if lst is not None and app.notes is not None:
        lst.marked = {k for k, n in app.notes.notes.items() if n.bookmarked}
        lst.refresh()
    app._detail(ev)


def save(app: ReplayApp, change: Any) -> bool:
    try:
        change()
    except ExuviaError as err:
        app.notify(str(err), severity="error", markup=False)
        return False
    return True


def bookmark(app: ReplayApp) -> None:
    ev = note_target(app)
    if ev is not None and app.notes is not None:
        case = app.notes
        if save(app, lambda: case.toggle_bookmark(ev)):
            notes_changed(app, ev)


def tag(app: ReplayApp) -> None:
    from tui.replay.screens.prompt import PromptScreen  # noqa: PLC0415 - on first use

    ev = note_target(app)
    if ev is None or app.notes is None:
        return
    case = app.notes

    def done(text: str | None) -> None:
        if text and text.strip() and save(app, lambda: case.toggle_tag(ev, text)):
            notes_changed(app, ev)

    app.push_screen(PromptScreen("tag (again to remove)", ""), done)


def annotate(app: ReplayApp) -> None:
    from tui.replay.screens.prompt import PromptScreen  # noqa: PLC0415 - on first use

    ev = note_target(app)
    if ev is None or app.notes is None:
        return
    case = app.notes
    note = case.get(ev)

    def done(text: str | None) -> None:
        if text is not None and save(app, lambda: case.set_text(ev, text)):
            notes_changed(app, ev)

    app.push_screen(PromptScreen("note", note.text if note else ""), done)
