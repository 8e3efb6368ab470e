"""One simulation: simulate a data set, fit every model to it, rank, summarise, as result rows.

This is where a task meets the models: :func:`compiled` compiles a model once per process
(the per-worker cache :data:`_COMPILED` lives at module level here, so each worker process
compiles a model once and refits it on every simulation it is given), :func:`run_task`
simulates the data set and :func:`fit_model` fits one model and turns its draws into the
rows of :mod:`sbc.results.schema`.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sbc import registry, seeding
from sbc.backends import Fitter, Sampling
from sbc.engine.predict import Heldout, differences, heldout, pointwise_loglik, predict
from sbc.engine.simulate import example, replicate
from sbc.results.schema import (
    COMPILE_FAILED,
    DIFF_PREFIX,
    DIFF_SE_PREFIX,
    concat_rows,
    result_rows,
)
from sbc.scenario import Model, Process, Scenario, Simulation
from sbc.stats.mcmc import diagnose_sorted
from sbc.stats.posterior import diagnostics_summary, summarize
from sbc.stats.ranks import fractional_rank, rank_statistic, thin, thinning_factor

_COMPILED: dict[tuple[Any, ...], Fitter] = {}
"""Per-process cache of compiled models, keyed by scenario, settings and model name."""


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one simulation (small and picklable).

    Parameters
    ----------
    scenario : str
        Scenario reference, resolved in the worker with :func:`sbc.registry.get`.
    settings : tuple of (str, value)
        The scenario's resolved settings.
    models : tuple of str
        Names of the models to fit.
    simulation : int
        Simulation index.
    seed : int
        Run seed.
    sampling : Sampling
        Sampler settings of the run (unset fields: each model's own, else the defaults).
    thin : int or None
        Fixed thinning factor, or ``None`` for one from the effective sample size.
    test_quantities : bool
        Also rank the scenario's test quantities (log-likelihood ...).
    reference : mapping of str to ndarray, optional
        Posterior SBC: the parameters of this simulation, one draw of the reference
        posterior given the real data (:mod:`sbc.workflows.posterior`). The data set is then the
        real data joined with data simulated from them, fitted on the augmented design.
    prediction : bool
        Draw held-out replicates and store each fit's prediction columns.
    """

    scenario: str
    settings: tuple[tuple[str, Any], ...]
    models: tuple[str, ...]
    simulation: int
    seed: int
    sampling: Sampling
    thin: int | None = None
    test_quantities: bool = True
    reference: Mapping[str, np.ndarray] | None = None
    prediction: bool = True


def compiled(
    scenario: Scenario,
    settings: Mapping[str, Any],
    model: Model,
    design: Any,
    posterior: bool = False,
) -> Fitter:
    """Return the compiled ``model`` for this process, compiling it on first use.

    With ``posterior``, ``design`` is the augmented design of posterior SBC and the model is
    compiled against the real data joined with itself (same shapes as every refit).
    """
    key = (scenario.name, tuple(sorted(settings.items())), model.name, posterior)
    if key not in _COMPILED:
        if posterior:
            data = example(scenario, scenario.design(dict(settings)))
        else:
            data = scenario.simulate(design, seeding.example_rng()).data
        _COMPILED[key] = model.backend.compile(design, data)
    return _COMPILED[key]


def prepare_design(scenario: Scenario, task: Task) -> tuple[Any, Simulation, Heldout | None]:
    """The design the models are fitted on, the data set of ``task``, its held-out replicates.

    The replicates are ``None`` without prediction, for posterior SBC, a simulator that is not a
    :class:`~sbc.scenario.Process`, or a scenario without a likelihood to score them.
    """
    design = scenario.design(dict(task.settings))
    rng = seeding.data_rng(task.seed, task.simulation)
    if task.reference is not None:
        return *replicate(scenario, design, task.reference, rng), None
    process = scenario.simulate
    if not task.prediction or not isinstance(process, Process) or scenario.likelihood is None:
        return design, process(design, rng), None
    params = process.prior(design, rng)  # the same stream as process(design, rng)
    simulation = process.generate(design, params, rng)
    held = heldout(process, design, params, seeding.heldout_rng(task.seed, task.simulation))
    return design, simulation, held


