"""The HTML report of a real-data fit (``sbc fit``), like the seed's school plots.

One figure per model, side by side: every observed group estimate and the model's
posterior mean with its 90% interval, groups
sorted by their observed value, so shrinkage towards the pooled mean is visible. Then one
table per model.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from sbc.report import svg
from sbc.report.html import CSS


def _figure(table: pd.DataFrame, observed: pd.DataFrame) -> str:
    models = list(dict.fromkeys(table["model"]))
    order = observed.sort_values("observed").reset_index(drop=True)
    x = np.arange(len(order), dtype=float)
    panels = []
    for model in models:
        est = table[table["model"] == model].set_index("estimand").loc[order["estimand"]]
        ax = svg.Panel(title=model, xlabel="groups, sorted by observed value")
        ax.points(
            x,
            est["post_mean"],
            est["q5"],
            est["q95"],
            color="#3182bd",
            label="posterior mean, 90%",
            alpha=0.7,
        )
        ax.points(x, order["observed"], color="#e6550d", label="observed", size=1.6)
        panels.append(ax)
    panels[0].ylabel = "value"
    return svg.Row(panels).to_svg()


def _model_table(rows: pd.DataFrame, observed: pd.DataFrame | None) -> str:
    if observed is not None:
        rows = rows.merge(observed, on="estimand", how="left")
    head = "".join(
        f"<th>{escape(c)}</th>"
        for c in ("estimand", "label", "observed", "weight", "mean", "sd", "5%", "95%")
    )
    body = []
    for r in rows.itertuples():
        label = getattr(r, "label", "")
        obs = getattr(r, "observed", np.nan)
        weight = getattr(r, "weight", np.nan)
        cells = [escape(str(r.estimand)), escape(str(label) if isinstance(label, str) else "")]
        cells += [
            f"{v:.3f}" if np.isfinite(v) else "&ndash;"
            for v in (obs, weight, r.post_mean, r.post_sd, r.q5, r.q95)
        ]
        body.append(
            "<tr>"
            + "".join(
                f"<td class=l>{c}</td>" if i < 2 else f"<td>{c}</td>" for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_fit(
    scenario: str,
    settings: dict[str, Any],
    table: pd.DataFrame,
    observed: pd.DataFrame | None,
    reference: str | None = None,
) -> str:
    """HTML text of a real-data fit report, titled with the scenario's declared name.

    ``reference`` (the file path or ``module:OBJECT`` it was loaded from) is shown beneath.
    """
    models = list(dict.fromkeys(table["model"]))
    figure = _figure(table, observed) if observed is not None else ""
    health = table.drop_duplicates("model")[["model", "divergences", "max_rhat", "min_ess_bulk"]]
    health_rows = "".join(
        f"<tr><td class=l>{escape(r.model)}</td><td>{r.divergences}</td><td>{r.max_rhat:.3f}</td>"
        f"<td>{r.min_ess_bulk:.0f}</td></tr>"
        for r in health.itertuples()
    )
    tables = "".join(
        f"<details{' open' if i == 0 else ''}><summary>{escape(m)}</summary>"
        f"{_model_table(table[table['model'] == m], observed)}</details>"
        for i, m in enumerate(models)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fit: {escape(scenario)}</title>
<style>{CSS}</style></head><body>
<h1>Real-data fit: {escape(scenario)}</h1>
<p class="sub ref">scenario <code>{escape(reference or scenario)}</code></p>
<p class="sub">{escape(json.dumps(settings))}</p>
<h2>Estimates by model</h2>
<p>Orange circles: observed values, sized by weight. Blue: posterior mean and 90% interval.
Pooling pulls small groups towards the common mean; with large groups the data dominate.</p>
<figure>{figure}</figure>
<h2>Sampler health</h2>
<table><tr><th class=l>model</th><th>divergences</th><th>max R-hat</th><th>min bulk ESS</th></tr>
{health_rows}</table>
<h2>Tables</h2>
{tables}
</body></html>
"""
