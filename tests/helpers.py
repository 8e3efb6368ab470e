"""Helpers shared by the tests: an engine run from plain arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sbc.backends import Sampling
from sbc.engine.runner import Parameters
from sbc.engine.runner import run as engine_run
from sbc.engine.spec import Execution, RunSpec


def run(
    scenario: Any,
    settings: Mapping[str, Any],
    models: Sequence[str],
    simulations: int,
    out: Any,
    *,
    seed: int = 0,
    sampling: Sampling | None = None,
    thin: int | None = None,
    jobs: int = 1,
    test_quantities: bool = True,
    fit_timeout: float | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    overwrite: bool = False,
    parameters: Parameters | None = None,
    isolate: bool = False,
    max_worker_memory: int | None = None,
) -> pd.DataFrame:
    """The engine's run (:func:`sbc.engine.runner.run`) of a spec built from these values."""
    spec = RunSpec.build(
        scenario,
        settings=settings,
        models=models,
        simulations=simulations,
        seed=seed,
        sampling=sampling,
        thin=thin,
        test_quantities=test_quantities,
    )
    execution = Execution(
        jobs=jobs,
        backend=backend,
        scheduler=scheduler,
        fit_timeout=fit_timeout,
        isolate=isolate,
        max_worker_memory=max_worker_memory,
    )
    return engine_run(spec, out, execution, overwrite=overwrite, parameters=parameters)
