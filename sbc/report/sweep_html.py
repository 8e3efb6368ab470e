"""The sweep report ``index.html``: model metrics against a swept setting, one file.

Self-contained like the run report: inline CSS and SVG (:mod:`sbc.report.svg`), no scripts. For each
metric of :data:`METRICS` one panel plots every model against the x-axis
setting, one line per model and combination of the other grid keys; a table lists every
cell and model with a link to the cell's own report.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc.report import svg
from sbc.report.html import CSS
from sbc.results.calibration import ALPHA


@dataclass(frozen=True)
class SweepPage:
    """What the sweep page shows of a sweep besides its table.

    Parameters
    ----------
    name, reference : str
        The scenario's name as the user wrote it, and its reference.
    grid : mapping of str to list
        The swept settings and their values.
    x : str
        The grid key on the x axis.
    settings : mapping
        The settings fixed in every cell.
    models : sequence of str
        The models of every cell.
    simulations, seed : int
        Simulations per cell and the run seed.
    """

    name: str
    reference: str
    grid: Mapping[str, Sequence[Any]]
    x: str
    settings: Mapping[str, Any]
    models: Sequence[str]
    simulations: int
    seed: int

    @property
    def other_keys(self) -> list[str]:
        """Grid keys besides the x-axis setting (one line per combination of their values)."""
        return [k for k in self.grid if k != self.x]


METRICS: dict[str, str] = {
    "coverage90": "90% coverage (mean over estimands)",
    "rel_rmse": "RMSE / prior sd",
    "rel_width90": "90% width / prior sd",
    "min_p_holm": "calibration p (min Holm-adjusted)",
}
"""Per-model columns of :func:`sbc.results.calibration.model_table` compared across cells."""

PREDICTION_METRICS: dict[str, str] = {
    "elpd_in_gap": "in sample: elpd gap to the best",
    "elpd_heldout_gap": "held out: elpd gap to the best",
    "elpd_heldout_groups_gap": "new groups: elpd gap to the best",
}
"""Per-model elpd gaps compared across cells: the best model's elpd minus this model's,
paired over the cell's simulations (``-<column>_vs_best`` of
:func:`sbc.results.prediction.prediction_table`), on a log scale: gaps range from a tenth of
a nat to hundreds. The best model of a cell has a gap of 0 and no point."""

DASHES = ("", "5 3", "1.5 2", "6 2 1.5 2")
"""Line dash per combination of the other grid keys (colour is the model)."""


def metric_figure(
    spec: SweepPage, summary: pd.DataFrame, metrics: Mapping[str, str] = METRICS
) -> str:
    """Inline SVG: one panel per metric, the metric against ``spec.x``, a line per series."""
    others = spec.other_keys
    xs = np.asarray(spec.grid[spec.x], dtype=float)
    log_x = bool((xs > 0).all() and xs.max() / xs.min() >= 10)
    groups = list(summary.groupby(others, sort=False)) if others else [((), summary)]
    panels = []
    for metric, title in metrics.items():
        if metric not in summary or summary[metric].isna().all():
            continue
        ax = svg.Panel(title=title, xlabel=spec.x, xscale="log" if log_x else "linear")
        ax.xticks = tuple(xs)
        if metric == "min_p_holm" or metric in PREDICTION_METRICS:
            ax.yscale = "log"
        for (m, model), (g, (values, frame)) in itertools.product(
            enumerate(spec.models), enumerate(groups)
        ):
            rows = frame[frame["model"] == model].sort_values(spec.x)
            values = values if isinstance(values, tuple) else (values,)
            label = model + "".join(f", {k}={v}" for k, v in zip(others, values, strict=True))
            colour = svg.COLORS[m % len(svg.COLORS)]
            x = rows[spec.x].to_numpy(float)
            y = rows[metric].to_numpy(float)
            if metric in PREDICTION_METRICS:  # no point where the model is the best (gap 0)
                x, y = x[y > 0], y[y > 0]
            ax.line(x, y, colour, 1.0, label, DASHES[g % len(DASHES)])
            ax.points(x, y, color=colour, size=2.0)
        if metric == "coverage90":
            ax.hline(0.9, "grey")
        if metric == "min_p_holm":
            ax.hline(ALPHA, "grey")
        panels.append(ax)
    return svg.Row(panels, sharey=False).to_svg()


def _table(spec: SweepPage, summary: pd.DataFrame) -> str:
    keys = list(spec.grid)
    columns = ["calibrated", "coverage90", "rel_rmse", "rel_width90", "min_p_holm"]
    columns += ["error_share", "divergent_share"]
    columns += [c for c in ("elpd_in", "elpd_heldout", "elpd_heldout_groups") if c in summary]
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    head += "<th class=l>model</th>" + "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in summary.itertuples(index=False):
        cells = "".join(f"<td>{escape(str(getattr(row, k)))}</td>" for k in keys)
        cells += f"<td class=l><b>{escape(row.model)}</b></td>"
        for c in columns:
            value = getattr(row, c)
            if c == "calibrated" and str(getattr(row, "verdict", "")).startswith("failed"):
                cells += '<td class="bad">failed</td>'
            elif c == "calibrated":
                cells += '<td class="ok">yes</td>' if value else '<td class="bad">no</td>'
            else:
                cells += "<td>&ndash;</td>" if value != value else f"<td>{value:.3g}</td>"
        link = f"{row.cell}/report.html"
        cells += f'<td class=l><a href="{escape(link, quote=True)}">report</a></td>'
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}<th></th></tr>{''.join(body)}</table>"


def prediction_figure(spec: SweepPage, summary: pd.DataFrame) -> str:
    """Inline SVG of each model's elpd gap to the best across the grid ("" without any)."""
    summary = summary.copy()
    for metric in PREDICTION_METRICS:
        column = metric.replace("_gap", "_vs_best")
        if column in summary:
            summary[metric] = -summary[column]
    if not any(m in summary and (summary[m] > 0).any() for m in PREDICTION_METRICS):
        return ""
    return metric_figure(spec, summary, PREDICTION_METRICS)


