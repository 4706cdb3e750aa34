"""The replay app's playback: step through events in time order (p, [ and ]); each
function takes the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.replay.widgets.alive import AlivePanel

if TYPE_CHECKING:
    from tui.replay.app import ReplayApp

SPEEDS = (1, 2, 5, 10, 20, 50, 100)


def toggle(app: ReplayApp) -> None:
    app.playing = not app.playing
    panel = app.query_one(AlivePanel)
    panel.set_class(not app.playing, "hidden")
    if app.play_timer is not None:
        app.play_timer.stop()
        app.play_timer = None
    if app.playing:
        app.play_timer = app.set_interval(1 / app.speed, lambda: step(app))
        cur = app.current()
        panel.show(app.snapshot, cur.ts if cur else 0)
    app.show_status()


def change_speed(app: ReplayApp, direction: int) -> None:
    i = SPEEDS.index(app.speed) if app.speed in SPEEDS else 2
    app.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + direction))]
    if app.playing:
        toggle(app)
        toggle(app)
    app.show_status()


def step(app: ReplayApp) -> None:
    lst = app.events_list
    if lst is None or app.window is None:
        return
    before = app.current()
    lst.action_move(1)
    if app.current() == before:  # the end: stop
        toggle(app)
