"""A window of the timeline the size of the screen, moved by keyset queries.

The view never counts rows to find where it is: every move is "the N events
after (ts, id)" or "the N events before (ts, id)" on the store's time index,
so a jump to the end of five million events costs what a jump to the start
costs. Positions ("event 1,234 of 5,000,000") are computed apart, in a worker.
No Textual here: this is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensics.timeline import Event, Query, Timeline

BEFORE_ALL = (-(1 << 63), -1)


def key(ev: Event) -> tuple[int, int]:
    return (ev.ts, ev.id)


@dataclass
class Window:
    """``rows`` on screen (at most ``height``) and the ``cursor`` row among them."""

    tl: Timeline
    query: Query = field(default_factory=Query)
    height: int = 20
    rows: list[Event] = field(default_factory=list)
    cursor: int = 0
    #: the store under it is being swapped (a growing one for the finished one):
    #: the rows stay as they are and no move asks the store anything
    frozen: bool = False

    @property
    def current(self) -> Event | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _after(self, k: tuple[int, int], n: int) -> list[Event]:
        return self.tl.events(self.query, after=k, limit=n) if n > 0 else []

    def _before(self, k: tuple[int, int] | None, n: int) -> list[Event]:
        return self.tl.events_before(self.query, k, n) if n > 0 else []

    def _fill_from(self, k: tuple[int, int], cursor_on: tuple[int, int] | None = None) -> None:
        """Rows starting just after ``k``; topped up from before when the end is near."""
        rows = self._after(k, self.height)
        if len(rows) < self.height:
            rows = self._before(key(rows[0]) if rows else None, self.height - len(rows)) + rows
        self.rows = rows
        self.cursor = 0
        if cursor_on is not None:
            for i, ev in enumerate(rows):
                if key(ev) >= cursor_on:
                    self.cursor = i
                    break
            else:
                self.cursor = max(0, len(rows) - 1)

    # -- moves ------------------------------------------------------------------------
    def home(self) -> None:
        if self.frozen:
            return
        self._fill_from(BEFORE_ALL)

    def end(self) -> None:
        if self.frozen:
            return
        self.rows = self._before(None, self.height) if self.height else []
        self.cursor = max(0, len(self.rows) - 1)

    def goto_time(self, ts: int) -> None:
        """The first event at or after ``ts`` on the cursor (the last one if none)."""
        if self.frozen:
            return
        self._fill_from((ts, -1), cursor_on=(ts, -1))

    def goto_event(self, ev: Event, above: int = 3) -> None:
        """Show ``ev`` on the cursor with ``above`` rows of context above it."""
        if self.frozen:
            return
        before = self._before(key(ev), min(above, max(0, self.height - 1)))
        after = self._after(key(ev), self.height - len(before) - 1)
        self.rows = [*before, ev, *after]
        self.cursor = len(before)

    def reload(self) -> None:
        """Same place after the query or the height changed (nearest event to the top row)."""
        if self.frozen:
            return
        anchor = self.current
        if anchor is None:
            self.home()
            return
        top = self.rows[0]
        self._fill_from((top.ts, top.id - 1), cursor_on=key(anchor))

    def move(self, delta: int) -> None:
        """Cursor up or down by ``delta`` rows, scrolling when it leaves the window."""
        if self.frozen:
            return
        if not self.rows:
            return
        target = self.cursor + delta
        if 0 <= target < len(self.rows):
            self.cursor = target
            return
        if target >= len(self.rows):
            more = self._after(key(self.rows[-1]), target - len(self.rows) + 1)
            if not more:
                self.cursor = len(self.rows) - 1
                return
            self.rows = (self.rows + more)[-self.height :]
            self.cursor = len(self.rows) - 1
        else:
            more = self._before(key(self.rows[0]), -target)
            if not more:
                self.cursor = 0
                return
            self.rows = (more + self.rows)[: self.height]
            self.cursor = 0

    def page(self, direction: int) -> None:
        """One screen down (1) or up (-1), the cursor keeping its screen row."""
        if self.frozen:
            return
        if not self.rows:
            return
        row = self.cursor
        if direction > 0:
            more = self._after(key(self.rows[-1]), self.height)
            if not more:
                self.cursor = len(self.rows) - 1
                return
            self.rows = (self.rows + more)[-self.height :]
        else:
            more = self._before(key(self.rows[0]), self.height)
            if not more:
                self.cursor = 0
                return
            self.rows = (more + self.rows)[: self.height]
        self.cursor = min(row, len(self.rows) - 1)

    def resize(self, height: int) -> None:
        height = max(1, height)
        if height == self.height and self.rows:
            return
        self.height = height
        if self.frozen:
            return
        if self.rows:
            self.reload()
        else:
            self.home()
