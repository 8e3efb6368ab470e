"""Run many simulations in parallel with joblib and store each as it finishes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd
from joblib import Parallel, delayed
from tqdm import tqdm

from sbc.backends import Sampling
from sbc.fitting import Task, run_task
from sbc.scenario import Scenario
from sbc.store import RunStore, versions

DEFAULT_SAMPLING = Sampling()


def default_jobs() -> int:
    """Number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(
    scenario: Scenario,
    settings: dict[str, Any],
    models: Sequence[str],
    simulations: int,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    sampling: Sampling = DEFAULT_SAMPLING,
    thin: int | None = None,
    jobs: int = 1,
    progress: bool = False,
    test_quantities: bool = True,
) -> pd.DataFrame:
    """Run (or resume) an SBC run and return its results table.

    Simulations already stored in ``out`` are not recomputed; each new one is written as
    soon as it finishes. Because every simulation draws from its own seed stream, the table
    is the same whatever ``jobs`` is and however often the run was interrupted.

    Parameters
    ----------
    scenario : Scenario
        The scenario (must be registered: workers look it up by name).
    settings : dict
        Resolved scenario settings.
    models : sequence of str
        Models to fit.
    simulations : int
        Number of simulations (indices ``0..simulations-1``).
    out : path
        Output folder.
    seed : int
        Run seed.
    sampling : Sampling
        Sampler settings.
    thin : int or None
        Fixed thinning factor, or ``None`` to thin each fit by its effective sample size.
    jobs : int
        Parallel worker processes (loky).
    progress : bool
        Show a progress bar on standard error.
    test_quantities : bool
        Also rank the scenario's test quantities (log-likelihood, ...).

    Returns
    -------
    pandas.DataFrame
        One row per (simulation, model, estimand); see :data:`sbc.fitting.COLUMNS`.
    """
    store = RunStore(out)
    identity = {
        "scenario": scenario.name,
        "settings": settings,
        "models": list(models),
        "seed": seed,
        "sampling": asdict(sampling),
        "thin": thin if thin is not None else "ess",
        "test_quantities": test_quantities,
    }
    store.open(identity, {"simulations": simulations, "versions": versions()})
    done = store.finished()
    tasks = [
        Task(
            scenario.name,
            tuple(settings.items()),
            tuple(models),
            i,
            seed,
            sampling,
            thin,
            test_quantities,
        )
        for i in range(simulations)
        if i not in done
    ]
    start = time.perf_counter()
    bar = tqdm(
        total=simulations,
        initial=simulations - len(tasks),
        disable=not progress,
        file=sys.stderr,
        unit="sim",
        desc=scenario.name,
    )
    try:
        for frame in _execute(tasks, jobs):
            store.write_part(frame)
            bar.update()
    finally:
        bar.close()
        store.add_wall_seconds(time.perf_counter() - start)
    return store.collect(simulations)


def _execute(tasks: list[Task], jobs: int) -> Iterator[pd.DataFrame]:
    """Results of ``tasks`` in the order they finish."""
    if not tasks:
        return iter(())
    if jobs == 1:
        return map(run_task, tasks)
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered", batch_size=1)
    return parallel(delayed(run_task)(task) for task in tasks)
