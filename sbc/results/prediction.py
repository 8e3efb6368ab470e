"""Prediction by model, and PSIS-LOO checked against the held-out truth, from a results table.

The per-fit prediction columns (:data:`sbc.results.schema.PREDICTION_COLUMNS`) answer two
questions over a run's simulations:

* :func:`prediction_table`: which model predicts best, in sample and out of sample (the
  seed's case for partial pooling: worse on the training data, better on new data), each
  average with its 95% interval, and each model's paired held-out difference to the best;
* :func:`comparison_table`: whether the comparison a user would run, PSIS-LOO with its
  standard errors, tells the truth: the error of ``elpd_loo`` against the held-out elpd,
  the coverage of ``elpd_loo +/- 1.96 SE`` and of each elpd difference ``+/- 1.96 SE``, how
  often LOO picks the model that predicts best, and whether a high Pareto k-hat marks the
  fits where LOO errs.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from sbc.results.schema import DIFF_PREFIX, DIFF_SE_PREFIX
from sbc.stats.comparison import estimate_error, mean_interval, picks_best, se_coverage
from sbc.stats.predictive import KHAT_THRESHOLD

SMALL_DIFFERENCE = 4.0
"""An estimated elpd difference below this is small (Sivula et al. 2022: there the SE of
the difference is unreliable, and the models predict about equally well)."""

_MEANS = ("elpd_in", "elpd_heldout", "elpd_heldout_groups", "elpd_loo", "elpd_logo")
_RMSE = ("rmse_in", "rmse_heldout")
_PAIRED = ("elpd_in", "elpd_heldout", "elpd_heldout_groups")


def _fits(results: pd.DataFrame) -> pd.DataFrame:
    """One row per successful fit that has prediction columns."""
    if "elpd_in" not in results or results.empty:
        return pd.DataFrame()
    fits = results.drop_duplicates(["simulation", "model"])
    fits = fits[fits["error"].isna() & fits["elpd_in"].notna()]
    return fits.reset_index(drop=True)


def _wide(fits: pd.DataFrame, column: str, models: list[str]) -> pd.DataFrame:
    """``column`` with one row per simulation and one column per model."""
    return fits.pivot(index="simulation", columns="model", values=column).reindex(columns=models)


def has_prediction(results: pd.DataFrame) -> bool:
    """Whether the run stored prediction columns (a scenario with a likelihood, prior SBC)."""
    return not _fits(results).empty


def prediction_table(results: pd.DataFrame) -> pd.DataFrame:
    """Predictive accuracy per model, averaged over simulations.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``fits``; for each of ``elpd_in``, ``elpd_heldout``,
        ``elpd_heldout_groups``, ``elpd_loo`` and ``elpd_logo`` the mean over simulations
        and its 95% interval (``_lo``, ``_hi``); the mean ``rmse_in`` and ``rmse_heldout``;
        for ``elpd_in``, ``elpd_heldout`` and ``elpd_heldout_groups``, ``<column>_vs_best``
        (``_lo``, ``_hi``): the paired mean difference to the model with the best mean (0
        for that model; the models fitted the same data sets); ``best_heldout_share``: the share
        of simulations where this model had the best held-out elpd; ``loo_pick_share``:
        where LOO ranked it first. Empty when the run has no prediction columns.
    """
    fits = _fits(results)
    if fits.empty:
        return pd.DataFrame()
    models = list(dict.fromkeys(fits["model"]))
    wide = {column: _wide(fits, column, models) for column in _PAIRED}
    heldout, loo = wide["elpd_heldout"], _wide(fits, "elpd_loo", models)
    best = {c: w.mean().idxmax() if w.notna().any().any() else None for c, w in wide.items()}
    complete = heldout.notna().all(axis=1) & loo.notna().all(axis=1)
    rows = []
    for model in models:
        mine = fits[fits["model"] == model]
        row: dict[str, object] = {"model": model, "fits": len(mine)}
        for column in _MEANS:
            row[column], row[f"{column}_lo"], row[f"{column}_hi"] = mean_interval(mine[column])
        for column in _RMSE:
            row[column] = float(mine[column].mean())
        for column, table in wide.items():
            diff = table[model] - table[best[column]] if best[column] else table[model] * np.nan
            names = (f"{column}_vs_best", f"{column}_vs_best_lo", f"{column}_vs_best_hi")
            row |= dict(zip(names, mean_interval(diff), strict=True))
        if complete.any():
            row["best_heldout_share"] = float((heldout[complete].idxmax(axis=1) == model).mean())
            row["loo_pick_share"] = float((loo[complete].idxmax(axis=1) == model).mean())
        else:
            row["best_heldout_share"] = row["loo_pick_share"] = np.nan
        rows.append(row | _loo_check(mine))
    return pd.DataFrame(rows)


def _loo_check(fits: pd.DataFrame) -> dict[str, float]:
    """LOO (and leave-one-group-out) against the held-out truth for one model's fits."""
    loo, truth = fits["elpd_loo"].to_numpy(float), fits["elpd_heldout"].to_numpy(float)
    error = estimate_error(loo, truth)
    khat = fits["pareto_k_max"].to_numpy(float)
    high = khat > KHAT_THRESHOLD
    out = {
        "loo_bias": error["bias"],
        "loo_rmse": error["rmse"],
        "loo_coverage": se_coverage(loo, fits["elpd_loo_se"], truth),
        "khat_high_share": float(np.mean(high)) if khat.size else np.nan,
        "loo_rmse_khat_high": estimate_error(loo[high], truth[high])["rmse"],
        "loo_rmse_khat_low": estimate_error(loo[~high], truth[~high])["rmse"],
    }
    logo, groups = fits["elpd_logo"].to_numpy(float), fits["elpd_heldout_groups"].to_numpy(float)
    error = estimate_error(logo, groups)
    khat_logo = fits["pareto_k_max_logo"].to_numpy(float)
    out |= {
        "logo_khat_high_share": (
            float(np.mean(khat_logo > KHAT_THRESHOLD)) if np.isfinite(khat_logo).any() else np.nan
        ),
        "logo_bias": error["bias"],
        "logo_rmse": error["rmse"],
        "logo_coverage": se_coverage(logo, fits["elpd_logo_se"], groups),
    }
    return out


