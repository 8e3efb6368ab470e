"""Figures of calibration by data stratum and by sampler health (no statistics here).

Each figure takes the panel data of :func:`sbc.results.strata.strata_panels` or
:func:`sbc.results.strata.health_panels` for one model: one column per stratum (or health
subset), the ECDF difference of every quantity above (the simultaneous band of that
stratum's size shaded, the range of all quantities in grey, the quantities that stray
furthest in colour) and the coverage of central intervals against nominal below. Drawn
with :mod:`sbc.report.svg`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sbc.report import svg

GREY = "#bbbbbb"


def split_panels(panels: Sequence[dict]) -> svg.Stack:
    """ECDF differences (top row) and interval coverage (bottom row), one column per subset.

    The quantities highlighted in any panel keep one colour across the figure.
    """
    named = dict.fromkeys(name for panel in panels for name in panel["ecdf"]["highlight"])
    colors = {name: svg.COLORS[i % len(svg.COLORS)] for i, name in enumerate(named)}
    top = [_ecdf(panel["ecdf"], colors) for panel in panels]
    bottom = [_coverage(panel["coverage"]) for panel in panels]
    top[0].ylabel, bottom[0].ylabel = "ECDF - uniform", "empirical coverage"
    return svg.Stack([svg.Row(top), svg.Row(bottom)])


def _ecdf(panel: dict, colors: dict[str, str]) -> svg.Panel:
    ax = svg.Panel(title=f"{panel['title']} (n={panel['n']})", xlabel="fractional rank")
    if "x" not in panel:
        ax.note = "too few fits"
        return ax
    x = panel["x"]
    ax.band(x, panel["lower"], panel["upper"], label="99% simultaneous band")
    grey = [line for name, line in panel["lines"].items() if name not in panel["highlight"]]
    if grey:  # the range of the other quantities: alberta has 145 per panel
        stacked = np.vstack(grey)
        ax.band(x, stacked.min(axis=0), stacked.max(axis=0), color=GREY, label="other quantities")
    for name in panel["highlight"]:
        ax.step(x, panel["lines"][name], color=colors[name], label=name)
    ax.hline(0)
    return ax


def _coverage(panel: dict) -> svg.Panel:
    ax = svg.Panel(title=panel["title"], xlabel="nominal level")
    ax.line([0.4, 1], [0.4, 1], width=0.6)
    curves = panel["curves"]
    for i, (group, curve) in enumerate(curves.items()):
        offset = (i - (len(curves) - 1) / 2) * 0.008
        ax.points(
            np.asarray(curve["level"]) + offset,
            curve["coverage"],
            curve["lower"],
            curve["upper"],
            label=f"coverage: {group}",
            size=2.5,
        )
    ax.xlim, ax.ylim = (0.4, 1.0), (0.0, 1.02)
    return ax
