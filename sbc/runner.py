"""Run many simulations in parallel with joblib and store each as it finishes."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from tqdm import tqdm

from sbc import seeding
from sbc.backends import Sampling
from sbc.fitting import Task, _frame, compiled, run_task
from sbc.scenario import Scenario, SettingError
from sbc.store import RunStore, versions

DEFAULT_SAMPLING = Sampling()

BACKENDS: tuple[str, ...] = ("loky", "dask")
"""Where simulations run: local worker processes (loky) or an existing Dask cluster."""


class ScenarioCheckError(SettingError):
    """A scenario fails its pre-run check (one simulated data set from the example stream)."""


class RunError(RuntimeError):
    """The run stopped for a reason outside the scenario (its Dask workers kept dying)."""


class FitTimeout(Exception):
    """A fit ran longer than the run's fit timeout (recorded as that fit's error)."""


def default_jobs() -> int:
    """Number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_scenario(scenario: Scenario, settings: Mapping[str, Any], models: Sequence[str]) -> None:
    """Check a scenario before a run by simulating data sets from fixed streams.

    Catches what is detectable without fitting: a design, estimand list or simulator that
    raises, a truth without some estimand (or not a finite number), data that is not a
    mapping of numeric arrays, data whose shapes change between simulations, and a model
    whose data containers or response are missing from the data. Problems a fit reveals
    (a model without draws of some estimand) become that fit's ``error``.

    Raises
    ------
    ScenarioCheckError
        One line naming the scenario (and the model) and the problem.
    """
    label = f"scenario {_display(scenario)}"

    def fail(problem: str, model: str | None = None) -> None:
        where = f"{label}, model {model}" if model else label
        raise ScenarioCheckError(f"{where}: {problem}")

    for name in models:
        scenario.model(name)
    try:
        design = scenario.design(dict(settings))
        estimands = tuple(scenario.estimands(design))
    except Exception as exc:
        fail(f"building the design raised {_one_line(exc)}")
    if not estimands or not all(isinstance(e, str) for e in estimands):
        fail(f"estimands(design) must give a non-empty tuple of names, got {estimands!r}")
    shapes = None
    for rng in (seeding.example_rng(), seeding.data_rng(0, 0)):
        try:
            simulation = scenario.simulate(design, rng)
            truth, data = simulation.truth, simulation.data
        except Exception as exc:
            fail(f"simulate raised {_one_line(exc)}")
        missing = [e for e in estimands if e not in truth]
        if missing:
            fail(f"simulated truth lacks estimand {', '.join(missing)}")
        for e in estimands:
            value = truth[e]
            if np.ndim(value) != 0 or not np.isfinite(_float(value)):
                fail(f"true {e} must be one finite number, got {value!r}")
        if not isinstance(data, Mapping) or not data:
            fail(f"simulated data must be a non-empty mapping of arrays, got {type(data).__name__}")
        found = {}
        for key, values in data.items():
            array = np.asarray(values)
            if array.dtype.kind not in "biuf":
                fail(f"data {key!r} must be numeric, got dtype {array.dtype}")
            if not np.isfinite(array).all():
                fail(f"data {key!r} has non-finite values")
            found[key] = array.shape
        if shapes is not None and found != shapes:
            changed = sorted(
                k for k in found.keys() | shapes.keys() if found.get(k) != shapes.get(k)
            )
            fail(
                f"data shape changes between simulations ({', '.join(changed)}: "
                f"{[shapes.get(k) for k in changed]} then {[found.get(k) for k in changed]}); "
                "a model is compiled once for one shape"
            )
        shapes = found
    for name in models:
        backend = scenario.model(name).backend
        keys = tuple(getattr(backend, "data", ())) + (
            (backend.response,) if isinstance(getattr(backend, "response", None), str) else ()
        )
        absent = [k for k in keys if k not in shapes]
        if absent:
            fail(f"data has no {', '.join(map(repr, absent))} (has {', '.join(shapes)})", name)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _display(scenario: Scenario) -> str:
    from scenarios import display_name

    return display_name(scenario)


def _one_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(exc)).strip()
    return " ".join(text.split())


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
        "thin": thin if thin is not None else "ess",
        "test_quantities": test_quantities,
    }
    store.open(
        identity,
        {"simulations": simulations, "versions": versions(), "fit_timeout": fit_timeout},
    )
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
        desc=_display(scenario),
    )
    try:
        for frame in _execute(tasks, jobs, fit_timeout, backend, scheduler):
            store.write_part(frame)
            bar.update()
    finally:
        bar.close()
        store.add_wall_seconds(time.perf_counter() - start)
    return store.collect(simulations)


@dataclass(frozen=True)
class _Job:
    """One simulation as sent to a worker: the task and the fit timeout."""

    task: Task
    fit_timeout: float | None = None


def work(job: _Job) -> pd.DataFrame:
    """Run one simulation in a worker; never raises for a scenario's own errors.

    A simulation whose data cannot be simulated gets one error row per (model, estimand)
    rather than stopping the run. With a fit timeout, each model is compiled first (not
    timed), then fitted under a timer that raises :class:`FitTimeout` inside the fit, so
    the fit is recorded with that error by :func:`sbc.fitting.fit_model`.
    """
    task = job.task
    try:
        if job.fit_timeout is None or threading.current_thread() is not threading.main_thread():
            return run_task(task)
        return pd.concat(
            [_timed(replace(task, models=(m,)), job.fit_timeout) for m in task.models],
            ignore_index=True,
        )
    except Exception as exc:
        return _failed(task, task.models, f"simulation failed: {_one_line(exc)}")


def _timed(task: Task, seconds: float) -> pd.DataFrame:
    """``run_task`` for one model, its fit stopped after ``seconds``."""
    from scenarios import get

    (name,) = task.models
    scenario = get(task.scenario)
    settings = dict(task.settings)
    try:
        compiled(scenario, settings, scenario.model(name), scenario.design(settings))
    except Exception:
        pass  # the fit compiles again and records the error

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


def _failed(task: Task, models: Sequence[str], error: str) -> pd.DataFrame:
    """Error rows (one per model and estimand, no statistics) for a simulation."""
    try:
        from scenarios import get

        scenario = get(task.scenario)
        names = list(scenario.estimands(scenario.design(dict(task.settings))))
    except Exception:
        names = ["?"]
    return pd.concat(
        [
            _frame(
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
        ],
        ignore_index=True,
    )


def _execute(
    tasks: list[Task],
    jobs: int,
    fit_timeout: float | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Results of ``tasks`` in the order they finish."""
    if not tasks:
        return iter(())
    jobs_ = [_Job(task, fit_timeout) for task in tasks]
    if backend == "dask":
        return _execute_dask(jobs_, scheduler)
    if jobs == 1:
        return map(work, jobs_)
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered", batch_size=1)
    return parallel(delayed(work)(job) for job in jobs_)


def _execute_dask(jobs: list[_Job], scheduler: str | None) -> Iterator[pd.DataFrame]:
    """Run ``jobs`` on the Dask cluster at ``scheduler`` through joblib's dask backend."""
    try:
        from distributed import Client
    except ImportError:
        raise SettingError(
            "the dask backend needs the distributed package: pip install 'sbc[dask]'"
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
                f"the Dask cluster at {scheduler} failed ({_one_line(exc)}); finished "
                "simulations are saved: run the same command again to resume"
            ) from None
