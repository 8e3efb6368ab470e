"""Detection power: whether SBC flags the planted bugs ("mutants"), and from how many runs.

``sbc mutants SCENARIO`` runs the scenario's correct ``partial`` model and every model marked
``mutant=True`` on the same simulated data sets, then reports for each model whether it is
flagged (the verdict of :func:`sbc.calibration.model_table`: a Holm-adjusted simultaneous
``pot_c`` test over all estimands and test quantities at level :data:`sbc.calibration.ALPHA`),
which quantities revealed it, and the smallest number of simulations at which it is flagged
(checked on the first 10, 20, 30, ... simulations: the smallest N from which on it stays
flagged). The correct model must not be flagged.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from sbc.calibration import ALPHA, ok_fits
from sbc.stats.uniformity import holm, uniformity_pvalue

CORRECT = "partial"
"""The model every scenario's mutants are variants of."""


def holm_pvalues(results: pd.DataFrame) -> pd.Series:
    """Holm-adjusted uniformity p-value (``pot_c``, as the verdict) of every quantity."""
    ok = ok_fits(results)
    names = list(dict.fromkeys(ok["estimand"]))
    raw = np.array(
        [uniformity_pvalue(ok.loc[ok["estimand"] == n, "pit"].to_numpy(float)) for n in names]
    )
    return pd.Series(holm(raw), index=names)


def detection_table(results: pd.DataFrame, models: list[str], step: int = 10) -> pd.DataFrame:
    """Per model: flagged or not, the quantities that revealed it, the first N that flags it.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table holding every model in ``models`` on the same simulations.
    models : list of str
        The correct model first, then the mutants.
    step : int
        The simulation counts checked are ``step, 2 step, ...`` up to all of them.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``mutant``, ``simulations``, ``flagged``, ``revealed_by`` (the
        quantities with adjusted p below :data:`ALPHA`, smallest first), ``min_p_holm`` and
        ``first_flagged_at`` (smallest checked N from which on the model is flagged at every
        larger checked N, so a chance early flag does not count; NA if not flagged at the end).
    """
    rows = []
    total = int(results["simulation"].nunique())
    for i, model in enumerate(models):
        mine = results[results["model"] == model]
        p = holm_pvalues(mine).sort_values()
        checks = sorted({min(n, total) for n in range(step, total + step, step)})
        flags = [holm_pvalues(mine[mine["simulation"] < n]).min() < ALPHA for n in checks]
        first = pd.NA  # smallest checked N from which the model stays flagged
        for n, flag in zip(reversed(checks), reversed(flags), strict=True):
            if not flag:
                break
            first = n
        revealed = p[p < ALPHA]
        rows.append(
            {
                "model": model,
                "mutant": i > 0,
                "simulations": total,
                "flagged": bool(p.min() < ALPHA),
                "revealed_by": ", ".join(f"{n} (p={v:.2g})" for n, v in revealed.head(6).items())
                + (f" and {len(revealed) - 6} more" if len(revealed) > 6 else ""),
                "min_p_holm": float(p.min()),
                "first_flagged_at": first,
            }
        )
    return pd.DataFrame(rows)


def write_detection_report(
    out: str | os.PathLike[str], table: pd.DataFrame, descriptions: dict[str, str]
) -> Path:
    """Write ``out/mutants.csv`` and a self-contained ``out/mutants.html`` of ``table``."""
    out = Path(out)
    table.to_csv(out / "mutants.csv", index=False)
    rows = []
    for r in table.itertuples():
        expected = r.flagged == r.mutant
        verdict = "flagged" if r.flagged else "not flagged"
        first = "&ndash;" if pd.isna(r.first_flagged_at) else str(r.first_flagged_at)
        rows.append(
            f"<tr><td class=l><b>{escape(r.model)}</b><br><small>"
            f"{escape(descriptions.get(r.model, ''))}</small></td>"
            f"<td>{'mutant' if r.mutant else 'correct'}</td>"
            f'<td class="{"ok" if expected else "bad"}">{verdict}</td>'
            f"<td>{first}</td><td>{r.min_p_holm:.2g}</td>"
            f"<td class=l>{escape(r.revealed_by) or '&ndash;'}</td></tr>"
        )
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SBC mutant detection</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; }}
table {{ border-collapse: collapse; font-size: 0.9rem; }}
th, td {{ padding: 0.35rem 0.6rem; border-bottom: 1px solid #e5e5e5; text-align: right; }}
th {{ background: #f5f5f5; }} .l {{ text-align: left; }}
.ok {{ background: #e3f4e1; color: #145214; font-weight: 600; }}
.bad {{ background: #fbe3e1; color: #8a1c12; font-weight: 600; }}
</style></head><body>
<h1>Does SBC catch the planted bugs?</h1>
<p>{int(table["simulations"].max())} simulations. A model is flagged when the Holm-adjusted
uniformity test (arviz-stats' pot_c) rejects uniform ranks for any estimand or test quantity at
family-wise level {ALPHA}. Green: the outcome SBC should give (mutants flagged, the correct
model not). "First flagged at" is the smallest number of simulations, checked in steps of
10, from which on the model stays flagged.</p>
<table><tr><th class=l>model</th><th>kind</th><th>verdict</th><th>first flagged at</th>
<th>min adjusted p</th><th class=l>revealed by</th></tr>{"".join(rows)}</table>
<p>Full results and per-model reports: <code>results.parquet</code>,
<a href="report.html">report.html</a>.</p>
</body></html>
"""
    path = out / "mutants.html"
    path.write_text(html, encoding="utf-8")
    return path