@dataclass(frozen=True)
class Prepared:
    """One simulated data set with the scenario context every model's fit needs.

    ``truth`` holds the true value of every estimand and, when ``with_quantities``, of
    every test quantity (evaluated at the true parameters and this data set).
    """

    scenario: Scenario
    settings: Mapping[str, Any]
    design: Any
    estimands: tuple[str, ...]
    simulation: Simulation
    truth: Mapping[str, float]
    with_quantities: bool
    statistics: Mapping[str, float]
    posterior: bool = False
    heldout: Heldout | None = None

    @property
    def names(self) -> list[str]:
        """Estimands, then test quantities: the rows of each fit."""
        return list(self.truth)

    def batch(self, derived: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The estimand draws of all chains as one batch of ``chain x draw`` values."""
        return {e: np.reshape(derived[e], -1) for e in self.estimands}

    def pointwise(self, derived: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The likelihood of each observation at every draw, ``(chain x draw, n)``.

        Computed once for the test quantities and the prediction, which both need it
        (``None`` without test quantities or a likelihood: the prediction computes its own).
        """
        if not self.with_quantities or self.scenario.likelihood is None:
            return None
        data, design = self.simulation.data, self.design
        return pointwise_loglik(self.scenario, self.batch(derived), data, design)

    def test_quantities(
        self, derived: Mapping[str, np.ndarray], pointwise: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Test quantities at every posterior draw, ``(chain, draw)`` each.

        The draws of all chains go to the scenario as one batch of ``chain x draw`` values
        (a one-dimensional batch, as for one chain): one call instead of one per chain.
        ``pointwise`` is :meth:`pointwise` when already computed.
        """
        if not self.with_quantities:
            return {}
        shape = np.shape(derived[self.estimands[0]])
        data, design = self.simulation.data, self.design
        values = self.scenario.quantities(self.batch(derived), data, design, pointwise)
        return {name: np.reshape(value, shape) for name, value in values.items()}


def run_task(task: Task) -> pa.Table:
    """Simulate data set ``task.simulation`` and fit every model to it.

    Parameters
    ----------
    task : Task
        The simulation to run and the models to fit.

    Returns
    -------
    pyarrow.Table
        One row per (model, estimand) with the columns of
        :data:`sbc.results.schema.COLUMNS` (see :func:`~sbc.results.schema.result_rows`;
        ``.to_pandas()`` gives the results-table rows). A model whose compilation or fit
        raised gets rows with the error text and no statistics. Every model is compiled
        first; if one cannot be, only its rows are returned (``error`` starting with
        :data:`COMPILE_FAILED`) and no model is fitted.
    """
    scenario = registry.get(task.scenario)
    settings = dict(task.settings)
    design, simulation, held = prepare_design(scenario, task)
    estimands = scenario.estimands(design)
    truth = {e: float(simulation.truth[e]) for e in estimands}
    if task.test_quantities:
        at_truth = {e: np.asarray(v) for e, v in truth.items()}
        truth |= {
            name: float(value)
            for name, value in scenario.quantities(at_truth, simulation.data, design).items()
        }
    prepared = Prepared(
        scenario,
        settings,
        design,
        estimands,
        simulation,
        truth,
        task.test_quantities,
        scenario.statistics(simulation.data, design),
        task.reference is not None,
        held,
    )
    broken = uncompilable(scenario, settings, design, task.models, prepared.posterior)
    names = task.models if broken is None else (broken,)  # the run stops on a broken model
    fits = {name: fit_model(prepared, registry.model(scenario, name), task) for name in names}
    pointwise = {name: loo for name, (_, loo) in fits.items()}
    if len(fits) < 2 or all(v is None for v in pointwise.values()):  # nothing to compare
        return concat_rows([table for table, _ in fits.values()])
    diffs = differences(pointwise)
    return concat_rows(
        [_with_differences(t, diffs.get(n, {}), list(fits)) for n, (t, _) in fits.items()]
    )


def _with_differences(table: pa.Table, mine: Mapping[str, float], models: list[str]) -> pa.Table:
    """``table`` with the elpd difference to every model of the simulation and its SE.

    Every model's rows get the same columns in the same order, ``elpd_diff:<m>`` and
    ``elpd_diff_se:<m>`` for each model ``m`` of the task (NaN for the model itself and
    where either fit has no LOO), so that tables join the same way whichever fits failed;
    a simulation of one model, or without LOO values (no likelihood, posterior SBC), has none.
    ``mine`` holds this model's differences (:func:`sbc.engine.predict.differences`).
    """
    for other in models:
        for prefix in (DIFF_PREFIX, DIFF_SE_PREFIX):
            value = mine.get(f"{prefix}{other}", np.nan)
            table = table.append_column(
                f"{prefix}{other}", pa.array(np.full(table.num_rows, value, dtype=float))
            )
    return table


def uncompilable(
    scenario: Scenario,
    settings: Mapping[str, Any],
    design: Any,
    names: Sequence[str],
    posterior: bool = False,
) -> str | None:
    """Compile every model named (once per process); the first that cannot be, or ``None``.

    Compiling every model before fitting any lets a model that cannot be compiled stop the
    run (:mod:`sbc.engine.failfast`) without waiting for the other models' fits; fitting it then
    compiles it again and records the error.
    """
    for name in names:
        try:
            compiled(scenario, settings, registry.model(scenario, name), design, posterior)
        except Exception:
            return name
    return None


def fit_model(prepared: Prepared, model: Model, task: Task) -> tuple[pa.Table, np.ndarray | None]:
    """Fit one model to one data set; capture its warnings and, if it raises, its error.

    Returns the fit's result rows and its pointwise leave-one-out log predictive densities
    (``None`` when it has none), from which :func:`run_task` takes differences between
    models.
    """
    rng = seeding.model_rng(task.seed, task.simulation, model.name)
    sampler_seed = int(rng.integers(2**32))
    names = prepared.names
    base = {
        "simulation": task.simulation,
        "model": model.name,
        "estimand": names,
        "kind": ["estimand" if n in prepared.estimands else "test_quantity" for n in names],
        "true_value": [prepared.truth[n] for n in names],
    }
    start = time.perf_counter()
    fitter = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter = compiled(
                prepared.scenario, prepared.settings, model, prepared.design, prepared.posterior
            )
            start = time.perf_counter()
            sampling = task.sampling.resolve(model.sampling)
            posterior = fitter.fit(prepared.simulation.data, sampler_seed, sampling)
            seconds = time.perf_counter() - start
            derived = dict(model.estimands(posterior.draws, prepared.design))
            missing = [e for e in prepared.estimands if e not in derived]
            if missing:
                raise KeyError(f"model {model.name} yields no draws for {', '.join(missing)}")
            fitted = prepared.pointwise(derived)  # for test quantities and prediction
            derived |= prepared.test_quantities(derived, fitted)
            stats = _statistics(derived, prepared, task.thin, rng, posterior.independent)
            prediction, loo = _prediction(prepared, model, task, posterior.draws, derived, fitted)
        except Exception as exc:
            text = "".join(traceback.format_exception_only(exc)).strip()
            if fitter is None:
                text = COMPILE_FAILED + text
            return result_rows(
                {
                    **base,
                    "fit_seconds": time.perf_counter() - start,
                    "error": text,
                    "warnings": _warning_text(caught),
                },
                prepared.statistics,
            ), None
    return result_rows(
        {
            **base,
            **stats,
            **prediction,
            "divergences": posterior.divergences,
            "grad_evals": posterior.grad_evals,
            "tree_depth": posterior.tree_depth,
            **posterior.diagnostics,
            "fit_seconds": seconds,
            "error": None,
            "warnings": _warning_text(caught),
        },
        prepared.statistics,
    ), loo


def _prediction(
    prepared: Prepared,
    model: Model,
    task: Task,
    draws: Mapping[str, np.ndarray],
    derived: Mapping[str, np.ndarray],
    fitted: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray | None]:
    """The fit's prediction columns (:func:`sbc.engine.predict.predict`).

    ``fitted`` is the likelihood at every draw when the test quantities computed it
    (:meth:`Prepared.pointwise`). Posterior SBC fits the real data joined with new data, so
    it has none (nor a run without prediction, :attr:`Task.prediction`). A prediction
    that raises (a model's ``new_groups`` that does not fit its draws ...) costs only these
    columns: the error is kept as a warning of the fit, whose ranks stand.
    """
    if prepared.posterior or not task.prediction:
        return {}, None
    try:
        return predict(
            prepared.scenario,
            prepared.design,
            prepared.simulation.data,
            prepared.heldout,
            model,
            draws,
            {e: derived[e] for e in prepared.estimands},
            seeding.prediction_rng(task.seed, task.simulation, model.name),
            fitted,
        )
    except Exception as exc:
        text = "".join(traceback.format_exception_only(exc)).strip()
        warnings.warn(f"prediction failed: {text}", RuntimeWarning, stacklevel=1)
        return {}, None


def _statistics(
    derived: Mapping[str, np.ndarray],
    prepared: Prepared,
    fixed_thin: int | None,
    rng: np.random.Generator,
    independent: bool = False,
) -> dict[str, Any]:
    """Ranks, summaries and diagnostics of one fit.

    ``derived`` holds ``(chain, draw)`` draws of every estimand and test quantity. Each
    quantity gets its own R-hat and bulk and tail ESS; the thinning factor and the fit's
    health (largest R-hat, smallest ESS) come from the estimands and apply to every row.
    ``independent`` draws (an approximation's) need neither: no R-hat or ESS, no thinning
    unless a fixed factor is asked for.
    """
    names = prepared.names
    stacked = np.stack([np.asarray(derived[n], dtype=float) for n in names])  # (k, chain, draw)
    k = len(prepared.estimands)
    ordered = None  # the pooled draws sorted, when diagnose_sorted's sort gives them
    if independent:
        rhat = ess_bulk = ess_tail = np.full(len(names), np.nan)
        factor = fixed_thin or 1
    else:
        rhat, ess_bulk, ess_tail, ordered = diagnose_sorted(stacked)
        factor = (
            fixed_thin
            if fixed_thin is not None
            else thinning_factor(stacked[:k], ess_bulk[:k], ess_tail[:k])
        )
    thinned = thin(stacked, factor)
    ranks = rank_statistic(np.array([prepared.truth[n] for n in names]), thinned, rng)
    max_rank = np.full(len(names), thinned.shape[-1])
    pooled = stacked.reshape(len(names), -1)
    return {
        "rank": ranks,
        "max_rank": max_rank,
        "pit": fractional_rank(ranks, max_rank, rng),
        "thin": factor,
        **summarize(pooled, ordered),
        "rhat": rhat,
        "ess_bulk": ess_bulk,
        "ess_tail": ess_tail,
        "n_draws": pooled.shape[-1],
        **diagnostics_summary(rhat[:k], ess_bulk[:k], ess_tail[:k]),
    }


def _warning_text(caught: Sequence[warnings.WarningMessage]) -> str | None:
    """Distinct warning messages of one fit, one per line, or ``None``."""
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return "\n".join(messages) or None
