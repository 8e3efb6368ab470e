"""Fit every model to one simulated data set and turn the draws into tidy result rows.

The per-worker cache of compiled models (:data:`_COMPILED`) lives at module level here, so
each joblib/loky worker compiles a model once and refits it on every simulation it is given.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sbc import seeding
from sbc.backends import Fitter, Sampling
from sbc.scenario import Model, Scenario, Simulation
from sbc.stats.mcmc import rhat_and_ess_bulk
from sbc.stats.posterior import (
    QUANTILES,
    diagnostics_summary,
    distinct_quantities,
    quantile_column,
    summarize,
)
from sbc.stats.ranks import fractional_rank, rank_statistic, thin, thinning_factor

COLUMNS: tuple[str, ...] = (
    "simulation",
    "model",
    "estimand",
    "true_value",
    "rank",
    "max_rank",
    "pit",
    "thin",
    "post_mean",
    "post_sd",
    *(quantile_column(q) for q in QUANTILES),
    "divergences",
    "n_draws",
    "max_rhat",
    "min_ess_bulk",
    "fit_seconds",
    "error",
    "warnings",
)
"""Columns of the results table, one row per (simulation, model, estimand)."""

TIMING_COLUMNS: tuple[str, ...] = ("fit_seconds",)
"""Columns that measure wall time and so differ between otherwise identical runs."""

_COMPILED: dict[tuple[Any, ...], Fitter] = {}
"""Per-process cache of compiled models, keyed by scenario, settings and model name."""


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one simulation (small and picklable).

    Parameters
    ----------
    scenario : str
        Scenario name, resolved in the worker with :func:`scenarios.get`.
    settings : tuple of (str, value)
        The scenario's resolved settings.
    models : tuple of str
        Names of the models to fit.
    simulation : int
        Simulation index.
    seed : int
        Run seed.
    sampling : Sampling
        Sampler settings.
    thin : int or None
        Fixed thinning factor, or ``None`` for one from the effective sample size.
    """

    scenario: str
    settings: tuple[tuple[str, Any], ...]
    models: tuple[str, ...]
    simulation: int
    seed: int
    sampling: Sampling
    thin: int | None = None


def compiled(scenario: Scenario, settings: Mapping[str, Any], model: Model, design: Any) -> Fitter:
    """Return the compiled ``model`` for this process, compiling it on first use."""
    key = (scenario.name, tuple(sorted(settings.items())), model.name)
    if key not in _COMPILED:
        example = scenario.simulate(design, seeding.example_rng()).data
        _COMPILED[key] = model.backend.compile(design, example)
    return _COMPILED[key]


@dataclass(frozen=True)
class Prepared:
    """One simulated data set with the scenario context every model's fit needs."""

    scenario: Scenario
    settings: Mapping[str, Any]
    design: Any
    estimands: tuple[str, ...]
    simulation: Simulation


def run_task(task: Task) -> pd.DataFrame:
    """Simulate data set ``task.simulation`` and fit every model to it.

    Parameters
    ----------
    task : Task
        The simulation to run and the models to fit.

    Returns
    -------
    pandas.DataFrame
        One row per (model, estimand) with the columns in :data:`COLUMNS`. A model whose
        compilation or fit raised gets rows with the error text and no statistics.
    """
    from scenarios import get

    scenario = get(task.scenario)
    settings = dict(task.settings)
    design = scenario.design(settings)
    prepared = Prepared(
        scenario=scenario,
        settings=settings,
        design=design,
        estimands=scenario.estimands(design),
        simulation=scenario.simulate(design, seeding.data_rng(task.seed, task.simulation)),
    )
    frames = [fit_model(prepared, scenario.model(name), task) for name in task.models]
    return pd.concat(frames, ignore_index=True)


def fit_model(prepared: Prepared, model: Model, task: Task) -> pd.DataFrame:
    """Fit one model to one data set; capture its warnings and, if it raises, its error."""
    rng = seeding.model_rng(task.seed, task.simulation, model.name)
    sampler_seed = int(rng.integers(2**32))
    truth = [float(prepared.simulation.truth[e]) for e in prepared.estimands]
    base = {
        "simulation": task.simulation,
        "model": model.name,
        "estimand": list(prepared.estimands),
        "true_value": truth,
    }
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter = compiled(prepared.scenario, prepared.settings, model, prepared.design)
            start = time.perf_counter()
            posterior = fitter.fit(prepared.simulation.data, sampler_seed, task.sampling)
            seconds = time.perf_counter() - start
            derived = model.estimands(posterior.draws, prepared.design)
            stats = _statistics(derived, posterior.draws, truth, prepared.estimands, task.thin, rng)
        except Exception as exc:
            text = "".join(traceback.format_exception_only(exc)).strip()
            return _frame(
                {
                    **base,
                    "fit_seconds": time.perf_counter() - start,
                    "error": text,
                    "warnings": _warning_text(caught),
                }
            )
    return _frame(
        {
            **base,
            **stats,
            "divergences": posterior.divergences,
            "fit_seconds": seconds,
            "error": None,
            "warnings": _warning_text(caught),
        }
    )


def _statistics(
    derived: Mapping[str, np.ndarray],
    draws: Mapping[str, np.ndarray],
    truth: Sequence[float],
    estimands: Sequence[str],
    fixed_thin: int | None,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Ranks, summaries and diagnostics of one fit from its estimand and raw draws."""
    missing = [e for e in estimands if e not in derived]
    if missing:
        raise KeyError(f"the model yields no draws for estimand(s) {', '.join(missing)}")
    stacked = np.stack([np.asarray(derived[e], dtype=float) for e in estimands])  # (k, chain, draw)
    quantities = distinct_quantities(stacked, draws)
    rhat, ess = rhat_and_ess_bulk(quantities)
    k = len(estimands)
    factor = fixed_thin if fixed_thin is not None else thinning_factor(stacked, ess[:k])
    thinned = thin(stacked, factor)
    ranks = rank_statistic(np.asarray(truth), thinned, rng)
    max_rank = np.full(len(estimands), thinned.shape[-1])
    pooled = stacked.reshape(len(estimands), -1)
    return {
        "rank": ranks,
        "max_rank": max_rank,
        "pit": fractional_rank(ranks, max_rank, rng),
        "thin": factor,
        **summarize(pooled),
        "n_draws": pooled.shape[-1],
        **diagnostics_summary(rhat, ess),
    }


def _warning_text(caught: Sequence[warnings.WarningMessage]) -> str | None:
    """Distinct warning messages of one fit, one per line, or ``None``."""
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return "\n".join(messages) or None


def _frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """Build a result frame with every column of :data:`COLUMNS`, in order, typed."""
    frame = pd.DataFrame({name: columns.get(name) for name in COLUMNS})
    return frame.astype(_DTYPES)


_DTYPES: dict[str, str] = {
    "simulation": "int64",
    "model": "string",
    "estimand": "string",
    "rank": "Int64",
    "max_rank": "Int64",
    "thin": "Int64",
    "divergences": "Int64",
    "n_draws": "Int64",
    "error": "string",
    "warnings": "string",
    **{
        c: "float64"
        for c in (
            "true_value",
            "pit",
            "post_mean",
            "post_sd",
            "max_rhat",
            "min_ess_bulk",
            "fit_seconds",
            *(quantile_column(q) for q in QUANTILES),
        )
    },
}
