"""Figures of the report, drawn from precomputed data (no statistics here).

Each function takes the per-model panel data of :func:`sbc.results.calibration.panel_data` for one
group of estimands and returns a figure with one panel per model, side by side, so that
pooling levels can be compared at a glance; they are drawn with the small SVG writer of
:mod:`sbc.report.svg` (fast), as is every other page's figure.
"""

from __future__ import annotations

from collections.abc import Mapping

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


POINTS = 300
"""Most simulations drawn per estimand in a scatter (evenly spaced in simulation order), so
a figure's size does not grow with the run; every statistic still uses all of them."""


def thinned(n: int, most: int = POINTS) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` simulations, evenly spaced, first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, most)).astype(int))


def estimates(panels: Mapping[str, dict]) -> svg.Row:
    """Posterior mean with 90% interval against the true value, one colour per estimand.

    At most :data:`POINTS` simulations per estimand are drawn; the axis label says so.
    """
    row = _panels(panels, "true value", "posterior mean, 90% interval")
    for ax, data in zip(row, panels.values(), strict=True):
        values = []
        sizes = [len(est["truth"]) for est in data["estimates"].values()]
        if sizes and max(sizes) > POINTS:
            ax.xlabel = f"true value ({POINTS} of {max(sizes)} simulations drawn)"
        for estimand, est in data["estimates"].items():
            keep = thinned(len(est["truth"]))
            ax.points(
                est["truth"][keep],
                est["mean"][keep],
                est["lower"][keep],
                est["upper"][keep],
                label=estimand,
                alpha=0.6,
            )
            values.append(np.concatenate([est["truth"], est["lower"], est["upper"]]))
        if values:
            both = np.concatenate(values)
            both = both[np.isfinite(both)]
            if both.size:
                lims = (both.min(), both.max())
                ax.line(lims, lims, width=0.6)
    return svg.Row(row)


def z_contraction(panels: Mapping[str, dict]) -> svg.Row:
    """Posterior z-score against posterior contraction, one point per simulation and estimand.

    Lines at z = +/-2; at most :data:`POINTS` simulations per estimand are drawn. A
    calibrated posterior keeps about 95% of its points between the lines whatever its
    contraction; an over-confident approximation spreads them wider.
    """
    row = _panels(panels, "posterior contraction", "posterior z-score")
    for ax, data in zip(row, panels.values(), strict=True):
        for estimand, pair in data["contraction"].items():
            keep = thinned(len(pair["z"]))
            x, z = pair["contraction"][keep], pair["z"][keep]
            finite = np.isfinite(x) & np.isfinite(z)
            ax.points(x[finite], z[finite], label=estimand, alpha=0.6)
        ax.hline(2.0, "grey")
        ax.hline(-2.0, "grey")
    return svg.Row(row)


KINDS = {
    "ECDF difference": ecdf_difference,
    "Rank histogram": rank_histogram,
    "Coverage": coverage,
    "Estimates vs truth": estimates,
    "Z-score vs contraction": z_contraction,
}
"""Figure kinds of the report, in display order."""


def to_svg(figure: svg.Row | svg.Stack) -> str:
    """Inline SVG of a report figure."""
    return figure.to_svg()


def power_curves(curves: Mapping[str, Mapping[str, np.ndarray]], n: int) -> svg.Row:
    """Detection power against the number of simulations, one line per mutant.

    ``curves[model]`` holds arrays ``simulations``, ``power``, ``lower``, ``upper`` and
    ``projected`` (bool: projected from the run's size on). Within the run, points joined
    by a line; the projection dashed. Models whose name starts with ``*`` (escapes) are
    drawn thicker, with their intervals, and labelled. Log-scaled simulation axis with
    ticks at powers of two; a vertical line at this run's size.
    """
    ax = svg.Panel(
        title="",
        xlabel="number of simulations (log scale; vertical line: this run)",
        ylabel="chance of a flag",
        xscale="log",
        ylim=(-0.02, 1.02),
    )
    sizes = [np.asarray(c["simulations"], dtype=float) for c in curves.values()] + [
        np.array([float(n)])
    ]
    every = np.concatenate(sizes)
    every = every[np.isfinite(every) & (every > 0)]
    if every.size:
        powers = 2.0 ** np.arange(np.ceil(np.log2(every.min())), np.log2(every.max()) + 1e-9)
        step = max(1, int(np.ceil(powers.size / 8)))
        ax.xticks = tuple(powers[::step])
    for i, (model, c) in enumerate(curves.items()):
        colour = svg.COLORS[i % len(svg.COLORS)]
        escaped = model.startswith("*")
        width = 1.4 if escaped else 0.6
        within = ~np.asarray(c["projected"], dtype=bool)
        x, y = np.asarray(c["simulations"], dtype=float), np.asarray(c["power"], dtype=float)
        label = model.lstrip("*") if escaped else None
        ax.line(x[within], y[within], colour, width, label)
        bars = (np.asarray(c["lower"])[within], np.asarray(c["upper"])[within])
        ax.points(x[within], y[within], *(bars if escaped else (None, None)), color=colour)
        if (~within).any():
            # the dashed projection starts from the last point within the run
            start = max(int(np.flatnonzero(within)[-1]) if within.any() else 0, 0)
            tail = np.r_[start, np.flatnonzero(~within)]
            ax.line(x[tail], y[tail], colour, width, dash="4 3")
    ax.vline(n)
    ax.hline(0.8, "grey")
    return svg.Row([ax], sharey=False)
