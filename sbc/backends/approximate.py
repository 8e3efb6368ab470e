"""Approximate inference as a backend: a PyMC or Bambi model fitted by ADVI, Laplace, Pathfinder.

Methods (:data:`METHODS`): ``advi`` (mean-field) and ``fullrank_advi``, ``dadvi``
(deterministic ADVI), ``laplace`` and ``pathfinder``. INLA (pymc-extras) is not offered: it
needs a latent Gaussian model declared as such, which the shipped models are not.

A run names an approximate fit of a model ``MODEL+METHOD`` (``partial+advi``); the registry
(:func:`sbc.registry.approximate_model`) builds it from the declared model. Its
backend, :class:`Approximate`, builds the declared model's PyMC graph, compiles it once on
the flat unconstrained space (:mod:`sbc.backends.flat`) and lets the method compile what it
needs (:data:`METHODS`); each fit swaps the data set into the graph's data containers and
refits, as the NUTS backend does.

Every fit also measures how good its approximation is, with the Pareto k-hat of the
importance ratios ``p(x, y) / q(x)`` at its draws (Yao, Vehtari, Simpson & Gelman 2018;
arviz-stats' PSIS): below 0.7 importance sampling can repair the approximation, above it
the approximation is not to be trusted. ``METHOD+psis`` (``advi+psis``) does that repair:
the draws are resampled by their Pareto-smoothed importance weights, and SBC checks whether
that restores calibration.

Draws of an approximation are independent: the results say so (``thin`` 1, no R-hat or
ESS) and the fit's health is the optimiser's convergence and the k-hat instead.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sbc.backends import Posterior, Sampling
from sbc.backends.advi import ADVI, DADVI
from sbc.backends.flat import FlatModel, Method, NotApplicable, check_applicable, flatten
from sbc.backends.laplace import Laplace
from sbc.backends.pathfinder import Pathfinder
from sbc.stats.predictive import psis_log_weights

NUTS = "nuts"
"""The name of the default method: the model's own backend, its name unchanged."""

METHODS: dict[str, Method] = {
    m.name: m
    for m in (ADVI(), ADVI("fullrank_advi", full_rank=True), DADVI(), Laplace(), Pathfinder())
}
"""Approximate methods by name."""

RESAMPLED = "+psis"
"""Suffix of a method whose draws are resampled by Pareto-smoothed importance weights."""

KHAT_MAX = 0.7
"""Above this Pareto k-hat an approximation is unreliable (Yao et al. 2018; Vehtari et al.
2024 give ``min(1 - 1/log10(S), 0.7)``, 0.7 for the 2000 draws of a default fit)."""


def method_names() -> list[str]:
    """Every method a run can name: ``nuts``, each approximation, and each with ``+psis``."""
    return [NUTS, *METHODS, *(f"{m}{RESAMPLED}" for m in METHODS)]


def check_method(name: str) -> None:
    """Raise a one-line :class:`NotApplicable` for an unknown method name."""
    if name == NUTS:
        return
    base = name.removesuffix(RESAMPLED)
    if base not in METHODS:
        known = ", ".join(method_names())
        raise NotApplicable(f"unknown inference method {name!r} (known: {known})")


