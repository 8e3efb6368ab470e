"""Report sections: which model predicts best, and whether PSIS-LOO says so truthfully.

Written from the stored results alone (:mod:`sbc.results.prediction` computes the tables;
:mod:`sbc.report.html` places the sections).
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from sbc.report import figures, svg
from sbc.results.prediction import (
    SMALL_DIFFERENCE,
    comparison_table,
    loo_picks_best,
    prediction_table,
)
from sbc.stats.comparison import noisy_truth_coverage
from sbc.stats.predictive import KHAT_THRESHOLD

KINDS = {
    "elpd_in": "in sample",
    "elpd_heldout": "held out",
    "elpd_heldout_groups": "new groups",
}
"""The elpd columns the figure compares, by their label."""


def _num(value: float, digits: int = 1) -> str:
    return "&ndash;" if value is None or value != value else f"{value:.{digits}f}"


def _interval(mean: float, lo: float, hi: float) -> str:
    if mean != mean:
        return "&ndash;"
    if lo != lo or lo == hi:
        return _num(mean)
    return f"{_num(mean)} <small>[{_num(lo)}, {_num(hi)}]</small>"


def _share(value: float) -> str:
    return "&ndash;" if value != value else f"{100 * value:.0f}%"


def prediction_figure(table: pd.DataFrame) -> svg.Row:
    """Paired elpd difference to the best model, in sample, held out and for new groups.

    One panel per kind of prediction the run has; one dot per model with its 95% interval.
    """
    panels = []
    models = list(table["model"])
    x = np.arange(len(models), dtype=float)
    for column, label in KINDS.items():
        if table[f"{column}_vs_best"].isna().all():
            continue
        ax = svg.Panel(
            title=label,
            xlabel=", ".join(f"{i}: {m}" for i, m in enumerate(models)),
            xticks=tuple(x),
            xlim=(-0.5, len(models) - 0.5),
        )
        for i, row in enumerate(table.itertuples(index=False)):
            data = row._asdict()
            ax.points(
                [x[i]],
                [data[f"{column}_vs_best"]],
                [data[f"{column}_vs_best_lo"]],
                [data[f"{column}_vs_best_hi"]],
                color=svg.COLORS[i % len(svg.COLORS)],
                label=row.model,
                size=3.0,
            )
        ax.hline(0)
        panels.append(ax)
    if panels:
        panels[0].ylabel = "elpd minus the best model's"
    return svg.Row(panels, sharey=False)


def prediction_section(results: pd.DataFrame, replicates: int) -> str:
    """HTML of the prediction and model-comparison sections (empty without predictions).

    Parameters
    ----------
    results : pandas.DataFrame
        The run's results.
    replicates : int
        Held-out replicates per simulation (for the coverage a right SE reaches).
    """
    table = prediction_table(results)
    if table.empty:
        return ""
    rows = []
    for r in table.itertuples(index=False):
        d = r._asdict()
        versus = [d[f"elpd_heldout_vs_best{s}"] for s in ("", "_lo", "_hi")]
        cells = "".join(
            f"<td>{_interval(d[c], d[f'{c}_lo'], d[f'{c}_hi'])}</td>"
            for c in ("elpd_in", "elpd_heldout", "elpd_heldout_groups", "elpd_loo")
        )
        rows.append(
            f"<tr><td class=l><b>{escape(r.model)}</b></td><td>{r.fits}</td>{cells}"
            f"<td>{_num(r.rmse_in, 2)}</td><td>{_num(r.rmse_heldout, 2)}</td>"
            f"<td>{_interval(*versus)}</td>"
            f"<td>{_share(r.best_heldout_share)}</td></tr>"
        )
    best_in = table.loc[table["elpd_in"].idxmax(), "model"]
    best_out = (
        table.loc[table["elpd_heldout"].idxmax(), "model"]
        if table["elpd_heldout"].notna().any()
        else None
    )
    claim = f"Best in sample: <b>{escape(best_in)}</b>"
    if best_out is not None:
        claim += f"; best on held-out data: <b>{escape(best_out)}</b>"
    if table["elpd_heldout_groups"].notna().any():
        best_new = table.loc[table["elpd_heldout_groups"].idxmax(), "model"]
        claim += f"; best for new groups: <b>{escape(best_new)}</b>"
    fig = figures.to_svg(prediction_figure(table))
    return f"""<h2>Prediction: in sample and out of sample</h2>
