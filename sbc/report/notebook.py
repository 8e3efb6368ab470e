"""A run shown inline in Jupyter: the verdict table and the ECDF-difference figures.

The same table and figure code as the report (:mod:`sbc.report.html`,
:mod:`sbc.report.figures`), as one HTML fragment with inline SVG and no scripts, its few
styles scoped to the fragment so the notebook's own look is left alone.
"""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from sbc.report import figures
from sbc.report.html import scenario_name, verdict_table
from sbc.results.calibration import estimand_groups, estimand_table, model_table, panel_data

STYLE = """<style>
.sbc-inline table { border-collapse: collapse; font-size: 12px; }
.sbc-inline th, .sbc-inline td { padding: 2px 6px; text-align: right; }
.sbc-inline .l { text-align: left; }
.sbc-inline td.ok { color: #1a7f37; font-weight: bold; }
.sbc-inline td.bad, .sbc-inline td.fail, .sbc-inline td.warn { color: #b42318; font-weight: bold; }
.sbc-inline .note { color: #555; font-style: italic; }
.sbc-inline h4 { margin: 10px 0 2px; }
</style>"""


def inline_html(
    results: pd.DataFrame, record: dict[str, Any], estimands: pd.DataFrame | None = None
) -> str:
    """HTML fragment: a title line, the verdict table, one ECDF-difference row per group.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table.
    record : dict
        The run's ``run.json`` record.
    estimands : pandas.DataFrame, optional
        :func:`~sbc.results.calibration.estimand_table` of the results, if computed already.
    """
    if results.empty:
        empty = f"<p>{escape(scenario_name(record))}: no results yet</p>"
        return f"<div class='sbc-inline'>{STYLE}{empty}</div>"
    if estimands is None:
        estimands = estimand_table(results)
    models = model_table(results, estimands)
    names = list(models["model"])
    posterior = record.get("identity", {}).get("mode") == "posterior"
    title = (
        f"<p><b>{'Posterior SBC' if posterior else 'SBC'}: {escape(scenario_name(record))}</b>, "
        f"{results['simulation'].nunique()} simulations, {len(names)} models</p>"
    )
    parts = [STYLE, title, verdict_table(models, record)]
    for group, members in estimand_groups(results).items():
        panels = {m: panel_data(results, m, members) for m in names}
        parts.append(f"<h4>{escape(group)}: ECDF difference, 99% simultaneous band</h4>")
        parts.append(figures.to_svg(figures.ecdf_difference(panels)))
    return f"<div class='sbc-inline'>{''.join(parts)}</div>"