@dataclass(frozen=True)
class Approximate:
    """A backend fitting another backend's PyMC graph by an approximate method.

    Parameters
    ----------
    base : object
        A backend with ``graph(design, example)`` (:class:`sbc.backends.nutpie.PyMCModel`,
        :class:`~sbc.backends.nutpie.BambiModel`, a generated mutant).
    method : str
        A name from :func:`method_names` other than ``nuts``.
    """

    base: Any
    method: str

    def __post_init__(self) -> None:
        check_method(self.method)
        if self.method == NUTS:
            raise NotApplicable("nuts is the model's own backend, not an approximation")
        needs = getattr(self.approximation, "requires", None)
        if needs and importlib.util.find_spec(needs) is None:
            raise NotApplicable(
                f"{self.method} needs {needs.replace('_', '-')}, which is not installed "
                "(pip install 'sbc-testbed[approx]')"
            )
        if not callable(getattr(self.base, "graph", None)):
            raise NotApplicable(
                f"{self.method} needs a PyMC or Bambi model, not a {type(self.base).__name__}"
            )

    @property
    def approximation(self) -> Method:
        """The method behind :attr:`method` (``+psis`` removed)."""
        return METHODS[self.method.removesuffix(RESAMPLED)]

    def check(self, design: Any, example: Mapping[str, np.ndarray]) -> None:
        """Build the graph and refuse what the method cannot fit (before any simulation).

        Raises
        ------
        NotApplicable
            For discrete parameters or a model without free parameters.
        """
        check_applicable(self.base.graph(design, example).model)

    def compile(self, design: Any, example: Mapping[str, np.ndarray]) -> ApproximateFitter:
        """Build the graph, compile it on the flat space and let the method compile."""
        flat = flatten(self.base.graph(design, example))
        resample = self.method.endswith(RESAMPLED)
        return ApproximateFitter(flat, self.approximation.compile(flat), resample)


@dataclass(frozen=True)
class ApproximateFitter:
    """A model compiled for one approximate method, refitted through its data containers."""

    flat: FlatModel
    approximator: Any
    resample: bool = False

    def fit(self, data: Mapping[str, np.ndarray], seed: int, sampling: Sampling) -> Posterior:
        """Swap ``data`` in, fit the approximation, draw ``chains x draws`` points from it."""
        sampling = sampling.resolve()
        self.flat.refill(data)
        rng = np.random.default_rng(seed)
        n = sampling.chains * sampling.draws
        approximation = self.approximator(rng, n)
        points = approximation.points
        log_ratio = self.flat.logp(points) - approximation.log_q
        log_weights, khat = pareto_smoothed(log_ratio)
        if self.resample:
            weights = np.exp(log_weights - log_weights.max())
            points = points[rng.choice(len(points), size=n, p=weights / weights.sum())]
        return Posterior(
            draws=self.flat.draws(points),
            independent=True,
            diagnostics={
                "pareto_khat": khat,
                "converged": approximation.converged,
                "iterations": approximation.iterations,
                "objective": approximation.objective,
            },
        )


EXACT_SPREAD = 1e-6
"""Log ratios spread less than this: the approximation is exact to rounding (weights equal)."""


def pareto_smoothed(log_ratio: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed, normalised log importance weights and k-hat (arviz-stats' ``psislw``).

    Computed by :func:`sbc.stats.predictive.psis_log_weights`, equal to arviz-stats'
    ``psislw`` of the negated log ratios (``tests/test_approximate.py``) in half its time
    (0.17 against 0.32 ms for 2000 draws), a cost of every approximate fit. Draws where the
    model's density is not finite get weight zero (they lie where the model puts no mass).
    k-hat is infinite when fewer than two ratios are finite, or when the tail is too heavy
    for the fit of a generalised Pareto distribution to return a value (log ratios spread
    over thousands of units); minus infinity when the log ratios spread less than
    :data:`EXACT_SPREAD` (the approximation is the posterior: equal weights, and a tail
    fitted to rounding noise would mean nothing).
    """
    finite = np.isfinite(log_ratio)
    if finite.sum() < 2 or np.ptp(log_ratio[finite]) < EXACT_SPREAD:
        weights = np.where(finite, -np.log(max(finite.sum(), 1)), -np.inf)
        return weights, float("inf") if finite.sum() < 2 else float("-inf")
    log_weights = np.full(log_ratio.shape, -np.inf)
    smoothed, khat = psis_log_weights(log_ratio[finite][:, None])
    log_weights[finite] = smoothed[:, 0]
    return log_weights, float(khat[0]) if np.isfinite(khat[0]) else float("inf")
