"""The Python interface: run SBC from a script or notebook, and load a finished run.

::

    import sbc

    run = sbc.run("heights", models=["complete", "none", "partial"], simulations=100, jobs=2)
    run                      # in Jupyter: the verdict table and the ECDF figures
    run.verdicts             # one row per model
    run = sbc.load("reports/heights")

Both give a :class:`~sbc.workflows.loaded.Run`: the folder's tables, its record, the report
and ArviZ data. :func:`run` calls the same workflow as ``sbc run``
(:func:`sbc.workflows.run.run_sbc`), so its folder holds the same files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sbc.backends import DEFAULTS, Sampling
from sbc.engine.spec import Execution, RunSpec
from sbc.workflows.loaded import Run, load

__all__ = ["Run", "load", "run"]


def run(
    scenario: Any,
    *,
    models: Sequence[str] | None = None,
    simulations: int = 200,
    out: str | os.PathLike[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    sampling: Sampling | None = None,
    thin: int | None = None,
    test_quantities: bool = True,
    prediction: bool = True,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    fit_timeout: float | None = None,
    max_worker_memory: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    posterior: str | bool | None = None,
    reference_draws: int | None = None,
    strata: int | None = None,
) -> Run:
    """Run (or resume) SBC of a scenario's models and return the finished run.

    Parameters
    ----------
    scenario : str, Scenario or module
        A registered name (``"heights"``), a scenario file or ``module:OBJECT``, a
        :class:`~sbc.scenario.Scenario` object or a module defining ``SCENARIO``.
    models : sequence of str, optional
        Models to check (default: the scenario's models, mutants left out).
    simulations : int
        Number of simulated data sets.
    out : path, optional
        The run folder (default ``reports/<scenario>``, ``-posterior`` appended for
        posterior SBC). A folder holding this run already is resumed.
    settings : mapping, optional
        Scenario settings that differ from the defaults.
    seed : int
        Run seed: the same seed gives the same results whatever ``jobs`` is.
    sampling : Sampling, optional
        Sampler settings (unset fields: each model's own, else the defaults).
    thin : int, optional
        Fixed thinning factor (default: from each fit's ESS).
    test_quantities : bool
        Also rank the scenario's test quantities (log-likelihood ...).
    prediction : bool
        Also store each fit's held-out and PSIS-LOO predictive accuracy.
    jobs : int
        Worker processes (1: in this process).
    backend, scheduler, fit_timeout, max_worker_memory
        As :class:`~sbc.engine.spec.Execution` (``backend="dask"`` with a scheduler
        address runs on a Dask cluster).
    progress : bool
        Show a progress bar (in a notebook too).
    overwrite : bool
        Start the folder afresh.
    posterior : str or bool, optional
        Posterior SBC: ``True`` for the scenario's reference model, or its name.
    reference_draws : int, optional
        Posterior SBC: draws per chain (4 chains) of the reference fit (default 1000).
    strata : int, optional
        Equal-count strata of each data statistic (default: tertiles).

    Returns
    -------
    Run

    Raises
    ------
    sbc.errors.SettingError
        For bad input (one line naming the problem).
    """
    from sbc.workflows.run import run_sbc

    spec = RunSpec.build(
        scenario,
        settings=settings,
        models=models,
        simulations=simulations,
        seed=seed,
        sampling=sampling,
        thin=thin,
        test_quantities=test_quantities,
        prediction=prediction,
    )
    execution = Execution(
        jobs=jobs,
        backend=backend,
        scheduler=scheduler,
        fit_timeout=fit_timeout,
        max_worker_memory=max_worker_memory,
        progress=progress,
    )
    parameters = None
    if posterior:
        from sbc.workflows import posterior as posterior_sbc

        name = posterior if isinstance(posterior, str) else None
        name = name or posterior_sbc.default_reference(spec.scenario)
        reference = posterior_sbc.Reference(
            name, Sampling(chains=4, draws=reference_draws or DEFAULTS.draws)
        )
        parameters = posterior_sbc.parameters(spec, reference)
    folder = (
        Path(out)
        if out is not None
        else Path("reports") / (spec.name + ("-posterior" if parameters else ""))
    )
    run_sbc(spec, folder, execution, overwrite=overwrite, strata=strata, parameters=parameters)
    return load(folder)
