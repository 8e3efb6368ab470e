"""Figures of the report, drawn from precomputed data (no statistics here).

Each function takes the per-model panel data of :func:`sbc.results.calibration.panel_data` for one
group of estimands and returns a figure with one panel per model, side by side, so that
pooling levels can be compared at a glance; they are drawn with the small SVG writer of
:mod:`sbc.report.svg` (fast). :func:`to_svg` turns a figure into inline SVG; the sweep and
real-data pages still pass matplotlib figures to it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from sbc.report import svg

PANEL = (3.1, 2.5)
"""Width and height of one panel, in inches."""

BAND = "#9ecae1"


def _panels(panels: Mapping[str, dict], xlabel: str, ylabel: str) -> list[svg.Panel]:
    out = [svg.Panel(title=model, xlabel=xlabel) for model in panels]
    out[0].ylabel = ylabel
    return out


def ecdf_difference(panels: Mapping[str, dict]) -> svg.Row:
    """ECDF minus the uniform CDF of fractional ranks, with the simultaneous band shaded."""
    row = _panels(panels, "fractional rank", "ECDF - uniform")
    for ax, data in zip(row, panels.values(), strict=True):
        for i, (estimand, band) in enumerate(data["ecdf"].items()):
            x = band["x"]
            if i == 0:
                ax.band(x, band["lower"] - x, band["upper"] - x, label="99% simultaneous band")
            ax.step(x, band["ecdf"] - x, label=estimand)
        ax.hline(0)
    return svg.Row(row)


def rank_histogram(panels: Mapping[str, dict]) -> svg.Row:
    """Rank histograms (one step line per estimand) with the 99% range of a bin's count."""
    row = _panels(panels, "fractional rank", "simulations per bin")
    for ax, data in zip(row, panels.values(), strict=True):
        lower, upper = data["hist_band"]
        for i, (estimand, counts) in enumerate(data["hist"].items()):
            edges = np.linspace(0, 1, len(counts) + 1)
            if i == 0 and np.isfinite(lower):
                ax.hspan(lower, upper, label="99% range per bin")
            ax.stairs(counts, edges, label=estimand)
    return svg.Row(row)


def coverage(panels: Mapping[str, dict]) -> svg.Row:
    """Empirical against nominal coverage of central intervals, with 95% binomial intervals."""
    row = _panels(panels, "nominal level", "empirical coverage")
    for ax, data in zip(row, panels.values(), strict=True):
        curve = data["coverage"]
        ax.line([0.4, 1], [0.4, 1], width=0.6)
        ax.points(curve["level"], curve["coverage"], curve["lower"], curve["upper"], size=2.5)
        ax.xlim, ax.ylim = (0.4, 1.0), (0.0, 1.02)
    return svg.Row(row)


def estimates(panels: Mapping[str, dict]) -> svg.Row:
    """Posterior mean with 90% interval against the true value, one colour per estimand."""
    row = _panels(panels, "true value", "posterior mean, 90% interval")
    for ax, data in zip(row, panels.values(), strict=True):
        values = []
        for estimand, est in data["estimates"].items():
            ax.points(
                est["truth"], est["mean"], est["lower"], est["upper"], label=estimand, alpha=0.6
            )
            values.append(np.concatenate([est["truth"], est["lower"], est["upper"]]))
        if values:
            both = np.concatenate(values)
            both = both[np.isfinite(both)]
            if both.size:
                lims = (both.min(), both.max())
                ax.line(lims, lims, width=0.6)
    return svg.Row(row)


KINDS = {
    "ECDF difference": ecdf_difference,
    "Rank histogram": rank_histogram,
    "Coverage": coverage,
    "Estimates vs truth": estimates,
}
"""Figure kinds of the report, in display order."""


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (for the sweep and fit pages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_svg(figure: svg.Row | svg.Stack | Any) -> str:
    """Inline SVG of a report figure: an :class:`sbc.report.svg.Row`, or a matplotlib figure.

    A matplotlib figure's rasterised artists are embedded as PNG, and the figure is closed.
    """
    if isinstance(figure, svg.Row | svg.Stack):
        return figure.to_svg()
    plt = pyplot()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", dpi=110)
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def power_curves(curves: Mapping[str, Mapping[str, np.ndarray]], n: int) -> Any:
    """Detection power against the number of simulations, one line per mutant.

    ``curves[model]`` holds arrays ``simulations``, ``power``, ``lower``, ``upper`` and
    ``projected`` (bool: projected from the run's size on). Within the run, points with
    their intervals; the projection dashed. Models whose name starts with ``*`` (escapes) are
    labelled. A matplotlib figure (log axis, dashed projections), drawn through :func:`pyplot`.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    for i, (model, c) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        escaped = model.startswith("*")
        width = 1.4 if escaped else 0.6
        within = ~np.asarray(c["projected"], dtype=bool)
        x, y = np.asarray(c["simulations"], dtype=float), np.asarray(c["power"], dtype=float)
        ax.plot(
            x[within],
            y[within],
            "-o",
            color=colour,
            linewidth=width,
            markersize=2.5,
            label=model.lstrip("*") if escaped else None,
        )
        if escaped:
            err = np.vstack([y - c["lower"], c["upper"] - y])[:, within]
            ax.errorbar(
                x[within], y[within], yerr=err, fmt="none", color=colour, linewidth=0.6, capsize=2
            )
        if (~within).any():
            ax.plot(x[~within], y[~within], "--", color=colour, linewidth=width)
    ax.axvline(n, color="black", linewidth=0.6)
    ax.axhline(0.8, color="grey", linewidth=0.5, linestyle=":")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("number of simulations (log scale; vertical line: this run)", fontsize=8)
    ax.set_ylabel("chance of a flag", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, linewidth=0.5)
    if any(m.startswith("*") for m in curves):
        fig.legend(loc="outside right upper", fontsize=7, frameon=False)
    return fig
