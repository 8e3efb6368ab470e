"""Figures of calibration by data stratum and by sampler health (no statistics here).

Each figure takes the panel data of :func:`sbc.stratified.strata_panels` or
:func:`sbc.stratified.health_panels` for one model: one column per stratum (or health
subset), the ECDF difference of every quantity above (the simultaneous band of that
stratum's size shaded, the quantities that stray furthest in colour) and the coverage of
central intervals against nominal below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from sbc.report.figures import BAND, PANEL, plt


def split_panels(panels: Sequence[dict]) -> Figure:
    """ECDF differences (top) and interval coverage (bottom), one column per subset.

    The quantities highlighted in any panel keep one colour across the figure.
    """
    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(PANEL[0] * len(panels), PANEL[1] * 2),
        squeeze=False,
        sharey="row",
        layout="constrained",
    )
    named = dict.fromkeys(name for panel in panels for name in panel["ecdf"]["highlight"])
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {name: cycle[i % len(cycle)] for i, name in enumerate(named)}
    for column, panel in enumerate(panels):
        _ecdf(axes[0, column], panel["ecdf"], colors)
        _coverage(axes[1, column], panel["coverage"])
    axes[0, 0].set_ylabel("ECDF - uniform", fontsize=8)
    axes[1, 0].set_ylabel("empirical coverage", fontsize=8)
    handles = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(
            handles.values(), handles.keys(), loc="outside right upper", fontsize=7, frameon=False
        )
    return fig


def _ecdf(ax: plt.Axes, panel: dict, colors: dict[str, str]) -> None:
    ax.set_title(f"{panel['title']} (n={panel['n']})", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.set_xlabel("fractional rank", fontsize=8)
    if "x" not in panel:
        ax.text(0.5, 0.5, "too few fits", ha="center", va="center", transform=ax.transAxes)
        return
    x = panel["x"]
    ax.fill_between(
        x,
        panel["lower"],
        panel["upper"],
        color=BAND,
        alpha=0.6,
        step="post",
        linewidth=0,
        label="99% simultaneous band",
    )
    grey = [line for name, line in panel["lines"].items() if name not in panel["highlight"]]
    if grey:  # one artist for all of them: alberta has 145 quantities per panel
        steps_x = np.repeat(x, 2)[1:]
        segments = [np.column_stack([steps_x, np.repeat(y, 2)[:-1]]) for y in grey]
        grey_lines = LineCollection(segments, colors="0.6", linewidths=0.5, alpha=0.5)
        grey_lines.set_rasterized(True)  # an image, not 145 SVG paths per panel
        ax.add_collection(grey_lines)
    for name in panel["highlight"]:
        line = panel["lines"][name]
        ax.step(x, line, where="post", linewidth=1.1, color=colors[name], label=name)
    ax.axhline(0, color="black", linewidth=0.6)


def _coverage(ax: plt.Axes, panel: dict) -> None:
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.plot([0.4, 1], [0.4, 1], color="black", linewidth=0.6)
    curves = panel["curves"]
    for i, (group, curve) in enumerate(curves.items()):
        offset = (i - (len(curves) - 1) / 2) * 0.008
        err = np.vstack([curve["coverage"] - curve["lower"], curve["upper"] - curve["coverage"]])
        ax.errorbar(
            curve["level"] + offset,
            curve["coverage"],
            yerr=err,
            fmt="o",
            markersize=3,
            capsize=2,
            label=f"coverage: {group}",
        )
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("nominal level", fontsize=8)
