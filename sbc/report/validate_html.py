"""The model-validation page of a real-data fit (``sbc fit``): one self-contained HTML file.

Sections: a recommendation in words; the prior predictive check (a histogram of each data
statistic over data sets simulated from the prior, the real value marked); each model's
posterior predictive check; the LOO comparison of the models; the shrinkage figure and the
estimates (:mod:`sbc.report.fit_html`); the SBC verdicts and sampler health on this design;
the settings. A section the scenario cannot fill says so in one line. The page holds no
file path of the machine it was written on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sbc.report import svg
from sbc.report.fit_html import figure as shrinkage_figure
from sbc.report.fit_html import model_tables
from sbc.report.html import CSS
from sbc.stats.checks import predictive_pvalue

if TYPE_CHECKING:
    from sbc.workflows.validate import Check, Validation

PER_ROW = 4
"""Statistic panels per figure row."""

BINS = 30
"""Histogram bins of a replicated statistic."""

OBSERVED = "black"
"""Colour of the real data's value."""


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}g}" if np.isfinite(value) else "&ndash;"
    return escape(str(value))


def shown(value: Any) -> str:
    """A setting's value for the page: a file path by its name only, empty text named."""
    if isinstance(value, str | os.PathLike) and str(value) and os.path.isabs(str(value)):
        return Path(value).name
    return str(value) if str(value) else "(empty)"


def _histogram(ax: svg.Panel, values: np.ndarray, edges: np.ndarray, color: str, label: str):
    counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
    total = max(counts.sum(), 1)
    ax.stairs(counts / total / np.diff(edges), edges, color=color, label=label)


