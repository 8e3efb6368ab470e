"""The estimates of a real-data fit (``sbc fit``), like the seed's school plots.

One figure per model, side by side: every observed group estimate and the model's
posterior mean with its 90% interval, groups sorted by their observed value, so shrinkage
towards the pooled mean is visible; and one table of estimates per model. The validation
page (:mod:`sbc.report.validate_html`) shows both.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from sbc.report import svg


def figure(table: pd.DataFrame, observed: pd.DataFrame) -> str:
    """One panel per model: observed group estimates and posterior means, sorted."""
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


def model_tables(table: pd.DataFrame, observed: pd.DataFrame | None) -> str:
    """One collapsible table of estimates per model (the first open)."""
    models = list(dict.fromkeys(table["model"]))
    return "".join(
        f"<details{' open' if i == 0 else ''}><summary>{escape(m)}</summary>"
        f"{_model_table(table[table['model'] == m], observed)}</details>"
        for i, m in enumerate(models)
    )
