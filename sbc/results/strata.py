"""Calibration by data stratum and by sampler health: the pandas layer over :mod:`sbc.stats`.

Beside :mod:`sbc.results.calibration` (marginal: every simulation pooled), this module splits a
run's simulations

* by **data statistics** (columns ``stat:<name>`` of the results, one value per simulation,
  see :class:`sbc.scenario.DataStatistic`): equal-count strata of each statistic (tertiles by
  default), the ranks of every quantity tested for uniformity in each stratum, and a
  *stratified verdict* per model: Holm's adjustment over every (quantity, statistic, stratum)
  of the model, at the family-wise level :data:`sbc.results.calibration.ALPHA`. Strata of the data
  are valid for a correct model (ranks are uniform conditionally on the data); strata of the
  true parameter values are not, and are never used;
* by **sampler health**: fits with divergences or R-hat above :data:`RHAT_MAX` against the
  rest, to show what the common habit of discarding unhealthy fits does to the ranks and
  to the data sets the verdict speaks for.

No I/O and no plotting here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sbc.results.calibration import (
    ALPHA,
    RHAT_MAX,
    approximation_flags,
    interval_columns,
    ok_fits,
)
from sbc.results.schema import STATISTIC_PREFIX
from sbc.stats.coverage import covered, z_scores
from sbc.stats.strata import (
    STRATA,
    assign_strata,
    difference_band,
    ecdf_difference,
    stratified_pvalues,
    stratum_ranges,
)
from sbc.stats.uniformity import holm, uniformity_pvalue

STRATA_COLUMNS: tuple[str, ...] = (
    "model",
    "estimand",
    "kind",
    "statistic",
    "stratum",
    "lower",
    "upper",
    "n",
    "p_value",
    "p_holm",
    "coverage90",
)
"""Columns of ``strata.csv``: one row per (model, quantity, data statistic, stratum).