def _edges(values: list[np.ndarray], observed: float) -> np.ndarray:
    finite = np.concatenate([v[np.isfinite(v)] for v in values] + [np.array([observed])])
    finite = finite[np.isfinite(finite)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    return np.linspace(low, high, BINS + 1)


def check_figure(checks: Sequence[Check]) -> str:
    """One panel per statistic: each check's replicated values, the real value marked."""
    if not checks:
        return ""
    names = list(checks[0].observed)
    panels = []
    for name in names:
        observed = checks[0].observed[name]
        reps = [np.asarray(c.replicates[name], dtype=float) for c in checks]
        title = name
        if len(checks) == 1:
            p = predictive_pvalue(reps[0], observed)
            title += f"   p = {p:.3f}" if np.isfinite(p) else ""
        ax = svg.Panel(title=title, xlabel="value over replicated data sets")
        if not any(np.isfinite(r).any() for r in reps):
            ax.note = "no finite replicate"
        else:
            edges = _edges(reps, observed)
            for i, (check, values) in enumerate(zip(checks, reps, strict=True)):
                label = check.model or "prior predictive"
                _histogram(ax, values, edges, svg.COLORS[i % len(svg.COLORS)], label)
        if np.isfinite(observed):
            ax.vline(observed, color=OBSERVED)
        panels.append(ax)
    panels[0].ylabel = "density"
    rows = [svg.Row(panels[i : i + PER_ROW], sharey=False) for i in range(0, len(panels), PER_ROW)]
    return svg.Stack(rows).to_svg()


def check_table(table: pd.DataFrame) -> str:
    """Statistics by row, one p-value column per check; flagged p-values marked."""
    if table.empty:
        return ""
    columns = list(dict.fromkeys(zip(table["check"], table["model"], strict=True)))
    head = "<th class=l>statistic</th><th>observed</th>" + "".join(
        f"<th>{escape(model or 'prior')} p</th>" for _, model in columns
    )
    body = []
    for name, rows in table.groupby("statistic", sort=False):
        by = {(r.check, r.model): r for r in rows.itertuples()}
        cells = [
            f"<td class=l>{escape(str(name))}</td>",
            f"<td>{_number(rows['observed'].iloc[0])}</td>",
        ]
        for key in columns:
            r = by.get(key)
            if r is None:
                cells.append("<td>&ndash;</td>")
                continue
            mark = " class=bad" if r.flagged else ""
            cells.append(f"<td{mark}>{_number(r.p_value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def loo_table(loo: pd.DataFrame) -> str:
    """The LOO comparison: one row per (level, model)."""
    if loo.empty:
        return ""
    columns = ("left out", "model", "elpd_loo", "SE", "p_loo", "elpd diff", "SE of diff")
    head = "".join(f"<th{' class=l' if i < 2 else ''}>{c}</th>" for i, c in enumerate(columns))
    head += "<th>k&#770; &gt; 0.7</th>"
    body = []
    for r in loo.itertuples():
        warn = " class=warn" if r.khat_high else ""
        level = f"one {r.level}" + (f" (of {r.points})" if r.points else "")
        body.append(
            f"<tr><td class=l>{escape(level)}</td><td class=l>{escape(r.model)}</td>"
            f"<td>{r.elpd:.1f}</td><td>{r.se:.1f}</td><td>{r.p_loo:.1f}</td>"
            f"<td>{r.elpd_diff:.1f}</td><td>{r.se_diff:.1f}</td>"
            f"<td{warn}>{r.khat_high}</td></tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def sbc_section(validation: Validation) -> str:
    """The SBC verdicts (or the line saying how to get them)."""
    if validation.sbc is None:
        return ""
    head = (
        "<tr><th class=l>model</th><th class=l>SBC verdict</th><th>fits</th>"
        "<th>healthy fits</th></tr>"
    )
    body = []
    for r in validation.sbc.itertuples():
        state = "" if r.verdict == "not in the SBC run" else ("ok" if r.calibrated else "bad")
        word = {"ok": "calibrated", "bad": "flagged"}.get(state, "")
        detail = f"{word} ({r.verdict})" if word and word != r.verdict else r.verdict
        share = f"{100 * r.healthy_share:.0f}%" if np.isfinite(r.healthy_share) else "&ndash;"
        body.append(
            f"<tr><td class=l>{escape(r.model)}</td><td class='l {state}'>{escape(detail)}</td>"
            f"<td>{r.fits}</td><td>{share}</td></tr>"
        )
    source = escape(validation.sbc_source)
    return f"<p>From {source}.</p><table>{head}{''.join(body)}</table>"


def health_table(table: pd.DataFrame) -> str:
    """Sampler health of each real-data fit."""
    health = table.drop_duplicates("model")[["model", "divergences", "max_rhat", "min_ess_bulk"]]
    rows = "".join(
        f"<tr><td class=l>{escape(r.model)}</td><td>{r.divergences}</td><td>{r.max_rhat:.3f}</td>"
        f"<td>{r.min_ess_bulk:.0f}</td></tr>"
        for r in health.itertuples()
    )
    return (
        "<table><tr><th class=l>model</th><th>divergences</th><th>max R-hat</th>"
        f"<th>min bulk ESS</th></tr>{rows}</table>"
    )


def settings_table(rows: Sequence[tuple[str, Any, Any]]) -> str:
    """Setting, value and default; a changed value in bold."""
    body = []
    for name, value, default in rows:
        changed = shown(value) != shown(default)
        value_cell = f"<b>{escape(shown(value))}</b>" if changed else escape(shown(value))
        body.append(
            f"<tr><td class=l>{escape(name)}</td><td class=l>{value_cell}</td>"
            f"<td class=l>{escape(shown(default))}</td></tr>"
        )
    return (
        "<table><tr><th class=l>setting</th><th class=l>value</th><th class=l>default</th></tr>"
        f"{''.join(body)}</table>"
    )


def _notes(validation: Validation, section: str) -> str:
    lines = validation.notes.get(section, [])
    return "".join(f"<p class=warn>{escape(line)}</p>" for line in lines)


def render_validation(
    scenario: str,
    table: pd.DataFrame,
    observed: pd.DataFrame | None,
    validation: Validation,
    recommendation: Sequence[str],
    settings: Sequence[tuple[str, Any, Any]],
) -> str:
    """HTML text of the validation page, titled with the scenario's display name.

    Parameters
    ----------
    scenario : str
        The scenario's display name.
    table : pandas.DataFrame
        The estimates (``fit.csv``).
    observed : pandas.DataFrame or None
        The scenario's raw group estimates, for the shrinkage figure.
    validation : Validation
        Checks, LOO, SBC verdicts and notes.
    recommendation : sequence of str
        Sentences for the recommendation.
    settings : sequence of (name, value, default)
        The settings table's rows.
    """
    checks = table_checks = validation.check_table()
    prior = [c for c in validation.checks if c.kind == "prior"]
    posterior = [c for c in validation.checks if c.kind == "posterior"]
    n_prior = int(checks[checks["check"] == "prior"]["replicates"].max()) if len(checks) else 0
    shrinkage = shrinkage_figure(table, observed) if observed is not None else ""
    advice = "".join(f"<li>{escape(line)}</li>" for line in recommendation)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Validation: {escape(scenario)}</title>
<style>{CSS}</style></head><body>
<h1>Model validation on real data: {escape(scenario)}</h1>
<p class="sub">models {escape(", ".join(dict.fromkeys(table["model"])))} fitted to the
scenario's real data; settings at the end of the page</p>
<h2>Recommendation</h2>
<ul>{advice}</ul>
<h2>1. Prior predictive check</h2>
<p>{n_prior} data sets simulated from the scenario's prior at the real design. Each panel: the
distribution of a data statistic over them, the real data's value as a black line. p: the
share of simulated data sets at or above the real value; below 0.025 or above 0.975 (marked)
the real data are unusual under the prior.</p>
{_notes(validation, "prior")}
<figure>{check_figure(prior)}</figure>
<h2>2. Posterior predictive checks</h2>
<p>For each model, data sets replicated at posterior draws thinned evenly from its fit, on the
same statistics. A marked p-value: the model does not reproduce that feature of the data.</p>
{_notes(validation, "posterior")}
<figure>{check_figure(posterior)}</figure>
{check_table(table_checks)}
<h2>3. LOO comparison of the models</h2>
<p>PSIS-LOO (arviz-stats) from the scenario's log-likelihood at each model's posterior
draws: elpd_loo (higher predicts better), its SE, the effective number of parameters p_loo,
the difference to the best model (0 for the best) with the SE of that paired difference; a
difference within about 2 SE does not distinguish the models. k&#770; &gt; 0.7: points whose
estimate is unreliable. Leaving one group out predicts a new group.</p>
{_notes(validation, "loo")}
{loo_table(validation.loo)}
<h2>4. Estimates, shrinkage and SBC on this design</h2>
<p>Orange circles: observed values, sized by weight. Blue: posterior mean and 90% interval.
Pooling pulls small groups towards the common mean; with large groups the data dominate.</p>
{_notes(validation, "shrinkage")}
<figure>{shrinkage}</figure>
<h3>SBC verdicts</h3>
{_notes(validation, "sbc")}
{sbc_section(validation)}
<h3>Sampler health of the real-data fits</h3>
{health_table(table)}
<h3>Estimates</h3>
{model_tables(table, observed)}
<h2>Settings</h2>
<p class="sub">scenario {escape(scenario)}</p>
{settings_table(settings)}
</body></html>
"""
