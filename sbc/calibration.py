"""Calibration summary of a results table: one row per (model, estimand)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sbc.stats.uniformity import uniformity_pvalue

ALPHA = 0.01
"""Significance level at which a uniformity p-value is flagged in summaries."""


def _covered(group: pd.DataFrame, level: int) -> float:
    lo = {50: "q25", 80: "q10", 90: "q5", 95: "q2.5"}[level]
    hi = {50: "q75", 80: "q90", 90: "q95", 95: "q97.5"}[level]
    inside = (group[lo] <= group["true_value"]) & (group["true_value"] <= group[hi])
    return float(inside.mean())


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per (model, estimand): fits, errors, divergences, rank uniformity, coverage, error.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table (see :data:`sbc.fitting.COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``estimand``, ``fits`` (successful), ``errors``,
        ``divergent_share`` (share of fits with at least one divergence), ``p_uniform``
        (see :func:`sbc.stats.uniformity.uniformity_pvalue`), ``coverage50`` and
        ``coverage90`` (share of true values inside central posterior intervals),
        ``bias`` and ``rmse`` of the posterior mean.
    """
    rows = []
    for (model, estimand), group in results.groupby(["model", "estimand"], sort=False):
        ok = group[group["error"].isna()]
        err = ok["post_mean"] - ok["true_value"]
        rows.append(
            {
                "model": model,
                "estimand": estimand,
                "fits": len(ok),
                "errors": int(group["error"].notna().sum()),
                "divergent_share": float((ok["divergences"] > 0).mean()) if len(ok) else np.nan,
                "p_uniform": uniformity_pvalue(ok["pit"].to_numpy(dtype=float)),
                "coverage50": _covered(ok, 50) if len(ok) else np.nan,
                "coverage90": _covered(ok, 90) if len(ok) else np.nan,
                "bias": float(err.mean()) if len(ok) else np.nan,
                "rmse": float(np.sqrt((err**2).mean())) if len(ok) else np.nan,
            }
        )
    return pd.DataFrame(rows)
