"""What a run computes (:class:`RunSpec`) and how it is executed (:class:`Execution`).

Every way of starting a run (``sbc run``, a sweep cell, ``sbc mutants``, ``sbc.testing``)
builds these two values, and they check themselves when made: a bad value is refused with
the same one-line :class:`~sbc.errors.SettingError` wherever it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sbc import registry
from sbc.backends import Sampling
from sbc.errors import SettingError
from sbc.scenario import Scenario

BACKENDS: tuple[str, ...] = ("loky", "dask")
"""Where simulations run: local worker processes, or an existing Dask cluster."""


def whole(value: Any, name: str, least: int) -> int:
    """``value`` as an int, or a one-line error if it is not a whole number >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise SettingError(f"{name} must be a whole number of at least {least}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RunSpec:
    """What a run computes: scenario, settings, models, simulations, seed, sampler settings.

    Build one with :meth:`build`, which resolves and checks everything; the resulting
    object determines the run's results (its :meth:`identity` is what a run folder
    records and refuses to mix with another run).

    Parameters
    ----------
    scenario : Scenario
        The scenario, with its reference as ``name`` (:func:`sbc.registry.resolve`).
    settings : mapping
        Its resolved settings.
    models : tuple of str
        Models to fit (checked names).
    simulations : int
        Number of simulations (indices ``0..simulations-1``).
    seed : int
        Run seed.
    sampling : Sampling
        Sampler settings (unset fields: each model's own, else the defaults).
    thin : int or None
        Fixed thinning factor, or ``None`` to thin each fit by its effective sample size.
    test_quantities : bool
        Also rank the scenario's test quantities (log-likelihood ...).
    prediction : bool
        Also draw held-out data and store each fit's predictive accuracy (elpd in sample,
        held out and by PSIS-LOO: :mod:`sbc.engine.predict`), for scenarios with a
        likelihood; off, a run saves that per-fit cost (11 ms of a 30 ms heights fit).
    """

    scenario: Scenario
    settings: Mapping[str, Any]
    models: tuple[str, ...]
    simulations: int
    seed: int = 0
    sampling: Sampling = field(default_factory=Sampling)
    thin: int | None = None
    test_quantities: bool = True
    prediction: bool = True

    def __post_init__(self) -> None:
        whole(self.simulations, "simulations", 1)
        whole(self.seed, "seed", 0)
        if self.thin is not None:
            whole(self.thin, "thin", 1)
        if not isinstance(self.sampling, Sampling):
            raise SettingError(f"sampling must be a sbc.backends.Sampling, got {self.sampling!r}")
        for flag in ("test_quantities", "prediction"):
            if not isinstance(getattr(self, flag), bool):
                raise SettingError(f"{flag} must be true or false, got {getattr(self, flag)!r}")

    @classmethod
    def build(
        cls,
        scenario: str | Scenario | Any,
        *,
        settings: Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        simulations: int = 200,
        seed: int = 0,
        sampling: Sampling | None = None,
        thin: int | None = None,
        test_quantities: bool = True,
        inference: Sequence[str] | None = None,
        prediction: bool = True,
    ) -> RunSpec:
        """Resolve the scenario, its settings and models, and check every value.

        Parameters
        ----------
        scenario : str, Scenario or module
            A reference (name, file, ``module:OBJECT``), a scenario object or a module
            defining ``SCENARIO`` (:func:`sbc.registry.resolve`).
        settings : mapping, optional
            Settings that differ from the defaults: values or command-line text.
        models : sequence of str, optional
            Model names (default: the scenario's default models).
        simulations, seed, sampling, thin, test_quantities, prediction
            As the attributes.
        inference : sequence of str, optional
            Inference methods (``nuts``, ``advi`` ...): every model is fitted by each, the
            approximate fits as models ``MODEL+METHOD``
            (:func:`sbc.registry.with_inference`).

        Raises
        ------
        sbc.errors.SettingError
            One line naming the first problem.
        """
        resolved = registry.resolve(scenario)
        return cls(
            scenario=resolved,
            settings=registry.resolve_settings(resolved, dict(settings or {})),
            models=tuple(registry.models(resolved, models, inference)),
            simulations=simulations,
            seed=seed,
            sampling=sampling if sampling is not None else Sampling(),
            thin=thin,
            test_quantities=test_quantities,
            prediction=prediction,
        )

    @property
    def name(self) -> str:
        """The scenario's name as the user wrote it (for folders and titles)."""
        return registry.display_name(self.scenario)


@dataclass(frozen=True)
class Execution:
    """How a run is executed: where, on how many workers, with which limits.

    Nothing here changes a run's results: every simulation draws from its own seed
    streams, so the table is the same whatever the workers.

    Parameters
    ----------
    jobs : int
        Local worker processes; ``1`` with ``isolate=False`` runs in this process.
    backend : {"loky", "dask"}
        Local worker processes, or the Dask cluster at ``scheduler``.
    scheduler : str or None
        Address of the Dask scheduler (``tcp://host:port``), for ``backend="dask"``.
    fit_timeout : float or None
        Stop a fit running longer than this many seconds (compilation excluded) and record
        it as that fit's error. Needs local workers.
    max_worker_memory : int or None
        Bytes of resident memory a local worker may use; a worker above it is stopped and
        its simulation recorded as an error (``WorkerDied: memory ...``).
    isolate : bool
        Run even ``jobs=1`` in a worker process, so that a fit that kills its process or
        runs out of memory costs that simulation, not the run (the command line does).
    progress : bool
        Show a progress bar.
    """

    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    fit_timeout: float | None = None
    max_worker_memory: int | None = None
    isolate: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        whole(self.jobs, "jobs", 1)
        if self.backend not in BACKENDS:
            raise SettingError(f"unknown backend {self.backend!r} (known: {', '.join(BACKENDS)})")
        if self.backend == "dask" and not self.scheduler:
            raise SettingError("the dask backend needs a scheduler address (--scheduler)")
        if self.backend != "dask" and self.scheduler:
            raise SettingError("a scheduler address needs the dask backend (--backend dask)")
        if self.fit_timeout is not None:
            if not _positive(self.fit_timeout):
                raise SettingError(
                    f"fit timeout must be a positive number of seconds, got {self.fit_timeout!r}"
                )
            if self.backend == "dask":
                raise SettingError(
                    "the fit timeout needs local workers; it is not available with dask"
                )
        if self.max_worker_memory is not None:
            whole(self.max_worker_memory, "max_worker_memory (bytes)", 1)
            if self.backend == "dask":
                raise SettingError(
                    "the worker memory cap is for local workers; give Dask workers their "
                    "memory limit when starting them (dask worker --memory-limit)"
                )

    @property
    def in_process(self) -> bool:
        """Whether simulations run in this process (one job, not isolated, local)."""
        return self.backend == "loky" and self.jobs == 1 and not self.isolate


def default_jobs() -> int:
    """Number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value < 1e6
    )
