"""Fitting backends: compile a model once for a design, then refit it on new data.

A :class:`Backend` is a small, picklable description of a model (a PyMC builder, a Bambi
formula, an analytic posterior). ``backend.compile(design, example)`` does the expensive work
once per worker process and returns a :class:`Fitter`; ``fitter.fit(data, seed, sampling)``
refits on one simulated data set and returns a :class:`Posterior`.

Implementations:

* :mod:`sbc.backends.nutpie` -- PyMC and Bambi models compiled with nutpie, refitted through
  data containers (``compiled.with_data``) without recompiling;
* :mod:`sbc.backends.approximate` -- the same PyMC and Bambi graphs fitted by ADVI, the
  Laplace approximation or Pathfinder, compiled once on the flat unconstrained space
  (:mod:`sbc.backends.flat`; the methods in :mod:`~sbc.backends.advi`,
  :mod:`~sbc.backends.laplace`, :mod:`~sbc.backends.pathfinder`);
* :mod:`sbc.backends.exact` -- conjugate models with an analytic posterior, for exact,
  fast end-to-end tests of the machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sbc.errors import SettingError


@dataclass(frozen=True)
class Sampling:
    """Sampler settings of a run; a field left ``None`` takes the model's or the default value.

    A model may declare its own sampler settings (:attr:`sbc.scenario.Model.sampling`), for
    a geometry that needs smaller steps or longer chains. :meth:`resolve` fills every unset
    field from those, then from :data:`DEFAULTS`; a field set here (by the user: ``--draws``,
    a sweep's ``[sampling]``, ``check_calibration(sampling=...)``) applies to every model.
    The settings check themselves when made, so an impossible value is refused the same
    way wherever it comes from.

    Parameters
    ----------
    chains, tune, draws : int or None
        Number of chains (at least 1), warm-up iterations (at least 0) and kept draws per
        chain (at least 1).
    target_accept : float or None
        NUTS target acceptance rate, strictly between 0 and 1.
    adaptation : {"diag", "low_rank"} or None
        Mass-matrix adaptation: nutpie's diagonal estimate, or its low-rank correction for
        posteriors whose parameters are strongly correlated.

    Raises
    ------
    sbc.errors.SettingError
        For a value of the wrong type or out of range (one line naming the setting).
    """

    chains: int | None = None
    tune: int | None = None
    draws: int | None = None
    target_accept: float | None = None
    adaptation: str | None = None

    def __post_init__(self) -> None:
        for name, least in (("chains", 1), ("tune", 0), ("draws", 1)):
            value = getattr(self, name)
            if value is not None and (not _whole(value) or value < least):
                raise SettingError(
                    f"sampler setting {name} must be a whole number of at least {least}, "
                    f"got {value!r}"
                )
        accept = self.target_accept
        if accept is not None and (
            isinstance(accept, bool)
            or not isinstance(accept, int | float | np.floating)
            or not 0 < accept < 1
        ):
            raise SettingError(f"sampler setting target_accept must lie in (0, 1), got {accept!r}")
        if self.adaptation is not None and self.adaptation not in ADAPTATIONS:
            raise SettingError(
                f"sampler setting adaptation must be one of {', '.join(ADAPTATIONS)}, "
                f"got {self.adaptation!r}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Sampling:
        """Settings from a mapping (a sweep's ``[sampling]``, a model's own settings).

        Raises
        ------
        sbc.errors.SettingError
            For an unknown key or an impossible value.
        """
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise SettingError(
                f"unknown sampler setting {', '.join(unknown)} (known: {', '.join(FIELDS)})"
            )
        return cls(**values)

    def resolve(self, hints: Mapping[str, Any] | None = None) -> Sampling:
        """Every field set: this run's value, else the model's ``hints``, else the default."""
        values = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is None and hints:
                value = hints.get(name)
            values[name] = getattr(DEFAULTS, name) if value is None else value
        return Sampling(**values)


def _whole(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


FIELDS: tuple[str, ...] = ("chains", "tune", "draws", "target_accept", "adaptation")
"""The sampler settings a run or a model can set."""

ADAPTATIONS: tuple[str, ...] = ("diag", "low_rank")
"""Mass-matrix adaptations a run or model can choose."""

DEFAULTS = Sampling(chains=2, tune=300, draws=1000, target_accept=0.95, adaptation="diag")
"""Default sampler settings, chosen by measurement (``benchmarks/bench_health.py``).

* 2 chains x 1000 kept draws: even a sampler with independent draws needs about 2000
  draws for the rank-normalised R-hat of every estimand to stay below 1.01 and the tail
  ESS above 400 in 95% of fits (heights ``partial``, 200 data sets: 2 x 500 draws left
  26% of fits with a tail ESS below 400 and 14% with R-hat > 1.01; 2 x 1000: 2.5% and 0.5%).
* 300 warm-up iterations: nutpie adapts its mass matrix quickly; on heights ``partial``
  300, 500 and 1000 gave the same health (R-hat > 1.01 in 14-15% of 100 fits at 2 x 500
  draws), and on schools and districts ``partial`` 300 left every fit healthy. The old
  default of 1000 spent half the sampler's time in warm-up.
* target_accept 0.95: on the non-centred heights model 0.8 left divergences in 58% of fits,
  0.95 in 6.5% (1.6x the time); models whose geometry needs more say so themselves.
* diagonal mass matrix: the low-rank correction pays off only for strongly correlated
  posteriors (districts ``partial_bambi``: 34-39 gradient evaluations per draw with the
  diagonal, 10-14 with low rank); on heights it added divergences. Models that need it
  say so.
"""


@dataclass(frozen=True)
class Posterior:
    """Draws and sampler statistics of one fit.

    Parameters
    ----------
    draws : mapping of str to ndarray
        Posterior draws by variable, each of shape ``(chain, draw, *shape)``.
    divergences : int
        Number of divergent transitions after warm-up.
    grad_evals : float
        Mean number of gradient evaluations (leapfrog steps) per kept draw: what a draw
        costs, whatever the machine. NaN for samplers without gradients.
    tree_depth : float
        Mean NUTS tree depth of the kept draws (NaN where not applicable).
    independent : bool
        The draws are independent (an analytic posterior, an approximation): no R-hat,
        ESS or thinning is computed for them.
    diagnostics : mapping of str to value
        Per-fit values for the results table's per-fit columns
        (:data:`sbc.results.schema.FIT_COLUMNS`): an approximation's ``pareto_khat``,
        ``converged``, ``iterations`` and ``objective``.
    """

    draws: Mapping[str, np.ndarray]
    divergences: int = 0
    grad_evals: float = float("nan")
    tree_depth: float = float("nan")
    independent: bool = False
    diagnostics: Mapping[str, Any] = field(default_factory=dict)


class Fitter(Protocol):
    """A compiled model that can be refitted on new data."""

    def fit(self, data: Mapping[str, np.ndarray], seed: int, sampling: Sampling) -> Posterior:
        """Fit the compiled model to ``data`` and return its posterior draws."""
        ...


class Backend(Protocol):
    """Something that compiles a model for a design.

    A backend may also have ``check(design, example)``, raising a one-line ``ValueError``
    for a model it cannot fit (an approximation of a model with discrete parameters): the
    pre-run check (:mod:`sbc.engine.preflight`) calls it before any simulation.
    """

    def compile(self, design: Any, example: Mapping[str, np.ndarray]) -> Fitter:
        """Compile once for ``design``; ``example`` is one data set of the right shapes."""
        ...
