"""The timeline itself: a list that renders only the rows on screen."""

from __future__ import annotations

from datetime import tzinfo

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from forensics.timeline import Event, Flag
from forensics.timeline.events import event_key
from forensics.timeline.text import one_line
from tui.replay.paging import Window
from tui.replay.render import fmt_time

TIME_W = 36
WHAT_W = 17
SOURCE_W = 8
ENTITY_W = 28
#: the message is the most useful column: the others give way to keep this much of it
MIN_MESSAGE = 40
#: (what, source, entity) widths tried in turn until the message gets MIN_MESSAGE
_NARROWER = ((WHAT_W, SOURCE_W, ENTITY_W), (WHAT_W, SOURCE_W, 18), (10, 7, 14), (10, 7, 10))


def column_widths(width: int, zone: tzinfo | None) -> tuple[bool, tuple[int, int, int, int]]:
    """(short times, (time, what, source, entity) widths) for a list ``width`` cells wide.

    The other columns narrow first, then times drop below the millisecond (the
    detail pane keeps the nanoseconds), so the message column stays visible."""
    full = 35 if zone is not None else 30
    for short, time_w in ((False, full), (True, full - 6)):
        for what, source, entity in _NARROWER:
            used = 2 + time_w + what + source + entity + 4
            if width - used >= MIN_MESSAGE:
                return short, (time_w, what, source, entity)
    return True, (full - 6, *_NARROWER[-1])


class EventList(Widget, can_focus=True):
    """Rows of the :class:`~tui.replay.paging.Window`; every move is a keyset query."""

    COMPONENT_CLASSES = {
        "event-list--cursor",
        "event-list--hit",
        "event-list--mark",
        "event-list--flag",
        "event-list--header",
    }
    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "PgUp", show=False),
        Binding("pagedown,space", "page(1)", "PgDn", show=False),
        Binding("home", "home", "Home", show=False),
        Binding("end,G", "end", "End", show=False),
    ]

    class Moved(Message):
        """The cursor is on another event (or on none)."""

        def __init__(self, event: Event | None) -> None:
            super().__init__()
            self.event = event

    def __init__(self, window: Window, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.window = window
        self.zone: tzinfo | None = None
        self.hits: set[int] = set()
        self.marked: set[str] = set()
        self._last: tuple[int, int] | None = None

    # -- moving -----------------------------------------------------------------------
    def _moved(self) -> None:
        self.refresh()
        ev = self.window.current
        k = (ev.ts, ev.id) if ev is not None else None
        if k != self._last:
            self._last = k
            self.post_message(self.Moved(ev))

    def action_move(self, delta: int) -> None:
        self.window.move(delta)
        self._moved()

    def action_page(self, direction: int) -> None:
        self.window.page(direction)
        self._moved()

    def action_home(self) -> None:
        self.window.home()
        self._moved()

    def action_end(self) -> None:
        self.window.end()
        self._moved()

    def goto_time(self, ts: int) -> None:
        self.window.goto_time(ts)
        self._moved()

    def goto_event(self, ev: Event) -> None:
        self.window.goto_event(ev, above=min(3, max(0, self.body_height // 3)))
        self._moved()

    def reload(self) -> None:
        self.window.reload()
        self._moved()

    @property
    def body_height(self) -> int:
        return max(1, self.size.height - 1)

    def on_resize(self, _event: events.Resize) -> None:
        self.window.resize(self.body_height)
        self._moved()

    def on_mount(self) -> None:
        self.window.resize(self.body_height)
        self._moved()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_move(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_move(-3)

    def on_click(self, event: events.Click) -> None:
        row = event.y - 1
        if 0 <= row < len(self.window.rows):
            self.window.cursor = row
            self._moved()

    # -- drawing ----------------------------------------------------------------------
    def _cells(self, ev: Event) -> list[tuple[str, int]]:
        what = ev.macb or ev.kind
        short, (tw, ww, sw, ew) = column_widths(self.size.width, self.zone)
        stamp = fmt_time(ev.ts, self.zone)
        if short:  # ...T22:13:21.123456789Z -> ...T22:13:21.123Z (the pane has it all)
            stamp = stamp[:23] + stamp[29:]
        return [(stamp, tw), (what, ww), (ev.source, sw), (one_line(ev.entity), ew)]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            head = self.get_component_rich_style("event-list--header")
            _short, (tw, ww, sw, ew) = column_widths(width, self.zone)
            text = (
                "  "
                + "".join(
                    set_cell_size(t, w) + " "
                    for t, w in (
                        ("time (local)" if self.zone else "time (UTC)", tw),
                        ("MACB/kind", ww),
                        ("source", sw),
                        ("entity", ew),
                    )
                )
                + "message"
            )
            return Strip([Segment(set_cell_size(text, width), base + head)], width)
        row = y - 1
        rows = self.window.rows
        if row >= len(rows):
            return Strip.blank(width, base)
        ev = rows[row]
        style = base
        if ev.id in self.hits:
            style += self.get_component_rich_style("event-list--hit")
        if row == self.window.cursor:
            style += self.get_component_rich_style("event-list--cursor")
        mark = "★ " if event_key(ev) in self.marked else "  "
        segs = [Segment(mark, style + self.get_component_rich_style("event-list--mark"))]
        for text, w in self._cells(ev):
            segs.append(Segment(set_cell_size(text, w) + " ", style))
        message = one_line(ev.message)
        if ev.flags & (Flag.TIME_INFERRED | Flag.TIME_INVALID):
            message += " ~"
        segs.append(Segment(message, style))
        used = sum(cell_len(s.text) for s in segs)
        if used < width:
            segs.append(Segment(" " * (width - used), style))
        return Strip(segs).crop(0, width)

    def get_content_height(self, *_args: object) -> int:
        return self.window.height + 1

    @property
    def cursor_style(self) -> Style:
        return self.get_component_rich_style("event-list--cursor")
