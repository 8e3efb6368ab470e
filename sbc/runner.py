"""Run many simulations in parallel with joblib and store each as it finishes."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd
import pyarrow as pa
from joblib import Parallel, delayed, parallel_config
from tqdm import tqdm

from sbc import posterior_sbc
from sbc.backends import Sampling
from sbc.checks import display, one_line
from sbc.failfast import FIRST_FITS, FailureWatch, ModelFailure
from sbc.fitting import Task
from sbc.posterior_sbc import Reference
from sbc.scenario import Scenario, SettingError
from sbc.store import RunStore, versions
from sbc.worker import Job, work

DEFAULT_SAMPLING = Sampling()

BACKENDS: tuple[str, ...] = ("loky", "dask")
"""Where simulations run: local worker processes (loky) or an existing Dask cluster."""


class RunError(RuntimeError):
    """The run stopped for a reason outside the scenario (its Dask workers kept dying)."""


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
    fit_timeout: float | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    overwrite: bool = False,
    posterior: Reference | None = None,
) -> pd.DataFrame:
    """Run (or resume) an SBC run and return its results table.

    Simulations already stored in ``out`` are not recomputed; each new one is written as
    soon as it finishes. Because every simulation draws from its own seed stream, the table
    is the same whatever ``jobs`` or ``backend`` is and however often the run was
    interrupted.

    Parameters
    ----------
    scenario : Scenario
        The scenario; workers resolve it again from ``scenario.name`` with
        :func:`scenarios.get` (a registered name, a file path or ``module:object``).
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
        Parallel worker processes (loky); ignored by the dask backend, which uses the
        cluster's workers.
    progress : bool
        Show a progress bar on standard error.
    test_quantities : bool
        Also rank the scenario's test quantities (log-likelihood, ...).
    fit_timeout : float or None
        Stop a fit that runs longer than this many seconds (compilation excluded) and record
        it as that model's error for that simulation. Needs the fit to run in a process's
        main thread (loky workers or ``jobs=1``; not the dask backend).
    backend : {"loky", "dask"}
        Local worker processes, or the Dask cluster at ``scheduler``.
    scheduler : str or None
        Address of the Dask scheduler (``tcp://host:port``), for ``backend="dask"``.
    overwrite : bool
        Delete sbc's files in ``out`` first and start afresh.
    posterior : Reference, optional
        Posterior SBC instead of prior SBC: the parameters of the simulations are draws of
        this reference model's posterior given the scenario's real data, and the models
        are refitted on the real data plus data simulated from them
        (:mod:`sbc.posterior_sbc`). The run folder records the mode.

    Returns
    -------
    pandas.DataFrame
        One row per (simulation, model, estimand); see :data:`sbc.fitting.COLUMNS`.
    """
    if backend not in BACKENDS:
        raise SettingError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    if backend == "dask" and not scheduler:
        raise SettingError("the dask backend needs a scheduler address (--scheduler)")
    if backend == "dask" and fit_timeout is not None:
        raise SettingError("--fit-timeout needs local workers; it is not available with dask")
    store = RunStore(out)
    if overwrite:
        store.clear()
    identity = {
        "scenario": scenario.name,
        "settings": settings,
        "models": list(models),
        "seed": seed,
        "sampling": asdict(sampling),
        "model_sampling": {m: asdict(sampling.resolve(scenario.model(m).sampling)) for m in models},
        "thin": thin if thin is not None else "ess",
        "test_quantities": test_quantities,
    }
    if posterior is not None:  # prior runs keep the identity of runs made before the mode
        identity |= {"mode": "posterior", "reference": posterior.identity()}
    extra = {
        "name": display(scenario),  # the declared name, for titles (identity holds the reference)
        "simulations": simulations,
        "versions": versions(),
        "fit_timeout": fit_timeout,
        "model_notes": {m: n for m in models if (n := scenario.model(m).note)},
    }
    store.open(identity, extra)
    store.annotate("data_statistics", {s.name: s.description for s in scenario.data_statistics})
    pool = _reference_pool(store, scenario, settings, posterior, seed, simulations)
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
            posterior_sbc.draw(pool, i) if pool is not None else None,
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
        desc=display(scenario),
    )
    watch = FailureWatch(display(scenario), max(1, min(FIRST_FITS, len(tasks))))
    results = _execute(tasks, jobs, fit_timeout, backend, scheduler)
    fresh: dict[int, pa.Table] = {}  # this run's parts, kept so collect need not reread
    try:
        for rows in results:
            store.write_part(rows)
            fresh[rows["simulation"][0].as_py()] = rows
            bar.update()
            watch.check(rows)
    except ModelFailure as failure:
        raise _stopped(failure, store) from None
    finally:
        _close(results)
        bar.close()
        store.add_wall_seconds(time.perf_counter() - start)
    return store.collect(simulations, fresh)


def _stopped(failure: ModelFailure, store: RunStore) -> ModelFailure:
    """The failure, its message ending with what is kept; parts it made useless removed.

    The parts of the simulations where the failed model raised are removed, so that the
    same command, once the model is fixed, computes them again; every other finished
    simulation stays.
    """
    for simulation in failure.simulations:
        store.part_file(simulation).unlink(missing_ok=True)
    kept = len(store.finished())
    return ModelFailure(
        f"{failure}; run stopped, {kept} finished simulations kept in {store.out}",
        failure.model,
        failure.simulations,
    )


def release_workers(wait: bool = False) -> None:
    """Stop this process's idle loky workers (joblib's reusable executor).

    By default at once, without waiting for their teardown: for the end of an ``sbc``
    command, when every result is collected, since waiting for the workers to unload PyMC
    and numba delayed the exit of ``sbc run heights -n 1 --jobs 2`` by 1.4 s (11.6 s ->
    10.2 s). ``wait=True`` lets them exit cleanly and waits (a benchmark that then reads
    its children's resource usage). Not for library use, where later calls reuse the
    workers and the models compiled in them.
    """
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)  # loky's one reusable executor
    if executor is not None:
        executor.shutdown(wait=wait, kill_workers=not wait)


def _close(results: Iterator[pa.Table]) -> None:
    """Stop the workers still running (joblib aborts a closed generator's pool)."""
    close = getattr(results, "close", None)
    if close is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joblib warns that unfinished tasks were cancelled
            close()


def _reference_pool(
    store: RunStore,
    scenario: Scenario,
    settings: dict[str, Any],
    posterior: Reference | None,
    seed: int,
    simulations: int,
) -> posterior_sbc.Pool | None:
    """Posterior SBC's reference draws (fitted once, kept in the run folder), or ``None``."""
    if posterior is None:
        return None
    pool, info = posterior_sbc.load_or_fit(store.out, scenario, settings, posterior, seed)
    store.annotate("reference_fit", info)
    if simulations > info["size"]:
        raise SettingError(
            f"the reference posterior ({info['chains']} chains x {info['draws']} draws, "
            f"thinned by {info['thin']}) holds {info['size']} roughly independent draws: "
            f"run at most {info['size']} simulations, or more --reference-draws in a new folder"
        )
    return pool


def _execute(
    tasks: list[Task],
    jobs: int,
    fit_timeout: float | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Iterator[pa.Table]:
    """Result rows of ``tasks``, one table per simulation, in the order they finish."""
    if not tasks:
        return iter(())
    jobs_ = [Job(task, fit_timeout) for task in tasks]
    if backend == "dask":
        return _execute_dask(jobs_, scheduler)
    if jobs == 1:
        return map(work, jobs_)
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered", batch_size=1)
    return parallel(delayed(work)(job) for job in jobs_)


def _execute_dask(jobs: list[Job], scheduler: str | None) -> Iterator[pa.Table]:
    """Run ``jobs`` on the Dask cluster at ``scheduler`` through joblib's dask backend."""
    try:
        from distributed import Client
    except ImportError:
        raise SettingError(
            "the dask backend needs the distributed package: pip install 'sbc-testbed[dask]'"
        ) from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SettingError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from None
    from distributed import KilledWorker

    with client, parallel_config(backend="dask"):
        parallel = Parallel(n_jobs=-1, return_as="generator_unordered", batch_size=1)
        try:
            yield from parallel(delayed(work)(job) for job in jobs)
        except (KilledWorker, OSError) as exc:
            raise RunError(
                f"the Dask cluster at {scheduler} failed ({one_line(exc)}); finished "
                "simulations are saved: run the same command again to resume"
            ) from None
