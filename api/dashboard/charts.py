"""Inline SVG charts drawn on the server: no JavaScript, no chart library, nothing to build.

Two shapes cover the KPI page: horizontal bars (one per group, the target as a mark) and a
line over months (the target as a dashed line). Every text that reaches the SVG is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

MET, NOT_MET, NO_TARGET = "#2e7d32", "#c62828", "#607d8b"
TARGET = "#37474f"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    target: float | None
    met: bool | None
    href: str | None = None  # the cases the bar counted (a KPI drill-down)


def _colour(met: bool | None) -> str:
    return {True: MET, False: NOT_MET, None: NO_TARGET}[met]


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    size: int = 12,
    fill: str = "#263238",
    cls: str = "",
) -> str:
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{klass}>{escape(content)}</text>'
    )


def _role(linked: bool, title: str) -> str:
    """A chart is one image to a screen reader, unless its parts are links: an image may not
    hold links (axe: nested-interactive), so a linked chart is a named group of them."""
    return f'role="group" aria-label="{escape(title)}"' if linked else 'role="img"'


def bars(
    items: Sequence[Bar],
    *,
    scale_max: float,
    fmt: Callable[[float | None], str],
    title: str,
    width: int = 640,
) -> Markup:
    """One horizontal bar per group; green when the group met its target, red when not."""
    label_w, value_w, row_h, top = 180, 80, 26, 8
    plot_w = width - label_w - value_w
    height = top * 2 + row_h * max(len(items), 1)
    scale = scale_max if scale_max > 0 else 1.0
    parts = [
        f'<svg class="chart bars" {_role(any(i.href for i in items), title)} '
        f'viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, item in enumerate(items):
        y = top + i * row_h
        if item.href:
            parts.append(f'<a href="{escape(item.href)}">')
        name = item.label if len(item.label) <= 24 else item.label[:23] + "…"
        parts.append(_text(label_w - 8, y + 17, name, anchor="end"))
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{plot_w}" height="{row_h - 8}" '
            'fill="#eceff1"/>'
        )
        if item.value is not None:
            w = max(0.0, min(item.value / scale, 1.0)) * plot_w
            parts.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" '
                f'height="{row_h - 8}" fill="{_colour(item.met)}">'
                f"<title>{escape(item.label)}: {escape(fmt(item.value))}</title></rect>"
            )
        if item.target is not None:
            x = label_w + max(0.0, min(item.target / scale, 1.0)) * plot_w
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 1}" y2="{y + row_h - 1}" '
                f'stroke="{TARGET}" stroke-width="2"/>'
            )
        parts.append(_text(label_w + plot_w + 8, y + 17, fmt(item.value), cls="value"))
        if item.href:
            parts.append("</a>")
    parts.append("</svg>")
    return Markup("".join(parts))


# The least span of a trend's axis: 5 percentage points for a share, one point of a score.
# An axis hugging the data made a move of 0.3 points fill the chart and look dramatic.
MIN_SPAN_SHARE, MIN_SPAN_SCORE = 0.05, 1.0
STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


def _range(values: Sequence[float], ratio: bool) -> tuple[float, float]:
    """A y range that shows the differences that matter without inflating them: 99.2%
    against a 99.5% target is invisible on 0-100%, so the axis follows the data (and the
    target) on round numbers, but spans at least 5 points of a share (1 of a score), so a
    move of a few tenths stays a small move."""
    low, high = min(values), max(values)
    step = next((s for s in STEPS if s * 4 >= high - low), STEPS[-1])
    low = math.floor(low / step - 0.5) * step
    high = math.ceil(high / step + 0.5) * step
    span = MIN_SPAN_SHARE if ratio else MIN_SPAN_SCORE
    if high - low < span:
        middle = (low + high) / 2
        low, high = middle - span / 2, middle + span / 2
    if ratio and high > 1.0:
        low, high = max(0.0, low - (high - 1.0)), 1.0
    if low < 0.0:
        low, high = 0.0, high - low
    if high <= low:
        high = low + step
    return round(low, 6), round(high, 6)


def trend(
    points: Sequence[tuple[str, float | None]],
    *,
    target: float | None,
    ratio: bool,
    fmt: Callable[[float | None], str],
    title: str,
    links: Sequence[str | None] = (),
    width: int = 640,
    height: int = 190,
) -> Markup:
    """A line over the months; a month without data leaves a gap, not a zero. ``links``
    (one per point) makes each month's point open the cases it counted."""
    left, right, top, bottom = 64, 16, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    known = [v for _, v in points if v is not None]
    parts = [
        f'<svg class="chart trend" {_role(any(links), title)} viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#cfd8dc"/>',
    ]
    low, high = _range([*known, *([target] if target is not None else [])] or [0.0], ratio)

    def y_of(value: float) -> float:
        return top + plot_h - (value - low) / (high - low) * plot_h

    step = plot_w / max(len(points), 1)
    xs = [left + step * (i + 0.5) for i in range(len(points))]
    for tick in (low, high):
        parts.append(
            _text(left - 6, y_of(tick) + 4, fmt(tick), anchor="end", size=11, fill="#607d8b")
        )
    if target is not None:
        ty = y_of(target)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{TARGET}" stroke-dasharray="5 4"/>'
        )
    segment: list[str] = []
    for x, (_, point) in zip(xs, points, strict=True):
        if point is None:
            if len(segment) > 1:
                parts.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{x:.1f},{y_of(point):.1f}")
    if len(segment) > 1:
        parts.append(_polyline(segment))
    hrefs = list(links) or [None] * len(points)
    for x, (month, value), href in zip(xs, points, hrefs, strict=True):
        parts.append(_text(x, height - 10, month, anchor="middle", size=11))
        if value is None:
            continue
        met = None if target is None else value >= target
        parts.append(f'<a href="{escape(href)}">' if href else "")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="4" '
            f'fill="{_colour(met)}"><title>{escape(month)}: '
            f"{escape(fmt(value))}</title></circle>"
        )
        parts.append(_text(x, y_of(value) - 8, fmt(value), anchor="middle", size=10))
        parts.append("</a>" if href else "")
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(points: list[str]) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
