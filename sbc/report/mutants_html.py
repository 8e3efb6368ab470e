"""The report of ``sbc mutants``: which planted bugs SBC flags, and with how many simulations.

:func:`write_detection_report` writes, in the run folder, ``mutants.html`` (self-contained:
inline CSS and SVG) and the tables behind it: ``mutants.csv`` (one row per model),
``mutants_power.csv`` (detection power per model and number of simulations) and
``mutants_reveals.csv`` (smallest Holm-adjusted p-value per model and group of quantities).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc.report import figures
from sbc.report.html import CSS
from sbc.report.mutants_text import recommendation
from sbc.results.calibration import ALPHA
from sbc.results.detection import POWER, PROJECTED_UP_TO, Analysis, score_curve, scores

STATUS_CLASS = {
    "flagged": "ok",
    "calibrated": "ok",
    "escaped": "bad",
    "FLAGGED": "bad",
    "failed": "warn",
    "equivalent": "",
}


def _p(value: float) -> str:
    return "&ndash;" if not np.isfinite(value) else f"{value:.2g}"


def _n(value: float, smallest: int = 1) -> str:
    if np.isnan(value):
        return "&ndash;"
    if not np.isfinite(value):
        return "&infin;"
    if value < smallest:
        return f"&lt; {smallest}"
    return f"{float(f'{value:.2g}'):.0f}"


def _model_rows(analysis: Analysis) -> str:
    power = analysis.power[analysis.power["method"] == "subsample"]
    sizes = sorted(power["simulations"].unique())
    head = (
        "<tr><th class=l>model</th><th>kind</th><th>status</th><th>min adjusted p</th>"
        "<th>estimands alone</th><th class=l>revealed by</th>"
        f"<th>N for {POWER:.0%} power<br>(90% interval)</th><th>first flagged at</th>"
        + "".join(f"<th>power<br>N={m}</th>" for m in sizes)
        + "</tr>"
    )
    rows = []
    for r in analysis.table.itertuples():
        mine = power[power["model"] == r.model].set_index("simulations")["power"]
        first = "&ndash;" if pd.isna(r.first_flagged_at) else str(r.first_flagged_at)
        verdict = "flagged" if r.flagged_estimands_only else "not"
        alone = (
            "&ndash;"
            if not np.isfinite(r.min_p_holm_estimands)
            else f"{verdict} ({_p(r.min_p_holm_estimands)})"
        )
        note = (
            f"<br><small><i>equivalent: {escape(r.equivalent)}</i></small>" if r.equivalent else ""
        )
        if r.departure:
            note += f"<br><small>departure from the correct model: {escape(r.departure)}</small>"
        rows.append(
            f"<tr><td class=l><b>{escape(r.model)}</b><br><small>{escape(r.description)}"
            f"</small>{note}</td><td>{escape(r.role)}</td>"
            f'<td class="{STATUS_CLASS.get(r.status, "")}">{escape(r.status)}</td>'
            f"<td>{_p(r.min_p_holm)}</td><td>{alone}</td>"
            f"<td class=l>{escape(r.revealed_by) or '&ndash;'}</td>"
            f"<td>{_needed(r, sizes[0] if sizes else 1)}</td>"
            f"<td>{first}</td>"
            + "".join(f"<td>{mine.get(m, np.nan):.2f}</td>" for m in sizes)
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _needed(r: Any, smallest: int) -> str:
    """Simulations for 80% power with its interval; past the projection's end, "&gt;"."""
    if np.isnan(r.needed):
        return "&ndash;"
    limit = f"&gt; {PROJECTED_UP_TO * r.simulations}"
    if np.isnan(r.needed_low):  # flagged: read off the subsampled power curve
        return _n(r.needed, smallest)
    if not np.isfinite(r.needed):
        return limit
    high = _n(r.needed_high) if np.isfinite(r.needed_high) else limit
    return f"{_n(r.needed, smallest)} ({_n(r.needed_low, smallest)}&ndash;{high})"


def _score_rows(analysis: Analysis) -> str:
    table = scores(analysis.table)
    if table.empty:
        return "<p>No mutants.</p>"
    head = (
        "<tr><th class=l>mutants</th><th>total</th><th>equivalent</th><th>failed</th>"
        "<th>counted</th><th>flagged</th><th>mutation score</th>"
        "<th>score, estimands alone</th></tr>"
    )
    rows = "".join(
        f"<tr><td class=l>{escape(s.role)}</td><td>{s.mutants}</td><td>{s.equivalent}</td>"
        f"<td>{s.failed}</td><td>{s.counted}</td><td>{s.flagged}</td>"
        f"<td><b>{s.score:.0%}</b></td><td>{s.score_estimands_only:.0%}</td></tr>"
        for s in table.itertuples()
    )
    curve = score_curve(analysis).dropna()
    expected = ""
    if len(curve):
        cells = "".join(f"<th>N={int(m)}</th>" for m in curve["simulations"])
        values = "".join(f"<td>{v:.0%}</td>" for v in curve["score"])
        expected = (
            "<p>Expected mutation score of the generated mutants against N (subsampled "
            "within the run; beyond it, flagged mutants count 1 and escapes their projected "
            f"power):</p><table><tr>{cells}</tr><tr>{values}</tr></table>"
        )
    return f"<table>{head}{rows}</table>{expected}"


