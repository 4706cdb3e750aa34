"""Event density over time as one strip of block characters; click to jump."""

from __future__ import annotations

import math

from rich.segment import Segment
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from forensics.timeline.query import Histogram

BLOCKS = " ▁▂▃▄▅▆▇█"


def cells(hist: Histogram, lo: int, hi: int, width: int) -> list[int]:
    """Counts per screen cell over [lo, hi): each bucket goes to the cell of its start."""
    out = [0] * max(1, width)
    span = max(1, hi - lo)
    for start, n in hist.bins:
        if start + hist.width <= lo or start >= hi:
            continue
        i = min(width - 1, max(0, (max(start, lo) - lo) * width // span))
        out[i] += n
    return out


class HistogramStrip(Widget):
    """Density of the selected events across [lo, hi); the window in view is marked."""

    COMPONENT_CLASSES = {"histogram--view", "histogram--bar"}
    DEFAULT_CSS = "HistogramStrip { height: 1; }"

    class Jump(Message):
        def __init__(self, ts: int) -> None:
            super().__init__()
            self.ts = ts

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hist: Histogram | None = None
        self.lo = 0
        self.hi = 1
        self.view: tuple[int, int] | None = None

    def show(self, hist: Histogram, lo: int, hi: int) -> None:
        self.hist, self.lo, self.hi = hist, lo, max(hi, lo + 1)
        self.refresh()

    def mark(self, first: int, last: int) -> None:
        self.view = (first, last)
        self.refresh()

    def ts_at(self, x: int) -> int:
        width = max(1, self.size.width)
        return self.lo + (self.hi - self.lo) * x // width

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y != 0 or self.hist is None or width <= 0:
            return Strip.blank(width, base)
        counts = cells(self.hist, self.lo, self.hi, width)
        top = max(counts) or 1
        bar = base + self.get_component_rich_style("histogram--bar")
        in_view = bar + self.get_component_rich_style("histogram--view")
        segs = []
        for x, n in enumerate(counts):
            level = 0 if n == 0 else 1 + int((len(BLOCKS) - 2) * math.log1p(n) / math.log1p(top))
            style = bar
            if self.view is not None:
                c0, c1 = self.ts_at(x), self.ts_at(x + 1)
                if c1 > self.view[0] and c0 <= self.view[1]:
                    style = in_view
            segs.append(Segment(BLOCKS[min(level, len(BLOCKS) - 1)], style))
        return Strip(segs, width)

    def on_click(self, event: events.Click) -> None:
        if self.hist is not None:
            self.post_message(self.Jump(self.ts_at(event.x)))