``stratum`` counts from 1 (lowest values of the statistic); ``lower`` and ``upper`` are the
statistic's range in it; ``n`` the fits in it; ``p_value`` the ``pot_c`` uniformity p-value
of the ranks there; ``p_holm`` that p-value Holm-adjusted over every row of the model (all
quantities, statistics and strata); ``coverage90`` the share of those fits whose central
90% interval holds the truth."""


def statistics(results: pd.DataFrame) -> list[str]:
    """Names of the data statistics stored in a results table (none in older runs)."""
    return [c.removeprefix(STATISTIC_PREFIX) for c in results if c.startswith(STATISTIC_PREFIX)]


def simulation_strata(results: pd.DataFrame, k: int = STRATA) -> pd.DataFrame:
    """Stratum (0 .. k-1, -1 if undefined) of every simulation for every data statistic.

    Cut points are quantiles over the run's simulations (one value per simulation, whatever
    the models), so every model is split into the same data sets.
    """
    names = statistics(results)
    sims = results.drop_duplicates("simulation").set_index("simulation")
    return pd.DataFrame(
        {n: assign_strata(sims[f"{STATISTIC_PREFIX}{n}"].to_numpy(float), k) for n in names},
        index=sims.index,
    )


def strata_table(results: pd.DataFrame, k: int = STRATA) -> pd.DataFrame:
    """Uniformity and coverage per (model, quantity, data statistic, stratum).

    Parameters
    ----------
    results : pandas.DataFrame
        A results table with data-statistic columns.
    k : int
        Number of strata per statistic (equal counts: tertiles by default).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`STRATA_COLUMNS`; empty when the run stored no statistic.
    """
    names = statistics(results)
    if names and not results.empty:  # a statistic undefined for every data set splits nothing
        per_sim = results.drop_duplicates("simulation")
        names = [n for n in names if per_sim[f"{STATISTIC_PREFIX}{n}"].notna().any()]
    if not names or results.empty:
        return pd.DataFrame(columns=list(STRATA_COLUMNS))
    strata = simulation_strata(results, k)
    values = results.drop_duplicates("simulation").set_index("simulation")
    ranges = {
        n: stratum_ranges(values[f"{STATISTIC_PREFIX}{n}"].to_numpy(float), strata[n].to_numpy(), k)
        for n in names
    }
    lo90, hi90 = interval_columns(0.9)
    ok = ok_fits(results)
    pits = ok["pit"].to_numpy(float)
    hits_all = np.asarray(covered(ok[lo90], ok[hi90], ok["true_value"]))
    kinds = ok["kind"].to_numpy()
    labels_all = {n: strata[n].reindex(ok["simulation"]).to_numpy() for n in names}
    rows = []
    for (model, estimand), index in ok.groupby(["model", "estimand"], sort=False).indices.items():
        pit, hits, kind = pits[index], hits_all[index], kinds[index[0]]
        for name in names:
            labels = labels_all[name][index]
            p = stratified_pvalues(pit, labels, k)
            for s in range(k):
                inside = labels == s
                rows.append(
                    {
                        "model": model,
                        "estimand": estimand,
                        "kind": kind,
                        "statistic": name,
                        "stratum": s + 1,
                        "lower": ranges[name][s, 0],
                        "upper": ranges[name][s, 1],
                        "n": int(inside.sum()),
                        "p_value": p[s],
                        "coverage90": float(hits[inside].mean()) if inside.any() else np.nan,
                    }
                )
    table = pd.DataFrame(rows)
    table["p_holm"] = np.nan
    for _, index in table.groupby("model", sort=False).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy(float))
    return table[list(STRATA_COLUMNS)]


def stratified_verdict(strata: pd.DataFrame) -> pd.DataFrame:
    """Stratified verdict per model from its :func:`strata_table`.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``stratified_calibrated`` (no Holm-adjusted p below
        :data:`~sbc.results.calibration.ALPHA` in any stratum of any statistic and quantity; None
        when no stratum could be tested),
        ``stratified_min_p_holm``, and ``stratified_worst`` (up to three flagged
        quantity / statistic / stratum triples with the smallest adjusted p).
    """
    rows = []
    for model, table in strata.groupby("model", sort=False):
        worst = table.nsmallest(3, "p_holm")
        worst = worst[worst["p_holm"] < ALPHA]
        tested = table["p_holm"].notna().any()
        rows.append(
            {
                "model": model,
                "stratified_calibrated": bool((table["p_holm"] >= ALPHA).all()) if tested else None,
                "stratified_min_p_holm": float(table["p_holm"].min()),
                "stratified_worst": ", ".join(
                    f"{r.estimand} in {r.statistic} stratum {r.stratum} (p={r.p_holm:.2g})"
                    for r in worst.itertuples()
                ),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["model", "stratified_calibrated", "stratified_min_p_holm", "stratified_worst"],
    )


def unhealthy(results: pd.DataFrame) -> pd.Series:
    """Whether each row's fit was unhealthy: a divergence, R-hat above :data:`RHAT_MAX`.

    An approximate fit is also unhealthy with a Pareto k-hat above
    :data:`~sbc.results.calibration.KHAT_MAX` or an optimiser that did not converge.
    """
    divergent = results["divergences"].fillna(0).astype(float) > 0
    high_khat, unconverged = approximation_flags(results)
    return divergent | (results["max_rhat"].astype(float) > RHAT_MAX) | high_khat | unconverged


HEALTH_SUBSETS: tuple[str, ...] = ("all", "healthy", "unhealthy")
"""Subsets of a model's fits in :func:`health_table`: ``healthy`` is what is left after the
common habit of discarding fits with divergences or a large R-hat."""


def health_subsets(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of successful fits: all of them, the healthy ones, the unhealthy ones."""
    ok = ok_fits(results)
    bad = unhealthy(ok)
    return {"all": ok, "healthy": ok[~bad], "unhealthy": ok[bad]}


def health_table(results: pd.DataFrame) -> pd.DataFrame:
    """What splitting by sampler health, and discarding unhealthy fits, does to the ranks.

    Returns
    -------
    pandas.DataFrame
        One row per (model, subset of :data:`HEALTH_SUBSETS`): ``fits`` and ``share`` of the
        model's successful fits, ``calibrated`` and ``min_p_holm`` (the marginal verdict
        computed on that subset alone), ``coverage90`` (mean over estimands), the mean
        ``z_sd`` over estimands (above 1: over-confident), and the median of every data
        statistic (``median_<name>``): where in the data space the subset lies.
    """
    names = statistics(results)
    lo90, hi90 = interval_columns(0.9)
    rows = []
    for model, mine in ok_fits(results).groupby("model", sort=False):
        total = mine["simulation"].nunique()
        for subset, rows_ in health_subsets(mine).items():
            fits = rows_["simulation"].nunique()
            row = {"model": model, "subset": subset, "fits": fits, "share": fits / total}
            row |= {"calibrated": None, "min_p_holm": np.nan, "coverage90": np.nan}
            row["z_sd"] = np.nan
            if fits >= 2:
                p, coverage, z_sd = [], [], []
                for _, g in rows_.groupby("estimand", sort=False):
                    p.append(uniformity_pvalue(g["pit"].to_numpy(float)))
                    if g["kind"].iloc[0] == "estimand":
                        truth = g["true_value"].to_numpy(float)
                        coverage.append(np.mean(covered(g[lo90], g[hi90], truth)))
                        with np.errstate(divide="ignore", invalid="ignore"):
                            z = z_scores(g["post_mean"], g["post_sd"], truth)
                        z_sd.append(np.nanstd(np.asarray(z, dtype=float), ddof=1))
                adjusted = holm(np.array(p))
                row |= {
                    "calibrated": bool((adjusted[np.isfinite(adjusted)] >= ALPHA).all()),
                    "min_p_holm": float(np.nanmin(adjusted)),
                    "coverage90": float(np.mean(coverage)),
                    "z_sd": float(np.mean(z_sd)),
                }
            per_sim = rows_.drop_duplicates("simulation")
            for n in names:
                row[f"median_{n}"] = float(per_sim[f"{STATISTIC_PREFIX}{n}"].median())
            rows.append(row)
    return pd.DataFrame(rows)


