"""Calibration tables of a results table: per (model, estimand), and a verdict per model.

This is the pandas layer over the pure functions of :mod:`sbc.stats`; it does no I/O and
no plotting.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from sbc.stats.coverage import (
    LEVELS,
    binomial_interval,
    contraction,
    contraction_each,
    covered,
    z_scores,
)
from sbc.stats.posterior import quantile_column
from sbc.stats.uniformity import ecdf_pvalue, histogram_test, holm, uniformity_pvalue

ALPHA = 0.01
"""Family-wise level at which a model's ranks are declared non-uniform (Holm over estimands)."""

VERDICT_TEST = "p_pot"
"""The per-quantity uniformity test behind the verdict: arviz-stats' ``pot_c``.

It is analytic, so its p-values resolve the tiny levels a Holm adjustment over many
quantities needs (Alberta: 145 per model, 0.01 / 145 = 7e-5), where the simulated null of
the ECDF test bottoms out at ``1 / 2001``. The ECDF band in the figures shows where a
departure lies; ``p_ecdf`` is reported beside it."""

RHAT_MAX = 1.01
"""A fit with a larger rank-normalised R-hat counts as unhealthy."""

KHAT_MAX = 0.7
"""An approximate fit whose Pareto k-hat is larger counts as unhealthy: importance sampling
cannot repair it and its draws are not to be trusted (Yao, Vehtari, Simpson & Gelman 2018;
Vehtari et al. 2024 give ``min(1 - 1/log10(S), 0.7)``, which is 0.7 for 2000 draws)."""

MODEL_TIMING_COLUMNS: tuple[str, ...] = ("median_fit_seconds", "seconds_per_100_ess")
"""Columns of :func:`model_table` that measure wall time (they differ between equal runs)."""

ESS_MIN = 400.0
"""A fit whose bulk or tail ESS (of some estimand) is smaller counts as unhealthy.

With :data:`RHAT_MAX`, the thresholds of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021).
"""

FAILED_SHARE = 0.5
"""A model whose fits raised more often than this share is *failed*, not judged.

Its ranks would come from the minority of data sets it could fit, which need not be
representative, and "not calibrated" would blame the model's statistics for what is a
crash."""


def verdict(fits: pd.DataFrame, calibrated: bool) -> str:
    """``calibrated``, ``not calibrated`` or ``failed: k of n fits raised <first error>``.

    Parameters
    ----------
    fits : pandas.DataFrame
        One row per fit of one model (its ``simulation`` and ``error``).
    calibrated : bool
        The uniformity verdict of the fits that did not raise.
    """
    errors = fits[fits["error"].notna()].sort_values("simulation")
    if len(fits) and len(errors) <= FAILED_SHARE * len(fits):
        return "calibrated" if calibrated else "not calibrated"
    first = " ".join(str(errors["error"].iloc[0]).split()) if len(errors) else "no fits"
    return f"failed: {len(errors)} of {len(fits)} fits raised {first}"


def interval_columns(level: float) -> tuple[str, str]:
    """Quantile columns bounding the central interval of ``level``, e.g. 0.9 -> q5, q95."""
    tail = (1 - level) / 2
    return quantile_column(round(tail, 6)), quantile_column(round(1 - tail, 6))


def estimand_group(estimand: str) -> str:
    """Group of an estimand: its name without an index, ``country_mean[3]`` -> ``country_mean``."""
    return re.sub(r"\[.*\]$", "", estimand)