def comparison_table(results: pd.DataFrame) -> pd.DataFrame:
    """PSIS-LOO elpd differences between every two models, checked against the truth.

    Returns
    -------
    pandas.DataFrame
        One row per pair ``model_a``, ``model_b`` (in the run's model order): ``fits``
        (simulations where both have a difference and a held-out elpd); ``true_diff``: mean
        held-out elpd of a minus b (the truth); ``loo_diff``: mean LOO estimate; ``bias``
        and ``rmse`` of the estimate against the truth; ``se_ratio``: the mean SE over the
        sd of the estimate's error (below 1: SEs too small); ``coverage``: share of
        ``diff +/- 1.96 SE`` containing the true difference, and the same for small
        (``coverage_small``, ``|estimate| <`` :data:`SMALL_DIFFERENCE`) and large
        estimated differences with their counts; ``sign_agreement``: share where LOO
        prefers the model that truly predicts better. Empty without differences.
    """
    fits = _fits(results)
    if fits.empty:
        return pd.DataFrame()
    models = list(dict.fromkeys(fits["model"]))
    heldout = _wide(fits, "elpd_heldout", models)
    rows = []
    for a, b in combinations(models, 2):
        if f"{DIFF_PREFIX}{b}" not in fits:
            continue
        mine = fits[fits["model"] == a].set_index("simulation")
        estimate = mine[f"{DIFF_PREFIX}{b}"].astype(float)
        se = mine[f"{DIFF_SE_PREFIX}{b}"].astype(float)
        truth = (heldout[a] - heldout[b]).reindex(estimate.index)
        ok = estimate.notna() & se.notna() & truth.notna()
        estimate, se, truth = estimate[ok], se[ok], truth[ok]
        if estimate.empty:
            continue
        error = estimate_error(estimate, truth)
        sd = float(np.std(estimate - truth, ddof=1)) if len(estimate) > 1 else np.nan
        small = np.abs(estimate) < SMALL_DIFFERENCE
        rows.append(
            {
                "model_a": a,
                "model_b": b,
                "fits": int(ok.sum()),
                "true_diff": float(truth.mean()),
                "loo_diff": float(estimate.mean()),
                "bias": error["bias"],
                "rmse": error["rmse"],
                "se_ratio": float(se.mean()) / sd if sd and sd > 0 else np.nan,
                "coverage": se_coverage(estimate, se, truth),
                "coverage_small": se_coverage(estimate[small], se[small], truth[small]),
                "n_small": int(small.sum()),
                "coverage_large": se_coverage(estimate[~small], se[~small], truth[~small]),
                "n_large": int((~small).sum()),
                "sign_agreement": float(np.mean(np.sign(estimate) == np.sign(truth))),
            }
        )
    return pd.DataFrame(rows)


def loo_picks_best(results: pd.DataFrame) -> tuple[float, int]:
    """Share of simulations where LOO's first model has the best held-out elpd, and their count."""
    fits = _fits(results)
    if fits.empty:
        return np.nan, 0
    models = list(dict.fromkeys(fits["model"]))
    if len(models) < 2:
        return np.nan, 0
    loo, heldout = _wide(fits, "elpd_loo", models), _wide(fits, "elpd_heldout", models)
    ok = loo.notna().all(axis=1) & heldout.notna().all(axis=1)
    return picks_best(loo[ok].to_numpy(), heldout[ok].to_numpy()), int(ok.sum())