def _ecdf_panel(rows: pd.DataFrame, title: str, highlight: int, prob: float) -> dict:
    """ECDF-difference curves of every quantity in ``rows``, the worst few highlighted."""
    pits = {e: g["pit"].to_numpy(float) for e, g in rows.groupby("estimand", sort=False)}
    n = max((p.size for p in pits.values()), default=0)
    panel: dict = {"title": title, "n": n, "lines": {}, "highlight": []}
    if n < 2:
        return panel
    x, lower, upper = difference_band(n, prob)
    panel |= {"x": x, "lower": lower, "upper": upper}
    panel["lines"] = {e: ecdf_difference(p, x) for e, p in pits.items()}
    deviation = {e: np.nanmax(np.abs(d)) for e, d in panel["lines"].items()}
    panel["highlight"] = sorted(deviation, key=deviation.get, reverse=True)[:highlight]
    return panel


def _coverage_panel(rows: pd.DataFrame, title: str) -> dict:
    """Coverage of the central intervals of each estimand group's parameters in ``rows``."""
    from sbc.results.calibration import coverage_curve, estimand_group

    params = rows[rows["kind"] == "estimand"]
    curves = {
        group: coverage_curve(g)
        for group, g in params.groupby(params["estimand"].map(estimand_group), sort=False)
    }
    return {"title": title, "curves": curves}


def strata_panels(
    results: pd.DataFrame,
    model: str,
    statistic: str,
    k: int = STRATA,
    highlight: int = 4,
    prob: float = 0.99,
) -> list[dict]:
    """Figure data for one model and one data statistic: one ECDF and coverage panel per stratum.

    Returns
    -------
    list of dict
        Per stratum: ``ecdf`` (``x``, the ``lower``/``upper`` simultaneous ``prob`` band and
        one ECDF-difference curve per quantity under ``lines``, the ``highlight`` quantities
        that stray furthest named in ``highlight``) and ``coverage`` (per estimand group the
        :func:`sbc.results.calibration.coverage_curve` of its parameters in that stratum).
    """
    strata = simulation_strata(results, k)[statistic]
    values = results.drop_duplicates("simulation").set_index("simulation")
    ranges = stratum_ranges(
        values[f"{STATISTIC_PREFIX}{statistic}"].to_numpy(float), strata.to_numpy(), k
    )
    mine = ok_fits(results[results["model"] == model])
    labels = strata.reindex(mine["simulation"]).to_numpy()
    panels = []
    for s in range(k):
        rows = mine[labels == s]
        title = f"{statistic} {s + 1}/{k}: {ranges[s, 0]:.3g}..{ranges[s, 1]:.3g}"
        panels.append(
            {
                "ecdf": _ecdf_panel(rows, title, highlight, prob),
                "coverage": _coverage_panel(rows, title),
            }
        )
    return panels


def health_panels(
    results: pd.DataFrame, model: str, highlight: int = 4, prob: float = 0.99
) -> list[dict]:
    """Figure data for one model split by sampler health: all, healthy and unhealthy fits."""
    mine = results[results["model"] == model]
    panels = []
    for subset, rows in health_subsets(mine).items():
        fits = rows["simulation"].nunique()
        title = f"{subset} fits ({fits})"
        panels.append(
            {
                "ecdf": _ecdf_panel(rows, title, highlight, prob),
                "coverage": _coverage_panel(rows, title),
            }
        )
    return panels
