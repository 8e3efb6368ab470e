"""Matplotlib figures of the report, drawn from precomputed data (no statistics here).

Each function takes the per-model panel data of :func:`sbc.calibration.panel_data` for one
group of estimands and returns a figure with one panel per model, side by side, so that
pooling levels can be compared at a glance. :func:`to_svg` turns a figure into inline SVG.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

PANEL = (3.1, 2.5)
"""Width and height of one panel, in inches."""

BAND = "#9ecae1"


def _panels(models: list[str], sharey: bool = True) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(
        1,
        len(models),
        figsize=(PANEL[0] * len(models), PANEL[1]),
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    for ax, model in zip(axes[0], models, strict=True):
        ax.set_title(model, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    return fig, axes[0]


def _legend(fig: Figure, ax: plt.Axes, n_lines: int) -> None:
    if 1 < n_lines <= 12:
        fig.legend(
            *ax.get_legend_handles_labels(), loc="outside right upper", fontsize=7, frameon=False
        )


def ecdf_difference(panels: Mapping[str, dict]) -> Figure:
    """ECDF minus the uniform CDF of fractional ranks, with the simultaneous band shaded."""
    fig, axes = _panels(list(panels))
    for ax, data in zip(axes, panels.values(), strict=True):
        for i, (estimand, band) in enumerate(data["ecdf"].items()):
            x = band["x"]
            if i == 0:
                ax.fill_between(
                    x,
                    band["lower"] - x,
                    band["upper"] - x,
                    color=BAND,
                    alpha=0.6,
                    step="post",
                    linewidth=0,
                    label="99% simultaneous band",
                )
            ax.step(x, band["ecdf"] - x, where="post", linewidth=1, label=estimand)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xlabel("fractional rank", fontsize=8)
    axes[0].set_ylabel("ECDF - uniform", fontsize=8)
    _legend(fig, axes[0], len(next(iter(panels.values()))["ecdf"]) + 1)
    return fig


def rank_histogram(panels: Mapping[str, dict]) -> Figure:
    """Rank histograms (one step line per estimand) with the 99% range of a bin's count."""
    fig, axes = _panels(list(panels))
    for ax, data in zip(axes, panels.values(), strict=True):
        lower, upper = data["hist_band"]
        for i, (estimand, counts) in enumerate(data["hist"].items()):
            edges = np.linspace(0, 1, len(counts) + 1)
            if i == 0 and np.isfinite(lower):
                ax.axhspan(
                    lower, upper, color=BAND, alpha=0.6, linewidth=0, label="99% range per bin"
                )
            ax.stairs(counts, edges, linewidth=1, label=estimand)
        ax.set_xlabel("fractional rank", fontsize=8)
    axes[0].set_ylabel("simulations per bin", fontsize=8)
    _legend(fig, axes[0], len(next(iter(panels.values()))["hist"]) + 1)
    return fig


def coverage(panels: Mapping[str, dict]) -> Figure:
    """Empirical against nominal coverage of central intervals, with 95% binomial intervals."""
    fig, axes = _panels(list(panels))
    for ax, data in zip(axes, panels.values(), strict=True):
        curve = data["coverage"]
        ax.plot([0.4, 1], [0.4, 1], color="black", linewidth=0.6)
        err = np.vstack([curve["coverage"] - curve["lower"], curve["upper"] - curve["coverage"]])
        ax.errorbar(curve["level"], curve["coverage"], yerr=err, fmt="o", markersize=3, capsize=2)
        ax.set_xlim(0.4, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("nominal level", fontsize=8)
    axes[0].set_ylabel("empirical coverage", fontsize=8)
    return fig


def estimates(panels: Mapping[str, dict]) -> Figure:
    """Posterior mean with 90% interval against the true value, one colour per estimand."""
    fig, axes = _panels(list(panels))
    for ax, data in zip(axes, panels.values(), strict=True):
        values = []
        for estimand, est in data["estimates"].items():
            err = np.vstack([est["mean"] - est["lower"], est["upper"] - est["mean"]])
            ax.errorbar(
                est["truth"],
                est["mean"],
                yerr=err,
                fmt="o",
                markersize=2,
                linewidth=0.5,
                alpha=0.6,
                label=estimand,
                rasterized=True,
            )
            values.append(np.concatenate([est["truth"], est["lower"], est["upper"]]))
        if values:
            both = np.concatenate(values)
            both = both[np.isfinite(both)]
            if both.size:
                lims = (both.min(), both.max())
                ax.plot(lims, lims, color="black", linewidth=0.6)
        ax.set_xlabel("true value", fontsize=8)
    axes[0].set_ylabel("posterior mean, 90% interval", fontsize=8)
    _legend(fig, axes[0], len(next(iter(panels.values()))["estimates"]))
    return fig


KINDS = {
    "ECDF difference": ecdf_difference,
    "Rank histogram": rank_histogram,
    "Coverage": coverage,
    "Estimates vs truth": estimates,
}
"""Figure kinds of the report, in display order."""


def to_svg(fig: Figure) -> str:
    """Inline SVG of ``fig`` (rasterised artists embedded as PNG); closes the figure."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", dpi=110)
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def power_curves(curves: Mapping[str, Mapping[str, np.ndarray]], n: int) -> Figure:
    """Detection power against the number of simulations, one line per mutant.

    ``curves[model]`` holds arrays ``simulations``, ``power``, ``lower``, ``upper`` and
    ``projected`` (bool: projected from the run's size on). Within the run, points with
    their intervals; the projection dashed. Models whose name starts with ``*`` (escapes) are
    labelled.
    """
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