def _reveal_rows(analysis: Analysis) -> str:
    reveals = analysis.reveals
    head = (
        "<tr><th class=l>model</th>" + "".join(f"<th>{escape(c)}</th>" for c in reveals) + "</tr>"
    )
    rows = []
    for model, values in reveals.iterrows():
        cells = "".join(
            f'<td class="{"bad" if v < ALPHA else ""}">{_p(v)}</td>' for v in values.to_numpy()
        )
        rows.append(f"<tr><td class=l>{escape(str(model))}</td>{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _figure(analysis: Analysis) -> str:
    table = analysis.table.set_index("model")
    curves = {}
    for model, c in analysis.power.groupby("model", sort=False):
        if table.loc[model, "role"] == "correct" or table.loc[model, "status"] == "equivalent":
            continue
        label = f"*{model}" if table.loc[model, "status"] == "escaped" else model
        curves[label] = {
            "simulations": c["simulations"].to_numpy(),
            "power": c["power"].to_numpy(),
            "lower": c["lower"].to_numpy(),
            "upper": c["upper"].to_numpy(),
            "projected": (c["method"] == "projected").to_numpy(),
        }
    if not curves:
        return ""
    return figures.to_svg(figures.power_curves(curves, analysis.simulations))


def write_detection_report(
    out: str | os.PathLike[str],
    analysis: Analysis,
    skipped: Mapping[str, Mapping[str, str]] | None = None,
    title: str = "",
    notes: Sequence[str] = (),
) -> Path:
    """Write ``mutants.html`` and its CSV tables into the run folder ``out``.

    Parameters
    ----------
    out : path
        The run folder.
    analysis : Analysis
        :func:`sbc.results.detection.analyse` of the run.
    skipped : mapping, optional
        Per correct model, what was not mutated (see :attr:`sbc.results.detection.Plan.skipped`).
    title : str
        The scenario, for the heading.
    notes : sequence of str
        Extra lines for the run section (settings, seed, sampler).

    Returns
    -------
    Path
        ``out/mutants.html``.
    """
    out = Path(out)
    analysis.table.to_csv(out / "mutants.csv", index=False)
    analysis.power.to_csv(out / "mutants_power.csv", index=False)
    analysis.reveals.to_csv(out / "mutants_reveals.csv")
    advice = "".join(f"<li>{escape(line)}</li>" for line in recommendation(analysis))
    skip = "".join(
        f"<li>{escape(base)}: {escape(', '.join(f'{v} ({d})' for v, d in names.items()))}</li>"
        for base, names in (skipped or {}).items()
        if names
    )
    skip = (
        "<p>Not mutated (a free variable whose distribution has no rule, or a rewrite PyMC "
        f"rejected):</p><ul>{skip}</ul>"
        if skip
        else ""
    )
    extra = "".join(f"<li>{escape(n)}</li>" for n in notes)
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SBC mutant detection{
        f": {escape(title)}" if title else ""
    }</title>
<style>{CSS}</style></head><body>
<h1>Does SBC catch the planted bugs?{f" <small>{escape(title)}</small>" if title else ""}</h1>
<p class="sub">{analysis.simulations} simulations; every model fitted to the same data sets.</p>
<h2>Recommendation</h2>
<ul>{advice}</ul>
{_score_rows(analysis)}
<p>A model is flagged when the Holm-adjusted uniformity test (arviz-stats' pot_c) rejects
uniform ranks for any estimand or test quantity at family-wise level {ALPHA}, as in the
calibration report. The <b>mutation score</b> is the share of mutants flagged, leaving out
<i>equivalent</i> mutants (the graph shows the rewrite changes nothing the likelihood or
the estimands depend on) and mutants whose every fit failed. "Estimands alone" repeats the
verdict without the test quantities (log-likelihood ...).</p>
<h2>Detection power against the number of simulations</h2>
{_figure(analysis)}
<p>Within the run (solid, points): the share of 200 random subsets of N of the run's
simulations on which the mutant is flagged, with a 90% Wilson interval counting the
floor(run / N) disjoint blocks of size N the run holds as the independent trials (drawn
for escapes). Projected (dashed, escapes only, from the run's own size on, where it can
differ from the run's verdict by chance): each escape's ranks are compared with
its correct model's on the same data sets (on the probit scale, a shift and an excess
second moment per quantity: the sampling noise both models share cancels), and the chance
that the same Holm-adjusted pot_c test flags a rank distribution with that departure is
simulated for larger N; the band moves the departure by 1.645 standard errors. Checked on
synthetic pairs of models (<code>benchmarks/bench_mutants.py</code>).</p>
<h2>Every model</h2>
{_model_rows(analysis)}
<h2>Which quantities reveal which mutant</h2>
<p>Smallest Holm-adjusted p-value in each group of quantities (red: below {ALPHA}, the
group reveals the model).</p>
{_reveal_rows(analysis)}
<h2>Run</h2>
<ul>{extra}</ul>
{skip}
<p>Tables: <code>mutants.csv</code>, <code>mutants_power.csv</code>,
<code>mutants_reveals.csv</code>; every fit: <code>results.parquet</code>; figures of the
correct and hand-written models: <a href="report.html">report.html</a> (<code>sbc report
DIR</code> draws every model).</p>
</body></html>
"""
    path = out / "mutants.html"
    path.write_text(html, encoding="utf-8")
    return path
