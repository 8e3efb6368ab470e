"""What a worker runs for one simulation: the task, an optional fit timer, error rows.

:func:`work` never raises for a scenario's own errors: a simulation that cannot be simulated
becomes error rows, and a fit that overruns ``--fit-timeout`` is stopped by a timer and
recorded as that model's error for that simulation.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from sbc import registry
from sbc.engine.task import Task, run_task, uncompilable
from sbc.errors import one_line
from sbc.results.schema import SIMULATION_FAILED, concat_rows, result_rows
from sbc.stats import mcmc

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


@cache
def keep_freed_memory() -> bool:
    """Let this process's allocator keep freed memory for reuse (glibc only; once).

    Every fit allocates and frees the same few megabytes of NumPy temporaries (draws,
    ranks, autocovariances). By default glibc maps such blocks afresh and gives the top of
    the heap back to the system once more than twice the largest block it has unmapped is
    free, so each fit page-faults the same memory in again. Fixing the mmap threshold at
    32 MiB (glibc's own ceiling for it) and the trim threshold at 128 MiB keeps that memory
    mapped; a worker holds at most 128 MiB more than it uses.
    Measured on heights ``partial`` (150 fits, ``--jobs 1``): minor page faults per fit in
    the diagnostics 1160 -> 12, diagnostics 9.2 -> 6.3 ms a fit, test quantities 2.7 ->
    1.35 ms; the sampler is unchanged. Elsewhere (no glibc) it does nothing.

    Returns
    -------
    bool
        Whether the allocator was tuned.
    """
    return _mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and _mallopt(_M_TRIM_THRESHOLD, 128 * 2**20)


def _mallopt(parameter: int, value: int) -> bool:
    try:
        return bool(ctypes.CDLL(None).mallopt(parameter, value))  # the C library's symbols
    except (OSError, AttributeError):
        return False


@cache
def _threadpools() -> Any:
    """The BLAS and OpenMP pools loaded in this process (SciPy's own BLAS loaded first)."""
    import scipy.optimize  # noqa: F401  (its BLAS is a library of its own, loaded lazily)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> Any:
    """A context in which BLAS and OpenMP use one thread; the previous limits after it.

    Simulations run one per core, so BLAS threads only oversubscribe the cores, and
    OpenBLAS's threads spin while they wait: SciPy's L-BFGS-B, which calls BLAS on vectors
    of a few values, took 3 ms a call instead of 30 us (eight schools ``partial+laplace``:
    92 ms a fit against 2.5 ms with one thread, 2 workers on 2 cores). Entering the context
    costs about 15 us; a run in the user's own process gets its threads back after each
    simulation.
    """
    return _threadpools().limit(limits=1)


class FitTimeout(Exception):
    """A fit ran longer than the run's fit timeout (recorded as that fit's error)."""


@dataclass(frozen=True)
class Job:
    """One simulation as sent to a worker: the task and the fit timeout."""

    task: Task
    fit_timeout: float | None = None


def work(job: Job) -> pa.Table:
    """Run one simulation in a worker (its result rows); never raises for a scenario's own errors.

    A simulation whose data cannot be simulated gets one error row per (model, estimand)
    rather than stopping the run. With a fit timeout, every model and the diagnostics'
    kernels are compiled first (not timed), then each is fitted under a timer that raises
    :class:`FitTimeout` inside the fit, so the fit is recorded with that error by
    :func:`sbc.engine.task.fit_model`.
    """
    keep_freed_memory()
    with one_blas_thread():
        return _work(job)


def _work(job: Job) -> pa.Table:
    """:func:`work` within its thread limit."""
    task = job.task
    try:
        if job.fit_timeout is None or threading.current_thread() is not threading.main_thread():
            return run_task(task)
        broken = _uncompilable(task)
        if broken is not None:  # the run stops on it (sbc.engine.failfast)
            return run_task(replace(task, models=(broken,)))
        mcmc.warm()  # R-hat and ESS kernels: loaded (or compiled) once, not timed
        return concat_rows(
            [_timed(replace(task, models=(m,)), job.fit_timeout) for m in task.models]
        )
    except Exception as exc:
        return _failed(task, task.models, f"{SIMULATION_FAILED}{one_line(exc)}")


def _uncompilable(task: Task) -> str | None:
    """Compile every model of ``task`` (not timed); the first that cannot be, or ``None``."""
    scenario = registry.get(task.scenario)
    settings = dict(task.settings)
    design = scenario.design(settings)
    posterior = task.reference is not None
    if posterior:
        design = scenario.augment(design)
    return uncompilable(scenario, settings, design, task.models, posterior)


def _timed(task: Task, seconds: float) -> pa.Table:
    """``run_task`` for one model (already compiled), its fit stopped after ``seconds``."""
    (name,) = task.models

    def expire(signum: int, frame: Any) -> None:
        raise FitTimeout(f"fit stopped after the fit timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        return run_task(task)
    except FitTimeout as exc:  # fired after the fit, outside its error capture
        return _failed(task, (name,), f"FitTimeout: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def died(task: Task, error: str) -> pa.Table:
    """Error rows of every fit of a simulation whose worker died (``WorkerDied: SIGKILL``)."""
    return _failed(task, task.models, error)


def _failed(task: Task, models: Sequence[str], error: str) -> pa.Table:
    """Error rows (one per model and estimand, no statistics) for a simulation."""
    try:
        scenario = registry.get(task.scenario)
        names = list(scenario.estimands(scenario.design(dict(task.settings))))
    except Exception:
        names = ["?"]
    return concat_rows(
        [
            result_rows(
                {
                    "simulation": task.simulation,
                    "model": model,
                    "estimand": names,
                    "kind": "estimand",
                    "true_value": np.nan,
                    "error": error,
                }
            )
            for model in models
        ]
    )