def ok_fits(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of fits that did not raise."""
    return results[results["error"].isna()]


def _estimand_row(group: pd.DataFrame) -> dict[str, float]:
    ok = ok_fits(group)
    truth = ok["true_value"].to_numpy(float)
    pit = ok["pit"].to_numpy(float)
    err = ok["post_mean"].to_numpy(float) - truth
    z = z_scores(ok["post_mean"].to_numpy(float), ok["post_sd"].to_numpy(float), truth)
    prior_sd = float(truth.std(ddof=1)) if truth.size > 1 else np.nan
    lo90, hi90 = interval_columns(0.9)
    row = {
        "fits": len(ok),
        "errors": int(group["error"].notna().sum()),
        "divergent_share": float((ok["divergences"] > 0).mean()) if len(ok) else np.nan,
        "p_ecdf": ecdf_pvalue(pit),
        "p_pot": uniformity_pvalue(pit),
        "p_chi2": histogram_test(pit)[1],
    }
    for level in LEVELS:
        lo, hi = interval_columns(level)
        hits = covered(ok[lo], ok[hi], truth)
        row[f"coverage{round(100 * level)}"] = float(hits.mean()) if len(ok) else np.nan
    row |= {
        "z_mean": float(np.mean(z)) if len(ok) else np.nan,
        "z_sd": float(np.std(z, ddof=1)) if len(ok) > 1 else np.nan,
        "contraction": contraction(ok["post_sd"].to_numpy(float), truth),
        "bias": float(err.mean()) if len(ok) else np.nan,
        "rmse": float(np.sqrt(np.mean(err**2))) if len(ok) else np.nan,
        "width90": float((ok[hi90] - ok[lo90]).mean()) if len(ok) else np.nan,
        "prior_sd": prior_sd,
    }
    return row


def estimand_table(results: pd.DataFrame) -> pd.DataFrame:
    """Calibration statistics per (model, estimand).

    Parameters
    ----------
    results : pandas.DataFrame
        A results table (see :data:`sbc.results.schema.COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        One row per (model, estimand), in the order they appear in ``results``, with:
        ``fits`` and ``errors``; ``divergent_share`` (share of fits with a divergence);
        rank uniformity p-values ``p_ecdf`` (simultaneous ECDF test), ``p_pot``
        (arviz-stats' ``pot_c``), ``p_chi2`` (rank histogram) and ``p_holm`` (``p_pot``
        Holm-adjusted over the model's estimands); ``coverage50/80/90/95`` of central
        intervals; ``z_mean`` and ``z_sd`` of z-scores; posterior ``contraction``; ``bias``,
        ``rmse`` and mean 90% interval width ``width90`` of the posterior; ``prior_sd``, the
        sd of the true values; ``verdict``, the model's (see :func:`verdict`).
    """
    rows = []
    grouped = results.groupby(["model", "estimand"], sort=False)
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate posteriors: inf z-scores
        for (model, estimand), group in grouped:
            kind = group["kind"].iloc[0] if "kind" in group else "estimand"
            rows.append(
                {"model": model, "estimand": estimand, "kind": kind, **_estimand_row(group)}
            )
    table = pd.DataFrame(rows)
    table["p_holm"] = np.nan
    table["verdict"] = ""
    for model, index in table.groupby("model", sort=False).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, VERDICT_TEST].to_numpy(float))
        fits = results[results["model"] == model].drop_duplicates("simulation")
        table.loc[index, "verdict"] = verdict(fits, _calibrated(table.loc[index, "p_holm"]))
    return table


def _calibrated(p_holm: pd.Series) -> bool:
    """No quantity's Holm-adjusted p-value below :data:`ALPHA` (and at least one tested)."""
    return bool(p_holm.notna().any() and (p_holm >= ALPHA).all())


def model_table(
    results: pd.DataFrame, estimands: pd.DataFrame | None = None, ess_min: float = ESS_MIN
) -> pd.DataFrame:
    """Verdict per model (pooling level), to compare models at a glance.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table.
    estimands : pandas.DataFrame, optional
        Its :func:`estimand_table`, if already computed.
    ess_min : float
        A fit whose smallest bulk or tail ESS is below this counts as low-ESS.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``verdict`` (see :func:`verdict`: ``failed: ...`` when more
        than :data:`FAILED_SHARE` of its fits raised, else ``calibrated`` or ``not
        calibrated``), ``calibrated`` (not failed, and no quantity's Holm-adjusted p-value,
        of the test :data:`VERDICT_TEST`, below :data:`ALPHA`), ``worst`` (up to three
        estimands with the smallest adjusted p), ``min_p_holm``, ``coverage90`` (mean over
        estimands) and ``coverage90_min``,
        ``rel_rmse`` and ``rel_width90`` (RMSE and 90% width over the prior sd, averaged over
        estimands: unit-free, 1 means no better than the prior; test quantities enter the
        verdict but not these accuracy columns), and sampler health per fit:
        ``fits``, ``error_share``, ``divergent_share``, ``rhat_share`` (R-hat above
        :data:`RHAT_MAX`), ``low_ess_share`` (bulk or tail ESS below ``ess_min``), for
        approximate fits ``khat_share`` (Pareto k-hat above :data:`KHAT_MAX`) and
        ``unconverged_share`` (optimiser not converged), NaN for NUTS fits (and the R-hat
        and ESS shares NaN for approximate fits),
        ``healthy_share`` (none of these: no divergence, R-hat and ESS fine) and
        ``healthy_pairs`` (share of (fit, estimand) pairs with R-hat and ESS fine); and cost:
        ``median_fit_seconds``, ``seconds_per_100_ess`` (median over fits of the sampler's
        seconds per 100 effective draws of the fit's worst estimand: what SBC pays for a
        usable posterior) and ``grad_evals`` (median gradient evaluations per draw).
    """
    if estimands is None:
        estimands = estimand_table(results)
    rows = []
    for model, table in estimands.groupby("model", sort=False):
        mine = results[results["model"] == model]
        fits = mine.drop_duplicates("simulation")
        ok = ok_fits(fits)
        worst = table.nsmallest(3, "p_holm")
        worst = worst[worst["p_holm"] < ALPHA]
        params = table[table["kind"] == "estimand"]  # accuracy: parameters, not test quantities
        health = _health(ok, ok_fits(mine), ess_min)
        calibrated = _calibrated(table["p_holm"])
        state = verdict(fits, calibrated)
        rows.append(
            {
                "model": model,
                "verdict": state,
                "calibrated": calibrated and not state.startswith("failed"),
                "worst": ", ".join(
                    f"{e} (p={p:.2g})"
                    for e, p in zip(worst["estimand"], worst["p_holm"], strict=True)
                ),
                "min_p_holm": float(table["p_holm"].min()),
                "coverage90": float(params["coverage90"].mean()),
                "coverage90_min": float(params["coverage90"].min()),
                "rel_rmse": float((params["rmse"] / params["prior_sd"]).mean()),
                "rel_width90": float((params["width90"] / params["prior_sd"]).mean()),
                "fits": len(fits),
                "error_share": float(fits["error"].notna().mean()),
                **health,
                "median_fit_seconds": float(fits["fit_seconds"].median()),
            }
        )
    return pd.DataFrame(rows)


def _median(values: np.ndarray) -> float:
    """Median of the finite values; NaN when there is none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def _health(fits: pd.DataFrame, rows: pd.DataFrame, ess_min: float) -> dict[str, float]:
    """Sampler health and cost of one model's successful fits (one row each) and their rows.

    Runs stored before the tail ESS and step counts were recorded lack those columns: the
    figures that need them are NaN.
    """
    nan = float("nan")
    if not len(fits):
        keys = ("divergent", "rhat", "low_ess", "khat", "unconverged", "healthy")
        return {f"{k}_share": nan for k in keys} | {
            "healthy_pairs": nan,
            "seconds_per_100_ess": nan,
            "grad_evals": nan,
        }
    tail = fits["min_ess_tail"] if "min_ess_tail" in fits else pd.Series(nan, index=fits.index)
    divergent = fits["divergences"] > 0
    high_rhat = fits["max_rhat"] > RHAT_MAX
    low_ess = (fits["min_ess_bulk"] < ess_min) | (tail < ess_min)
    worst_ess = np.fmin(fits["min_ess_bulk"].to_numpy(float), tail.to_numpy(float))
    high_khat, unconverged = approximation_flags(fits)
    approximate = bool(fits["pareto_khat"].notna().any()) if "pareto_khat" in fits else False
    out = {
        "divergent_share": float(divergent.mean()),
        # independent draws of an approximation have no R-hat or ESS: not applicable
        "rhat_share": nan if approximate else float(high_rhat.mean()),
        "low_ess_share": nan if approximate else float(low_ess.mean()),
        "khat_share": float(high_khat.mean()) if approximate else nan,
        "unconverged_share": float(unconverged.mean()) if approximate else nan,
        "healthy_share": float(
            (~(divergent | high_rhat | low_ess | high_khat | unconverged)).mean()
        ),
        "healthy_pairs": nan,
        "seconds_per_100_ess": _median(100 * fits["fit_seconds"].to_numpy(float) / worst_ess),
        "grad_evals": float(fits["grad_evals"].median()) if "grad_evals" in fits else nan,
    }
    if "ess_tail" in rows:
        pairs = rows[rows["kind"] == "estimand"]
        good = (
            (pairs["rhat"] <= RHAT_MAX)
            & (pairs["ess_bulk"] >= ess_min)
            & (pairs["ess_tail"] >= ess_min)
        )
        out["healthy_pairs"] = float(good.mean())
    return out


def approximation_flags(fits: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per row: a Pareto k-hat above :data:`KHAT_MAX`, and an optimiser that did not converge.

    Both ``False`` for NUTS fits (no k-hat) and for results stored before approximate
    inference existed.
    """
    if "pareto_khat" not in fits:
        false = pd.Series(False, index=fits.index)
        return false, false
    high = fits["pareto_khat"].astype(float).fillna(0.0) > KHAT_MAX
    unconverged = fits["converged"].astype("boolean").fillna(True) == False  # noqa: E712
    return high, unconverged.astype(bool)


def coverage_curve(group: pd.DataFrame, prob: float = 0.95) -> pd.DataFrame:
    """Empirical coverage at every nominal level, with an exact binomial interval.

    Parameters
    ----------
    group : pandas.DataFrame
        Results rows of one (model, estimand) or several pooled.
    prob : float
        Confidence level of the binomial intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``level``, ``coverage``, ``lower``, ``upper``, ``n``.
    """
    ok = ok_fits(group)
    rows = []
    for level in LEVELS:
        lo, hi = interval_columns(level)
        hits = int(covered(ok[lo], ok[hi], ok["true_value"]).sum())
        low, up = binomial_interval(hits, len(ok), prob)
        rows.append(
            {
                "level": level,
                "coverage": hits / len(ok) if len(ok) else np.nan,
                "lower": low,
                "upper": up,
                "n": len(ok),
            }
        )
    return pd.DataFrame(rows)


def estimand_groups(results: pd.DataFrame) -> dict[str, list[str]]:
    """Estimands by group (``country_mean`` -> ``country_mean[1]``, ...), in table order."""
    groups: dict[str, list[str]] = {}
    for estimand in results["estimand"].unique():
        groups.setdefault(estimand_group(estimand), []).append(estimand)
    return groups


def panel_data(results: pd.DataFrame, model: str, estimands: list[str], prob: float = 0.99) -> dict:
    """Everything the report draws for one model and one group of estimands.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table.
    model : str
        The model.
    estimands : list of str
        The estimands of one group.
    prob : float
        Level of the simultaneous ECDF band and of the histogram band.

    Returns
    -------
    dict
        ``ecdf``: per estimand the ECDF band dict of :func:`sbc.stats.uniformity.ecdf_band`;
        ``hist``: per estimand the rank-histogram counts, with ``hist_band`` (lower, upper)
        the central ``prob`` binomial range of one bin's count under uniformity;
        ``coverage``: :func:`coverage_curve` of the pooled group; ``estimates``: per estimand
        arrays ``truth``, ``mean``, ``lower`` and ``upper`` (90% interval); ``contraction``:
        per estimand arrays ``contraction`` and ``z`` (posterior contraction and z-score of
        each simulation, :func:`sbc.stats.coverage.contraction_each`).
    """
    from scipy import stats

    from sbc.stats.uniformity import ecdf_band, histogram_bins

    rows = ok_fits(results[(results["model"] == model) & results["estimand"].isin(estimands)])
    lo90, hi90 = interval_columns(0.9)
    out: dict = {"ecdf": {}, "hist": {}, "estimates": {}, "contraction": {}}
    n = int(rows.groupby("estimand").size().max()) if len(rows) else 0
    bins = histogram_bins(n)
    for estimand in estimands:
        group = rows[rows["estimand"] == estimand]
        pit = group["pit"].to_numpy(float)
        if pit.size >= 2:
            out["ecdf"][estimand] = ecdf_band(pit, prob)
        out["hist"][estimand] = histogram_test(pit, bins)[0]
        out["estimates"][estimand] = {
            "truth": group["true_value"].to_numpy(float),
            "mean": group["post_mean"].to_numpy(float),
            "lower": group[lo90].to_numpy(float),
            "upper": group[hi90].to_numpy(float),
        }
        truth, sd = group["true_value"].to_numpy(float), group["post_sd"].to_numpy(float)
        out["contraction"][estimand] = {
            "contraction": contraction_each(sd, truth),
            "z": z_scores(group["post_mean"].to_numpy(float), sd, truth),
        }
    out["hist_band"] = tuple(stats.binom.ppf([(1 - prob) / 2, (1 + prob) / 2], n, 1 / bins))
    out["coverage"] = coverage_curve(rows)
    return out
