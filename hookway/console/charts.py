"""The overview's small charts, drawn here as inline SVG: no chart library, no script,
and they print, scale and read the same on a phone. Each is a bar per minute of the
last hour, stacked when it has several series, with its scale's top and its time axis
labelled, and a text alternative for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 600, 140
LEFT, RIGHT, TOP, BOTTOM = 40, 6, 10, 22


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # the class that colours it (console.css)
    values: Sequence[int]


def _top(peak: int) -> int:
    """A round scale top at or above ``peak``: 1, 2, 5, 10, 20, 50, …"""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= peak:
                return top * step
        top *= 10


def bars(title: str, minutes: Sequence[datetime], series: Sequence[Series]) -> SafeString:
    """A stacked bar chart of ``series`` (one value per minute of ``minutes``)."""
    count = len(minutes)
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    top = _top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(count, 1)
    gap = min(2.0, slot * 0.2)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, at in enumerate(minutes):
        x = LEFT + i * slot + gap / 2
        y = float(TOP + plot_h)
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect class="{s.css}" x="{x:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" '
                f'height="{h:.1f}"><title>{at:%H:%M} UTC: {value} {escape(s.name)}</title></rect>'
            )
    for i in (0, count // 2, count - 1):
        if 0 <= i < count:
            x = LEFT + (i + 0.5) * slot
            anchor = "start" if i == 0 else "end" if i == count - 1 else "middle"
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 5}" '
                f'text-anchor="{anchor}">{minutes[i]:%H:%M}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it is escaped
