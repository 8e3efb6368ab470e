"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari 2022), single path, from pymc-extras.

pymc-extras' ``make_single_pathfinder_fn`` compiles the L-BFGS objective and the sampling of
the local normal approximations once for a model; the compiled functions read the model's
data containers when called. So it is built once per worker and data set after data set is
swapped into the containers (:meth:`sbc.backends.flat.FlatModel.refill`) and refitted,
where ``pymc_extras.fit(method="pathfinder")`` would rebuild everything each time.

One path with pymc-extras' defaults (jitter 2, 10 ELBO draws per L-BFGS iterate); the
same path's draws resampled by Pareto-smoothed importance weights is ``pathfinder+psis``
(:mod:`sbc.backends.approximate`). pymc-extras' multi-path default (several paths, then
importance resampling) is not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sbc.backends.flat import Approximation, FlatModel


@dataclass(frozen=True)
class Pathfinder:
    """Single-path Pathfinder as a method of :mod:`sbc.backends.approximate`.

    Parameters
    ----------
    name : str
        The method's name in model names (``partial+pathfinder``).
    requires : str
        The module it needs: pymc-extras, the optional extra ``sbc-testbed[approx]``.
    jitter : float
        Uniform jitter of the initial point on the unconstrained space.
    elbo_draws : int
        Draws per ELBO estimate along the L-BFGS path.
    max_iterations : int
        L-BFGS iteration budget.
    """

    name: str = "pathfinder"
    requires: str = "pymc_extras"
    jitter: float = 2.0
    elbo_draws: int = 10
    max_iterations: int = 1000

    def compile(self, flat: FlatModel) -> Any:
        """Build pymc-extras' single-path function for ``flat``'s model (per draw count)."""
        built: dict[int, Any] = {}

        def fit(rng: np.random.Generator, draws: int) -> Approximation:
            if draws not in built:
                built[draws] = self.build(flat, draws)
            return self.fit(built[draws], rng)

        return fit

    def build(self, flat: FlatModel, draws: int) -> Any:
        """pymc-extras' compiled single-path Pathfinder drawing ``draws`` points."""
        from pymc_extras.inference.pathfinder.lbfgs import LBFGSConfig
        from pymc_extras.inference.pathfinder.single_path import make_single_pathfinder_fn

        config = LBFGSConfig(maxiter=self.max_iterations).set_default_maxcor(flat.size)
        return make_single_pathfinder_fn(
            flat.graph.model,
            num_draws=draws,
            num_elbo_draws=self.elbo_draws,
            jitter=self.jitter,
            lbfgs_config=config,
        )

    @staticmethod
    def fit(path: Any, rng: np.random.Generator) -> Approximation:
        """Run the compiled path once with a seed from ``rng``."""
        from pymc_extras.inference.pathfinder.lbfgs import LBFGSStatus

        result = path(int(rng.integers(2**31)))
        if result.samples is None:
            raise FloatingPointError(
                f"Pathfinder failed: {result.path_status.name} (L-BFGS {result.lbfgs_status.name})"
            )
        points = np.asarray(result.samples)[0]
        log_p, log_q = np.asarray(result.logP)[0], np.asarray(result.logQ)[0]
        finite = np.isfinite(log_p) & np.isfinite(log_q)
        elbo = float(np.mean(log_p[finite] - log_q[finite])) if finite.any() else np.nan
        return Approximation(
            points,
            log_q,
            converged=result.lbfgs_status == LBFGSStatus.CONVERGED,
            iterations=int(np.asarray(result.lbfgs_niter).ravel()[0]),
            objective=elbo,
        )
