"""Held-out prediction of one fit: the data a user never has, and what LOO says of it.

Each simulation draws, besides the data the models are fitted to, :data:`REPLICATES` held-out
replicates from the same true parameters and design (new observations in the same groups)
and, where the scenario's process can draw new groups from the population
(:attr:`sbc.scenario.Process.new_groups`), as many replicates of new groups. Each fit then
gets the per-fit columns of :data:`sbc.results.schema.PREDICTION_COLUMNS`: the in-sample,
held-out and leave-one-out (PSIS-LOO, and leave-one-group-out) log predictive densities,
all computed from the scenario's :class:`~sbc.scenario.Likelihood`, which is written in terms of the
estimands and so serves every model alike.

Held-out elpds are averages over the replicates, each replicate the size of the data: an
estimate of the expected log predictive density of a new data set of this design, with the
replicates' noise divided by :data:`REPLICATES`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sbc.errors import one_line
from sbc.results.schema import DIFF_PREFIX, DIFF_SE_PREFIX, PREDICTION_COLUMNS
from sbc.results.schema import HELDOUT_REPLICATES as REPLICATES
from sbc.scenario import Model, Process, Scenario
from sbc.stats.predictive import group_sums, lpd, psis_loo, total_se


@dataclass(frozen=True)
class Heldout:
    """Held-out data sets of one simulation, from its true parameters.

    Parameters
    ----------
    same_groups : tuple of mapping
        Replicates of the data: new observations of the same groups.
    new_groups : tuple of mapping
        Replicates of data of new groups from the same population (empty when the scenario
        cannot draw new groups).
    error : str, optional
        Why the replicates could not be drawn (then both are empty): every fit of the
        simulation keeps it as a warning, and its held-out columns are missing.
    """

    same_groups: tuple[Mapping[str, np.ndarray], ...]
    new_groups: tuple[Mapping[str, np.ndarray], ...] = ()
    error: str | None = None


def heldout(
    process: Process, design: Any, params: Mapping[str, Any], rng: np.random.Generator
) -> Heldout:
    """Draw the held-out replicates of one simulation from its true ``params``.

    A simulator that raises here costs the held-out columns only (:attr:`Heldout.error`),
    never the simulation's fits.
    """
    try:
        same = tuple(process.generate(design, params, rng).data for _ in range(REPLICATES))
        if process.new_groups is None:
            return Heldout(same)
        new = tuple(
            process.generate(design, process.new_groups(design, params, rng), rng).data
            for _ in range(REPLICATES)
        )
    except Exception as exc:
        return Heldout((), (), f"held-out replicates failed: {one_line(exc)}")
    return Heldout(same, new)


def pointwise_loglik(
    scenario: Scenario, params: Mapping[str, np.ndarray], data: Mapping[str, Any], design: Any
) -> np.ndarray:
    """Log-likelihood of each observation at each draw, ``(draw, n)``."""
    values = np.asarray(scenario.likelihood.pointwise(params, data, design), dtype=float)
    return values.reshape(-1, values.shape[-1])


def predict(
    scenario: Scenario,
    design: Any,
    data: Mapping[str, np.ndarray],
    held: Heldout | None,
    model: Model,
    draws: Mapping[str, np.ndarray],
    params: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    fitted: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray | None]:
    """Prediction columns of one fit, and its pointwise PSIS-LOO values.

    Parameters
    ----------
    scenario : Scenario
        The scenario (its :attr:`~sbc.scenario.Scenario.likelihood` is used).
    design : object
        The design the model was fitted on.
    data : mapping
        The fitted data set.
    held : Heldout or None
        The simulation's held-out replicates (``None``: no held-out columns).
    model : Model
        The fitted model (its :attr:`~sbc.scenario.Model.new_groups` predicts new groups).
    draws : mapping
        The model's own posterior draws.
    params : mapping
        Its estimand draws, ``(chain, draw)`` each.
    rng : numpy.random.Generator
        The fit's prediction stream (draws of new groups' parameters).
    fitted : ndarray of shape (draw, n), optional
        The likelihood of each fitted observation at every draw, when already computed
        (for the test quantities; the draws of all chains in the order of
        ``params[...].reshape(-1)``): not computed again.

    Returns
    -------
    columns : dict
        The :data:`PREDICTION_COLUMNS` (NaN where they do not apply; empty without a
        likelihood).
    pointwise : ndarray of shape (n,) or None
        Leave-one-out log predictive density of each observation, for differences between
        models fitted to the same data.
    """
    likelihood = scenario.likelihood
    if likelihood is None:
        return {}, None
    out = dict.fromkeys(PREDICTION_COLUMNS, np.nan)
    if fitted is None:
        fitted = pointwise_loglik(scenario, params, data, design)
    loo, khat = psis_loo(fitted)
    out["elpd_in"] = float(lpd(fitted).sum())
    out["elpd_loo"], out["elpd_loo_se"] = float(loo.sum()), total_se(loo)
    out["p_loo"] = out["elpd_in"] - out["elpd_loo"]
    out["pareto_k_max"] = float(np.max(khat))
    groups = likelihood.groups(design) if likelihood.groups is not None else None
    if groups is not None and len(groups[0]) > 1:
        logo, khat_logo = psis_loo(group_sums(fitted, groups[1], len(groups[0])))
        out["elpd_logo"], out["elpd_logo_se"] = float(logo.sum()), total_se(logo)
        out["pareto_k_max_logo"] = float(np.max(khat_logo))
    if held is not None and held.error:
        warnings.warn(held.error, RuntimeWarning, stacklevel=2)
    if held is not None and held.same_groups:
        held_lpd = [
            lpd(pointwise_loglik(scenario, params, d, design)).sum() for d in held.same_groups
        ]
        out["elpd_heldout"] = float(np.mean(held_lpd))
        if held.new_groups and model.new_groups is not None:
            try:  # a model's new_groups that does not fit its draws costs this column only
                out["elpd_heldout_groups"] = _new_groups_elpd(
                    scenario, design, held, model, draws, rng, groups
                )
            except Exception as exc:
                warnings.warn(f"new groups not predicted: {one_line(exc)}", RuntimeWarning, 2)
    if likelihood.mean is not None and likelihood.response:
        mean = np.asarray(likelihood.mean(params, design), dtype=float)
        predicted = mean.reshape(-1, mean.shape[-1]).mean(axis=0)
        out["rmse_in"] = _rmse(data[likelihood.response], predicted)
        if held is not None and held.same_groups:
            out["rmse_heldout"] = float(
                np.sqrt(
                    np.mean(
                        [_rmse(d[likelihood.response], predicted) ** 2 for d in held.same_groups]
                    )
                )
            )
    return out, loo


def _new_groups_elpd(
    scenario: Scenario,
    design: Any,
    held: Heldout,
    model: Model,
    draws: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    groups: tuple[list[str], np.ndarray] | None,
) -> float:
    """Held-out elpd of new groups: each group's observations predicted jointly.

    A new group's observations share its unknown parameters, so its predictive density is
    ``mean_s prod_i p(y_i | new group parameters drawn at posterior draw s)``, one
    Monte Carlo draw of the group's parameters per posterior draw. Without declared groups
    each observation is a group of its own (alberta, eight schools: one mean per school).
    """
    totals = []
    for data in held.new_groups:
        params = {
            k: np.asarray(v, dtype=float) for k, v in model.new_groups(draws, design, rng).items()
        }
        pointwise = pointwise_loglik(scenario, params, data, design)
        if groups is not None:
            pointwise = group_sums(pointwise, groups[1], len(groups[0]))
        totals.append(lpd(pointwise).sum())
    return float(np.mean(totals))


def _rmse(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean square error of point predictions."""
    return float(np.sqrt(np.mean((np.asarray(observed, dtype=float) - predicted) ** 2)))


def differences(pointwise: Mapping[str, np.ndarray | None]) -> dict[str, dict[str, float]]:
    """PSIS-LOO elpd differences between every two models fitted to the same data.

    Parameters
    ----------
    pointwise : mapping of str to ndarray or None
        Each model's pointwise leave-one-out values (``None``: the model has none).

    Returns
    -------
    dict
        ``{model: {"elpd_diff:<other>": elpd_loo(model) - elpd_loo(other),
        "elpd_diff_se:<other>": its standard error}}`` (the SE of the sum of pointwise
        differences, as ArviZ's ``compare``).
    """
    usable = {m: v for m, v in pointwise.items() if v is not None}
    out: dict[str, dict[str, float]] = {}
    for model, values in usable.items():
        out[model] = {}
        for other, theirs in usable.items():
            if other == model or theirs.shape != values.shape:
                continue
            diff = values - theirs
            out[model][f"{DIFF_PREFIX}{other}"] = float(diff.sum())
            out[model][f"{DIFF_SE_PREFIX}{other}"] = total_se(diff)
    return out
