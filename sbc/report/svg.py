"""A small SVG chart writer for the report: rows of panels of lines, steps, bands and points.

The report draws a few hundred simple panels; matplotlib spends most of a report's time on
layout and tick machinery it does not need here (5.6 s of a 26 s heights run). This writes
the SVG text directly: axes with "nice" ticks, a light grid, a title per panel, a shared
legend, and these marks: polylines (solid or dashed), post-steps, stairs, filled step bands,
horizontal spans, horizontal and vertical reference lines, and points with vertical error
bars; either axis linear or logarithmic, ticks chosen or given. Every page of sbc draws with
it. No statistics here, only drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

import numpy as np

COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
"""Series colours (matplotlib's tab10), cycled per panel."""

BAND = "#9ecae1"
WIDTH, HEIGHT = 300, 230
"""Size of one panel in pixels, axes labels and title included."""
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 22, 36
"""Margins of a panel's plotting area."""


def nice_ticks(low: float, high: float, target: int = 5) -> np.ndarray:
    """Round tick values covering ``[low, high]`` with about ``target`` intervals.

    Steps are 1, 2, 2.5 or 5 times a power of ten, as in matplotlib's default locator.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return np.array([])
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
        low = low - (abs(low) or 1.0) * 0.1
    raw = (high - low) / target
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    first = math.ceil(low / step - 1e-9) * step
    ticks = np.arange(first, high + step * 1e-6, step)
    return np.round(ticks, 12)


def _label(value: float) -> str:
    text = f"{value:.6g}"
    return "0" if text in ("-0", "0") else text


@dataclass
class Panel:
    """One plotting area: marks in data coordinates, drawn when the figure is rendered."""

    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    note: str = ""
    xscale: str = "linear"
    yscale: str = "linear"
    xticks: tuple[float, ...] | None = None
    marks: list[tuple] = field(default_factory=list)
    _next: int = 0

    def color(self) -> str:
        """The next series colour of this panel."""
        colour = COLORS[self._next % len(COLORS)]
        self._next += 1
        return colour

    def line(
        self,
        x,
        y,
        color: str = "black",
        width: float = 0.8,
        label: str | None = None,
        dash: str = "",
    ):
        """A polyline through ``(x, y)``; ``dash`` an SVG dash pattern (``"4 2"``)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        self.marks.append(("line", x, y, color, width, label, dash))

    def step(self, x, y, color: str | None = None, label: str | None = None):
        """A post-step line: ``y[i]`` holds from ``x[i]`` to ``x[i + 1]``."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        xs, ys = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
        self.line(xs, ys, color or self.color(), 1.0, label)

    def stairs(self, counts, edges, color: str | None = None, label: str | None = None):
        """A histogram outline: ``counts[i]`` between ``edges[i]`` and ``edges[i + 1]``."""
        counts, edges = np.asarray(counts, float), np.asarray(edges, float)
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(counts, 2)
        self.line(xs, ys, color or self.color(), 1.0, label)

    def band(self, x, lower, upper, color: str = BAND, label: str | None = None):
        """A filled post-step band between ``lower`` and ``upper``."""
        x = np.asarray(x, float)
        xs = np.repeat(x, 2)[1:]
        lo = np.repeat(np.asarray(lower, float), 2)[:-1]
        hi = np.repeat(np.asarray(upper, float), 2)[:-1]
        self.marks.append(("band", xs, lo, hi, color, label))

    def hspan(self, lower: float, upper: float, color: str = BAND, label: str | None = None):
        """A horizontal band across the whole panel."""
        self.marks.append(("hspan", float(lower), float(upper), color, label))

    def hline(self, y: float, color: str = "black"):
        """A horizontal reference line across the whole panel."""
        self.marks.append(("hline", float(y), color))

    def vline(self, x: float, color: str = "black"):
        """A vertical reference line across the whole panel."""
        self.marks.append(("vline", float(x), color))

    def points(self, x, y, lower=None, upper=None, color=None, label=None, size=2.0, alpha=1.0):
        """Dots at ``(x, y)``, with vertical error bars from ``lower`` to ``upper`` if given."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        lo = None if lower is None else np.asarray(lower, float)
        hi = None if upper is None else np.asarray(upper, float)
        self.marks.append(("points", x, y, lo, hi, color or self.color(), label, size, alpha))

    def _extent(self) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for mark in self.marks:
            kind = mark[0]
            if kind in ("line", "points"):
                xs.append(mark[1])
                ys.append(mark[2])
                if kind == "points":
                    ys += [m for m in (mark[3], mark[4]) if m is not None]
            elif kind == "band":
                xs.append(mark[1])
                ys += [mark[2], mark[3]]
            elif kind == "hspan":
                ys.append(np.array(mark[1:3]))
            elif kind == "hline":
                ys.append(np.array([mark[1]]))
            elif kind == "vline":
                xs.append(np.array([mark[1]]))
        return xs, ys

    def limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Data limits: the set limits, else the marks' range with a 4% margin.

        On a log axis the margin is taken in log space and non-positive values are left out.
        """
        xs, ys = self._extent()
        if self.xticks is not None:
            xs = [*xs, np.asarray(self.xticks, float)]
        return (
            self.xlim or _scaled_range(xs, self.xscale),
            self.ylim or _scaled_range(ys, self.yscale),
        )

    def legend(self) -> list[tuple[str, str, str, str]]:
        """``(kind, colour, label, dash)`` of every labelled mark."""
        out = []
        for mark in self.marks:
            kind = mark[0]
            if kind == "line" and mark[5]:
                out.append((kind, mark[3], mark[5], mark[6]))
            elif kind == "points" and mark[6]:
                out.append((kind, mark[5], mark[6], ""))
            elif kind == "band" and mark[-1]:
                out.append((kind, mark[4], mark[-1], ""))
            elif kind == "hspan" and mark[-1]:
                out.append((kind, mark[3], mark[-1], ""))
        return out


def _range(arrays: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    if not values.size:
        return (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.04 or (abs(low) * 0.05 or 0.5)
    return (low - pad, high + pad)


def _scaled_range(arrays: list[np.ndarray], scale: str) -> tuple[float, float]:
    if scale != "log":
        return _range(arrays)
    logs = []
    for a in arrays:
        a = np.ravel(np.asarray(a, float))
        logs.append(np.log10(a[a > 0]))
    low, high = _range(logs)
    return (10.0**low, 10.0**high)


def log_ticks(low: float, high: float) -> np.ndarray:
    """Powers of ten within ``[low, high]`` (positive), or 1-2-5 steps when too few."""
    if not (low > 0 and high > low):
        return np.array([])
    powers = 10.0 ** np.arange(math.ceil(math.log10(low) - 1e-9), math.log10(high) + 1e-9)
    if powers.size >= 2:
        return powers
    decades = 10.0 ** np.arange(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    steps = np.outer(decades, [1, 2, 5]).ravel()
    return steps[(steps >= low * (1 - 1e-9)) & (steps <= high * (1 + 1e-9))]


def _fmt(values: np.ndarray) -> list[str]:
    return [f"{v:.1f}" for v in values]


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    """An SVG path through the finite points, broken where a value is missing."""
    parts, pen = [], "M"
    for x, y in zip(_fmt(xs), _fmt(ys), strict=True):
        if x == "nan" or y == "nan":
            pen = "M"
            continue
        parts.append(f"{pen}{x} {y}")
        pen = "L"
    return "".join(parts)


@dataclass
class Row:
    """Panels side by side, with an optional shared y range and one legend."""

    panels: list[Panel]
    sharey: bool = True

    def to_svg(self) -> str:
        """The row as one ``<svg>`` element."""
        limits = [p.limits() for p in self.panels]
        if self.sharey and limits:
            low = min(y[0] for _, y in limits)
            high = max(y[1] for _, y in limits)
            limits = [(x, (low, high)) for x, _ in limits]
        legend = self.panels[0].legend() if self.panels else []
        legend_width = 0 if not 1 < len(legend) <= 12 else 16 + 7 * max(len(e[2]) for e in legend)
        width = WIDTH * len(self.panels) + legend_width
        body = [
            _panel_svg(p, x, y, i * WIDTH)
            for i, (p, (x, y)) in enumerate(zip(self.panels, limits, strict=True))
        ]
        if legend_width:
            body.append(_legend_svg(legend, WIDTH * len(self.panels) + 6))
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" '
            f'width="{width}" height="{HEIGHT}" font-family="sans-serif" font-size="9">'
            + "".join(body)
            + "</svg>"
        )


@dataclass
class Stack:
    """Rows of panels one above the other (each row its own ``<svg>``)."""

    rows: list[Row]

    def to_svg(self) -> str:
        """The rows' SVG elements, each on its own line."""
        return "<br>".join(row.to_svg() for row in self.rows)


def _panel_svg(panel: Panel, xlim, ylim, offset: float) -> str:
    x0, x1 = offset + LEFT, offset + WIDTH - RIGHT
    y0, y1 = HEIGHT - BOTTOM, TOP

    fx, fy = _transform(panel.xscale), _transform(panel.yscale)
    xa, xb, ya, yb = fx(xlim[0]), fx(xlim[1]), fy(ylim[0]), fy(ylim[1])

    def sx(v):
        return x0 + (fx(np.asarray(v, float)) - xa) / (xb - xa) * (x1 - x0)

    def sy(v):
        return y0 - (fy(np.asarray(v, float)) - ya) / (yb - ya) * (y0 - y1)

    out = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="white"/>']
    grid, labels = [], []
    if panel.xticks is not None:
        xticks = np.asarray(panel.xticks, float)
    else:
        xticks = log_ticks(*xlim) if panel.xscale == "log" else nice_ticks(*xlim)
    yticks = log_ticks(*ylim) if panel.yscale == "log" else nice_ticks(*ylim)
    for t in xticks:
        if xlim[0] <= t <= xlim[1]:
            px = f"{float(sx(t)):.1f}"
            grid.append(f"M{px} {y1}V{y0}")
            labels.append(f'<text x="{px}" y="{y0 + 11}" text-anchor="middle">{_label(t)}</text>')
    for t in yticks:
        if ylim[0] <= t <= ylim[1]:
            py = f"{float(sy(t)):.1f}"
            grid.append(f"M{x0} {py}H{x1}")
            labels.append(
                f'<text x="{x0 - 3}" y="{py}" text-anchor="end" dy="3">{_label(t)}</text>'
            )
    out.append(f'<path d="{"".join(grid)}" stroke="#ddd" stroke-width="0.5" fill="none"/>')
    out.append(f'<svg x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" overflow="hidden">')
    out.append(f'<g transform="translate({-x0} {-y1})">')
    for mark in panel.marks:
        out.append(_mark_svg(mark, sx, sy, x0, x1, y0, y1))
    out.append("</g></svg>")
    out.append(
        f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" '
        'stroke="#444" stroke-width="0.6"/>'
    )
    out += labels
    mid = (x0 + x1) / 2
    out.append(
        f'<text x="{mid}" y="{TOP - 8}" text-anchor="middle" font-size="10">'
        f"{escape(panel.title)}</text>"
    )
    if panel.note:
        out.append(
            f'<text x="{mid}" y="{(y0 + y1) / 2}" text-anchor="middle">{escape(panel.note)}</text>'
        )
    out.append(
        f'<text x="{mid}" y="{HEIGHT - 8}" text-anchor="middle">{escape(panel.xlabel)}</text>'
    )
    if panel.ylabel:
        ym = (y0 + y1) / 2
        out.append(
            f'<text transform="translate({offset + 10} {ym}) rotate(-90)" '
            f'text-anchor="middle">{escape(panel.ylabel)}</text>'
        )
    return "".join(out)


def _transform(scale: str):
    """Data to axis coordinates: identity, or log10 (non-positive values become NaN)."""
    if scale != "log":
        return lambda v: v

    def log(v):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.asarray(v, float) > 0, np.log10(np.abs(v)), np.nan)

    return log


