"""Run many simulations and store each as it finishes; resume what a folder already holds.

:func:`run` is the engine's entry point: it opens the run folder (:mod:`sbc.results.store`),
makes one :class:`~sbc.engine.task.Task` per missing simulation, hands them to an executor
(:mod:`sbc.engine.execute`: this process, local worker processes that survive a lost
worker, or a Dask cluster), writes every simulation's rows as they arrive, stops the run
when a model cannot be fitted (:mod:`sbc.engine.failfast`), and collects the table.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc import registry
from sbc.engine.execute import execute, release_workers
from sbc.engine.failfast import FIRST_FITS, FailureWatch, ModelFailure
from sbc.engine.spec import Execution, RunSpec
from sbc.engine.task import Task
from sbc.errors import SettingError
from sbc.results.store import Parts, RunStore, versions

__all__ = ["Parameters", "release_workers", "run"]


@dataclass(frozen=True)
class Parameters:
    """Where a run's parameters come from when not from the prior (posterior SBC).

    Parameters
    ----------
    identity : mapping
        What the run folder records of the source (part of the run's identity).
    load : callable
        ``load(folder) -> (pool, info)``: the parameter draws by name, each of shape
        ``(L, *shape)`` (simulation ``i`` takes draw ``i``), and facts about them for
        ``run.json`` (``size``: L). Called once the folder is open, so a source may keep
        its draws there for a resumed run.
    """

    identity: Mapping[str, Any]
    load: Callable[[Path], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]]


def run(
    spec: RunSpec,
    out: str | os.PathLike[str],
    execution: Execution | None = None,
    *,
    overwrite: bool = False,
    parameters: Parameters | None = None,
) -> pd.DataFrame:
    """Run (or resume) an SBC run and return its results table.

    Simulations already stored in ``out`` are not recomputed; each new one is written as
    soon as it finishes. Because every simulation draws from its own seed streams, the table
    is the same whatever the execution is and however often the run was interrupted.

    Parameters
    ----------
    spec : RunSpec
        What to compute.
    out : path
        The run folder.
    execution : Execution, optional
        Where and how (default: in this process).
    overwrite : bool
        Delete sbc's files in ``out`` first and start afresh.
    parameters : Parameters, optional
        Posterior SBC: the simulations' parameters are draws from this source (a reference
        posterior given the real data), and the models are refitted on the real data plus
        data simulated from them. The run folder records the mode.

    Returns
    -------
    pandas.DataFrame
        One row per (simulation, model, quantity); see :data:`sbc.results.schema.COLUMNS`.

    Raises
    ------
    sbc.engine.failfast.ModelFailure
        When a model cannot be fitted (finished simulations are kept).
    sbc.results.store.StoreError
        When the folder holds another run or cannot be read.
    """
    execution = execution or Execution()
    scenario = spec.scenario
    models = [registry.model(scenario, m) for m in spec.models]
    store = RunStore(out)
    if overwrite:
        store.clear()
    identity = {
        "scenario": scenario.name,
        "settings": dict(spec.settings),
        "models": list(spec.models),
        "seed": spec.seed,
        "sampling": asdict(spec.sampling),
        "model_sampling": {m.name: asdict(spec.sampling.resolve(m.sampling)) for m in models},
        "thin": spec.thin if spec.thin is not None else "ess",
        "test_quantities": spec.test_quantities,
    }
    if not spec.prediction:  # runs with prediction keep the identity of runs made before it
        identity["prediction"] = False
    if parameters is not None:  # prior runs keep the identity of runs made before the mode
        identity |= {"mode": "posterior", "reference": dict(parameters.identity)}
    extra = {
        "name": spec.name,  # the declared name, for titles (identity holds the reference)
        "simulations": spec.simulations,
        "versions": versions(),
        "fit_timeout": execution.fit_timeout,
        "model_notes": {m.name: m.note for m in models if m.note},
    }
    store.open(identity, extra)
    store.annotate("data_statistics", {s.name: s.description for s in scenario.data_statistics})
    pool = _parameter_pool(store, spec, parameters)
    done = store.finished()
    tasks = [
        Task(
            scenario.name,
            tuple(spec.settings.items()),
            spec.models,
            i,
            spec.seed,
            spec.sampling,
            spec.thin,
            spec.test_quantities,
            {k: np.asarray(v[i]) for k, v in pool.items()} if pool is not None else None,
            spec.prediction,
        )
        for i in range(spec.simulations)
        if i not in done
    ]
    start = time.perf_counter()
    bar = _progress(spec, len(tasks), execution.progress)
    watch = FailureWatch(spec.name, max(1, min(FIRST_FITS, len(tasks))))
    results = execute(tasks, execution)
    fresh = Parts()  # this run's parts, kept so collect need not reread them
    try:
        for rows in results:
            store.write_part(rows)
            fresh.add(rows)
            bar.update()
            watch.check(rows)
    except ModelFailure as failure:
        raise _stopped(failure, store) from None
    finally:
        results.close()
        bar.close()
        store.add_wall_seconds(time.perf_counter() - start)
    return store.collect(spec.simulations, fresh)


def _progress(spec: RunSpec, todo: int, shown: bool) -> Any:
    """A progress bar on standard error that also draws in a notebook (``tqdm.auto``)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=spec.simulations,
        initial=spec.simulations - todo,
        disable=not shown,
        file=sys.stderr,
        unit="sim",
        desc=spec.name,
    )


def _stopped(failure: ModelFailure, store: RunStore) -> ModelFailure:
    """The failure, its message ending with what is kept; parts it made useless removed.

    The parts of the simulations where the failed model raised are removed, so that the
    same command, once the model is fixed, computes them again; every other finished
    simulation stays.
    """
    for simulation in failure.simulations:
        store.remove_part(simulation)
    kept = len(store.finished())
    return ModelFailure(
        f"{failure}; run stopped, {kept} finished simulations kept in {store.out}",
        failure.model,
        failure.simulations,
    )


def _parameter_pool(
    store: RunStore, spec: RunSpec, parameters: Parameters | None
) -> Mapping[str, np.ndarray] | None:
    """Posterior SBC's parameter draws (kept in the run folder), or ``None``."""
    if parameters is None:
        return None
    pool, info = parameters.load(store.out)
    store.annotate("reference_fit", dict(info))
    size = int(info["size"])
    if spec.simulations > size:
        raise SettingError(
            f"the reference posterior ({info['chains']} chains x {info['draws']} draws, "
            f"thinned by {info['thin']}) holds {size} roughly independent draws: "
            f"run at most {size} simulations, or more --reference-draws in a new folder"
        )
    return pool