def _prediction(spec: SweepPage, summary: pd.DataFrame) -> str:
    """The prediction section across the grid (empty when the cells have no predictions)."""
    figure = prediction_figure(spec, summary)
    if not figure:
        return ""
    return f"""<h2>Prediction across the grid</h2>
<p>Per model: how far its elpd (log predictive density, summed over a data set) falls short
of the cell's best model, paired over the cell's simulations and averaged, on a log scale;
in sample on the fitted data, held out on new observations of the same groups and on new
groups drawn from the population. The best model of a cell has no point; a gap well below
1 nat means the models predict alike. Each cell's report has the intervals and the check of
PSIS-LOO against these truths.</p>
<figure>{figure}</figure>"""


def render(spec: SweepPage, summary: pd.DataFrame) -> str:
    """HTML text of the sweep report."""
    name = spec.name
    grid = "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in spec.grid.items())
    fixed = ", ".join(f"{k}={v}" for k, v in spec.settings.items()) or "defaults"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>SBC sweep: {escape(name)}</title>
<style>{CSS}</style></head>
<body>
<h1>Simulation-based calibration sweep: {escape(name)}</h1>
<p class="sub ref">scenario <code>{escape(spec.reference)}</code></p>
<p class="sub">grid: {escape(grid)}; other settings: {escape(fixed)};
{spec.simulations} simulations per cell, seed {spec.seed}; written {stamp}</p>
<h2>Models across the grid</h2>
<p>Per model: 90% coverage averaged over estimands (nominal 0.9), RMSE and 90% interval width
over each estimand's prior sd, averaged (1 = no better than the prior), and the smallest
Holm-adjusted ECDF p-value (below {ALPHA}: not calibrated).</p>
<figure>{metric_figure(spec, summary)}</figure>
{_prediction(spec, summary)}
<h2>Every cell</h2>
{_table(spec, summary)}
</body></html>
"""


def write_sweep_report(spec: SweepPage, summary: pd.DataFrame, out: Path) -> Path:
    """Write ``out/index.html`` and return its path."""
    path = Path(out) / "index.html"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(spec, summary), encoding="utf-8")
    tmp.replace(path)
    return path