<p>Each simulation also draws held-out data from its true parameters: {replicates} replicates
of new observations in the same groups and, where the scenario can draw them, {replicates}
of new groups from the same population (the truth a user never has). elpd is the log
pointwise predictive density summed over the data (higher is better): in sample on the
fitted data, held out on the replicates (their average), new groups with each group's
observations predicted jointly. Means over simulations with 95% intervals; the last columns
give the paired difference of held-out elpd to the best model (the models fitted the same
data sets) and how often each model predicted the held-out data best. {claim}.</p>
<table><tr><th>model</th><th>fits</th><th>elpd in sample</th><th>elpd held out</th>
<th>elpd new groups</th><th>elpd LOO</th><th>RMSE in</th><th>RMSE held out</th>
<th>held out &minus; best</th><th>best held out</th></tr>
{"".join(rows)}</table>
<figure>{fig}<figcaption>Paired elpd difference to the best model of each kind of
prediction, mean over simulations with 95% interval: a model that fits its own data best
can predict new data worse.</figcaption></figure>
{_comparison_section(results, table, replicates)}"""


def _comparison_section(results: pd.DataFrame, table: pd.DataFrame, replicates: int) -> str:
    """HTML of the check of PSIS-LOO against the held-out truth."""
    rows = []
    for r in table.itertuples(index=False):
        rows.append(
            f"<tr><td class=l><b>{escape(r.model)}</b></td><td>{_num(r.loo_bias, 2)}</td>"
            f"<td>{_num(r.loo_rmse, 2)}</td><td>{_share(r.loo_coverage)}</td>"
            f"<td>{_share(r.khat_high_share)}</td><td>{_num(r.loo_rmse_khat_low, 2)}</td>"
            f"<td>{_num(r.loo_rmse_khat_high, 2)}</td><td>{_num(r.logo_bias, 2)}</td>"
            f"<td>{_share(r.logo_khat_high_share)}</td>"
            f"<td>{_share(r.logo_coverage)}</td><td>{_share(r.loo_pick_share)}</td></tr>"
        )
    pairs = comparison_table(results)
    pair_rows = []
    for p in pairs.itertuples(index=False):
        pair_rows.append(
            f"<tr><td class=l>{escape(p.model_a)} &minus; {escape(p.model_b)}</td>"
            f"<td>{p.fits}</td><td>{_num(p.true_diff)}</td><td>{_num(p.loo_diff)}</td>"
            f"<td>{_num(p.rmse, 2)}</td><td>{_num(p.se_ratio, 2)}</td>"
            f"<td>{_share(p.coverage)}</td><td>{_share(p.coverage_small)} ({p.n_small})</td>"
            f"<td>{_share(p.coverage_large)} ({p.n_large})</td>"
            f"<td>{_share(p.sign_agreement)}</td></tr>"
        )
    share, n = loo_picks_best(results)
    picks = (
        f"Over {n} simulations, the model LOO ranks first is the one that predicts the "
        f"held-out data best in <b>{_share(share)}</b> of them."
        if n
        else ""
    )
    pair_table = (
        "<table><tr><th>difference</th><th>fits</th><th>true (held out)</th><th>LOO</th>"
        "<th>RMSE</th><th>SE / sd of error</th><th>coverage</th>"
        f"<th>coverage, |LOO diff| &lt; {SMALL_DIFFERENCE:g}</th><th>coverage, larger</th>"
        f"<th>same sign</th></tr>{''.join(pair_rows)}</table>"
        if pair_rows
        else ""
    )
    reference = noisy_truth_coverage(replicates)
    return f"""<h2>Model comparison checked: does PSIS-LOO tell the truth?</h2>
<p>SBC checks a posterior against the truth; here the truth checks the model comparison a
user would run. For each model: the error of <code>elpd_loo</code> against the held-out elpd
(bias, RMSE), how often <code>elpd_loo &plusmn; 1.96 SE</code> covers it (the held-out truth
averages {replicates} replicates, whose own noise lowers the coverage a right SE reaches to
about {_share(reference)}), the share of fits with a Pareto k-hat above {KHAT_THRESHOLD}
and LOO's RMSE in those fits and in the rest (does the warning mark where LOO errs?), and
leave-one-group-out against the elpd of new groups. For each pair of models: the elpd
difference, its SE against the sd of its actual error (below 1: too small, as Sivula et al.
2022 find for small differences), and the coverage of <code>diff &plusmn; 1.96 SE</code>.
{picks}</p>
<table><tr><th>model</th><th>LOO bias</th><th>LOO RMSE</th><th>coverage &plusmn;1.96 SE</th>
<th>k-hat &gt; {KHAT_THRESHOLD}</th><th>RMSE, k-hat low</th><th>RMSE, k-hat high</th>
<th>LOGO bias (new groups)</th><th>LOGO k-hat &gt; {KHAT_THRESHOLD}</th>
<th>LOGO coverage</th><th>LOO ranks first</th></tr>
{"".join(rows)}</table>
{pair_table}"""