def _mark_svg(mark: tuple, sx, sy, x0: float, x1: float, y0: float, y1: float) -> str:
    kind = mark[0]
    if kind == "line":
        _, xs, ys, colour, width, _, dash = mark
        d = _path(sx(xs), sy(ys))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<path d="{d}" stroke="{colour}" stroke-width="{width}"{dashed} fill="none"/>'
    if kind == "vline":
        _, x, colour = mark
        px = f"{float(sx(x)):.1f}"
        return f'<path d="M{px} {y1}V{y0}" stroke="{colour}" stroke-width="0.6"/>'
    if kind == "band":
        _, xs, lo, hi, colour, _ = mark
        px = sx(xs)
        d = _path(np.concatenate([px, px[::-1]]), np.concatenate([sy(hi), sy(lo)[::-1]]))
        return f'<path d="{d}Z" fill="{colour}" fill-opacity="0.6" stroke="none"/>'
    if kind == "hspan":
        _, lo, hi, colour, _ = mark
        top, bottom = float(sy(hi)), float(sy(lo))
        return (
            f'<rect x="{x0}" y="{top:.1f}" width="{x1 - x0}" height="{bottom - top:.1f}" '
            f'fill="{colour}" fill-opacity="0.6"/>'
        )
    if kind == "hline":
        _, y, colour = mark
        py = f"{float(sy(y)):.1f}"
        return f'<path d="M{x0} {py}H{x1}" stroke="{colour}" stroke-width="0.6"/>'
    _, xs, ys, lo, hi, colour, _, size, alpha = mark
    px, py = _fmt(sx(xs)), _fmt(sy(ys))
    out = []
    if lo is not None and hi is not None:
        bars = "".join(
            f"M{x} {a}V{b}"
            for x, a, b in zip(px, _fmt(sy(lo)), _fmt(sy(hi)), strict=True)
            if "nan" not in (x, a, b)
        )
        out.append(
            f'<path d="{bars}" stroke="{colour}" stroke-width="0.6" '
            f'stroke-opacity="{alpha}" fill="none"/>'
        )
    dots = "".join(f"M{x} {y}h0" for x, y in zip(px, py, strict=True) if "nan" not in (x, y))
    out.append(
        f'<path d="{dots}" stroke="{colour}" stroke-width="{2 * size}" stroke-linecap="round" '
        f'stroke-opacity="{alpha}" fill="none"/>'
    )
    return "".join(out)


def _legend_svg(entries: list[tuple[str, str, str, str]], x: float) -> str:
    out = []
    for i, (kind, colour, label, dash) in enumerate(entries):
        y = TOP + 4 + 12 * i
        if kind in ("band", "hspan"):
            swatch = f'<rect x="{x}" y="{y - 4}" width="12" height="7" fill="{colour}"/>'
        else:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            swatch = f'<path d="M{x} {y}h12" stroke="{colour}" stroke-width="2"{dashed}/>'
        out.append(f'{swatch}<text x="{x + 15}" y="{y + 3}">{escape(label)}</text>')
    return "".join(out)
