"""The timeline's event density as an inline SVG bar chart (no script, no fonts fetched)."""

from __future__ import annotations

from forensics.report.html import esc
from forensics.timeutil import iso_ns

W, H = 1000, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 40


def density_svg(
    bins: list[tuple[int, int]],
    width_ns: int,
    lo: int,
    hi: int,
    markers: list[tuple[int, str, str]] | None = None,
) -> str:
    """Bars of events per bucket between ``lo`` and ``hi`` (UTC ns), and vertical
    markers ``(ts, label, css class)`` (a container start, findings)."""
    span = max(1, hi - lo)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    peak = max((n for _t, n in bins), default=0)

    def x(ts: int) -> float:
        return LEFT + (min(max(ts, lo), hi) - lo) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" '
        f'role="img" aria-label="events per {esc(_width(width_ns))} over time">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#f6f8fa"/>',
    ]
    bar_w = max(1.0, width_ns / span * plot_w - 0.5)
    for start, count in bins:
        if count <= 0 or start + width_ns < lo or start > hi:
            continue
        h = count / peak * plot_h if peak else 0
        parts.append(
            f'<rect x="{x(start):.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}" fill="#2e6da4"><title>{esc(iso_ns(start))}: {count} events'
            "</title></rect>"
        )
    for ts, label, cls in markers or []:
        if lo <= ts <= hi:
            color = {"start": "#1a7f37"}.get(cls, "#c0392b")
            parts.append(
                f'<line x1="{x(ts):.1f}" x2="{x(ts):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                f'stroke="{color}" stroke-width="1.5" stroke-dasharray="4 2">'
                f"<title>{esc(label)}</title></line>"
            )
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{peak}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        ts = lo + int(span * frac)
        parts.append(
            f'<text x="{LEFT + plot_w * frac:.1f}" y="{H - BOTTOM + 16}" '
            f'text-anchor="{anchor}">{esc(iso_ns(ts)[:23])}Z</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 6}" text-anchor="middle">'
        f"events per {esc(_width(width_ns))} (UTC)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _width(ns: int) -> str:
    for unit, size in (("day", 86400 * 10**9), ("h", 3600 * 10**9), ("min", 60 * 10**9),
                       ("s", 10**9), ("ms", 10**6), ("µs", 10**3)):  # fmt: skip
        if ns >= size:
            n = ns / size
            return f"{n:g} {unit}"
    return f"{ns} ns"


__all__ = ["density_svg"]
