"""The Laplace approximation: a normal at the posterior mode, its covariance the inverse Hessian.

On the unconstrained space, with the log-Jacobian of the transforms in the density (as
Stan's ``laplace`` method does by default), so that the approximation is one of the density
the importance ratios compare it with. The mode is found by L-BFGS (SciPy) on the compiled
log density and gradient (:mod:`sbc.backends.flat`); the Hessian by central differences of
the gradient, all ``2 x size`` points in one batched call. pymc-extras' ``fit_laplace``
computes the same approximation but rebuilds and recompiles its graph on every call (2 to
9 s a fit on heights); ``tests/test_approximate.py`` checks both agree on a model whose
parameters need no transform (there pymc-extras' mode without the Jacobian is the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sbc.backends.flat import Approximation, FlatModel


@dataclass(frozen=True)
class Laplace:
    """The Laplace approximation as a method of :mod:`sbc.backends.approximate`.

    Parameters
    ----------
    name : str
        The method's name in model names (``partial+laplace``).
    max_iterations : int
        L-BFGS iteration budget.
    gtol : float
        L-BFGS gradient tolerance (SciPy's ``pgtol``).
    step : float
        Relative step of the central differences for the Hessian.
    """

    name: str = "laplace"
    max_iterations: int = 1000
    gtol: float = 1e-6
    step: float = 1e-5

    def compile(self, flat: FlatModel) -> Any:
        """The fit, bound to ``flat`` (nothing to compile beyond the model)."""
        return lambda rng, draws: self.fit(flat, rng, draws)

    def fit(self, flat: FlatModel, rng: np.random.Generator, draws: int) -> Approximation:
        """Find the mode of ``flat``'s current posterior, then draw from the normal there."""
        from scipy.optimize import minimize

        def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
            logp, grad = flat.logp_grad(x[None])
            if not np.isfinite(logp[0]):
                return np.inf, np.zeros_like(x)
            return -float(logp[0]), -grad[0]

        result = minimize(
            negative,
            flat.start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iterations, "gtol": self.gtol},
        )
        mode = result.x
        hessian = self.hessian(flat, mode)
        precision = -0.5 * (hessian + hessian.T)
        try:
            chol_precision = np.linalg.cholesky(precision)
        except np.linalg.LinAlgError:
            raise FloatingPointError(
                "Laplace: the Hessian at the mode is not negative definite"
            ) from None
        eps = rng.standard_normal((draws, flat.size))
        # x = mode + L^-T eps has covariance (L L^T)^-1 = precision^-1
        points = mode + np.linalg.solve(chol_precision.T, eps.T).T
        log_det = np.log(np.diag(chol_precision)).sum()
        log_q = -0.5 * (eps**2).sum(1) + log_det - 0.5 * flat.size * np.log(2 * np.pi)
        return Approximation(points, log_q, bool(result.success), int(result.nit), -result.fun)

    def hessian(self, flat: FlatModel, x: np.ndarray) -> np.ndarray:
        """Central differences of the gradient at ``x``, in one batched call."""
        h = self.step * np.maximum(1.0, np.abs(x))
        shifts = np.diag(h)
        _, grad = flat.logp_grad(np.concatenate([x + shifts, x - shifts]))
        n = x.size
        return (grad[:n] - grad[n:]) / (2 * h[:, None])
