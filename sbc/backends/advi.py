"""Automatic differentiation variational inference (ADVI), mean-field and full-rank.

Kucukelbir, Tran, Ranganath, Gelman & Blei (2017): a normal approximation on the
unconstrained space, fitted by stochastic gradient ascent on the evidence lower bound (ELBO)
with reparameterised Monte Carlo gradients. Mean-field: independent normals
(``mu``, ``log sd``); full-rank: one multivariate normal (``mu``, a Cholesky factor with a
log diagonal).

Why not PyMC's own ``pm.fit``: it rebuilds and recompiles its graph on every call (2 to 9 s a
fit on heights), and even its compiled step function, reused, costs 0.7 ms an iteration
(10,000 iterations: 7 s a fit). The same algorithm here takes one batched call of the
compiled log density and gradient per iteration (:mod:`sbc.backends.flat`, 9 us) and a few
NumPy operations. ``tests/test_approximate.py`` checks it reaches PyMC's ADVI optimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sbc.backends.flat import Approximation, FlatModel


@dataclass(frozen=True)
class ADVI:
    """ADVI as a method of :mod:`sbc.backends.approximate`.

    Parameters
    ----------
    name : str
        The method's name in model names (``partial+advi``).
    full_rank : bool
        A full-rank normal instead of the mean-field one.
    gradient_draws : int
        Monte Carlo draws per gradient (evaluated in one batched call).
    learning_rate : float
        Adam's initial step size, halved at each stationary check (see ``halvings``).
    max_iterations : int
        Iteration budget; a fit that uses it all without converging says so.
    check_every : int
        Iterations between ELBO estimates (each from ``elbo_draws`` draws).
    elbo_draws : int
        Draws per ELBO estimate.
    halvings : int
        Convergence: the gradient is tested for stationarity at every check (the mean of
        the last ``check_every`` ELBO gradients against its standard error, every parameter,
        family-wise level 0.05); each time it is stationary the step size is halved, and
        after ``halvings`` halvings the fit stops and keeps the mean of the last window of
        iterates. A fit that runs out of iterations first is marked not converged.
    """

    # Defaults measured on heights partial (3 data sets, against a reference fit of 64
    # gradient draws and 20,000 iterations at a step of 0.01): 8 draws at 0.05 with 4
    # halvings converged in 900-2,100 iterations (40-90 ms), the location within 0.04-0.12
    # of a reference sd and every sd within 0.97-1.05 of the reference's. A fixed decay
    # (0.05 / sqrt(1 + t / 1000)) never met a tolerance of 0.02 sd in 10,000 iterations
    # (430 ms); stopping when the iterates' mean moved less than 0.1 stopped while a scale
    # was still drifting (sds up to 1.4-2x the reference's). 1 gradient draw: 10,000
    # iterations, location error 0.26 sd. 32 draws: half the location error (0.02 against
    # 0.04 sd over 20 seeds on a two-coefficient regression) in the same time here, but the
    # batched call costs in proportion to its draws on larger models, so 8 are kept.
    name: str = "advi"
    full_rank: bool = False
    gradient_draws: int = 8
    learning_rate: float = 0.05
    max_iterations: int = 10_000
    check_every: int = 100
    elbo_draws: int = 100
    halvings: int = 4

    def compile(self, flat: FlatModel) -> Any:
        """The fit, bound to ``flat`` (ADVI needs nothing compiled beyond the model)."""
        return lambda rng, draws: self.fit(flat, rng, draws)

    def fit(self, flat: FlatModel, rng: np.random.Generator, draws: int) -> Approximation:
        """Fit the approximation to ``flat``'s current data and draw ``draws`` points."""
        n = flat.size
        q = _FullRank(flat.start, n) if self.full_rank else _MeanField(flat.start, n)
        adam = _Adam(q.params.size)
        window = np.zeros_like(q.params)
        converged = False
        iterations = 0
        rate = self.learning_rate
        halvings = 0
        critical = _critical(q.params.size)
        total = np.zeros_like(q.params)
        squares = np.zeros_like(q.params)
        for t in range(1, self.max_iterations + 1):
            eps = rng.standard_normal((self.gradient_draws, n))
            logp, grad = flat.logp_grad(q.points(eps))
            good = np.isfinite(logp) & np.isfinite(grad).all(axis=1)
            if not good.any():
                raise FloatingPointError(
                    f"ADVI: the log density is not finite at any draw (iteration {t})"
                )
            gradient = q.gradient(eps[good], grad[good])
            q.params += adam.step(gradient, rate)
            window += q.params
            total += gradient
            squares += gradient**2
            iterations = t
            if t % self.check_every == 0:
                w = self.check_every
                spread = np.sqrt(np.maximum(squares / w - (total / w) ** 2, 1e-300) / w)
                stationary = np.max(np.abs(total / w) / spread) < critical
                mean = window / w
                window[:] = total[:] = squares[:] = 0.0
                if stationary:
                    halvings += 1
                    rate /= 2
                    if halvings == self.halvings:
                        q.params[:] = mean
                        converged = True
                        break
        elbo = q.elbo(flat, rng.standard_normal((self.elbo_draws, n)))
        eps = rng.standard_normal((draws, n))
        return Approximation(q.points(eps), q.log_q(eps), converged, iterations, elbo)


def _critical(size: int, alpha: float = 0.05) -> float:
    """Two-sided normal critical value for ``size`` tests at family-wise level ``alpha``."""
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * size)))


class _MeanField:
    """Independent normals: ``params = [mu, log sd]``."""

    def __init__(self, start: np.ndarray, n: int) -> None:
        self.n = n
        self.params = np.concatenate([start, np.zeros(n)])

    def scale(self) -> np.ndarray:
        return np.exp(self.params[self.n :])

    def points(self, eps: np.ndarray) -> np.ndarray:
        return self.params[: self.n] + eps * self.scale()

    def gradient(self, eps: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """ELBO gradient: ``E[g]`` for ``mu``; ``E[g eps] sd + 1`` (the entropy) for ``log sd``."""
        return np.concatenate([grad.mean(0), (grad * eps).mean(0) * self.scale() + 1.0])

    def log_q(self, eps: np.ndarray) -> np.ndarray:
        log_sd = self.params[self.n :]
        return -0.5 * (eps**2).sum(1) - log_sd.sum() - 0.5 * self.n * np.log(2 * np.pi)

    def elbo(self, flat: FlatModel, eps: np.ndarray) -> float:
        logp = flat.logp(self.points(eps))
        return float(np.mean(logp - self.log_q(eps)))


class _FullRank(_MeanField):
    """One multivariate normal: ``params = [mu, Cholesky factor]`` with a log diagonal."""

    def __init__(self, start: np.ndarray, n: int) -> None:
        self.n = n
        self.lower = np.tril_indices(n)
        self.diagonal = np.flatnonzero(self.lower[0] == self.lower[1])
        self.params = np.concatenate([start, np.zeros(len(self.lower[0]))])

    def factor(self) -> np.ndarray:
        values = self.params[self.n :].copy()
        values[self.diagonal] = np.exp(values[self.diagonal])
        chol = np.zeros((self.n, self.n))
        chol[self.lower] = values
        return chol

    def scale(self) -> np.ndarray:
        chol = self.factor()
        return np.sqrt((chol**2).sum(1))

    def points(self, eps: np.ndarray) -> np.ndarray:
        return self.params[: self.n] + eps @ self.factor().T

    def gradient(self, eps: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """ELBO gradient: ``E[g]``; ``E[g eps^T]`` for the factor, entropy on its log diagonal."""
        outer = (grad[:, :, None] * eps[:, None, :]).mean(0)[self.lower]
        diag = np.exp(self.params[self.n :][self.diagonal])
        outer[self.diagonal] = outer[self.diagonal] * diag + 1.0
        return np.concatenate([grad.mean(0), outer])

    def log_q(self, eps: np.ndarray) -> np.ndarray:
        log_diag = self.params[self.n :][self.diagonal]
        return -0.5 * (eps**2).sum(1) - log_diag.sum() - 0.5 * self.n * np.log(2 * np.pi)


class _Adam:
    """Adam (Kingma & Ba 2015) for gradient ascent."""

    def __init__(self, size: int, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0
        self.beta1, self.beta2 = beta1, beta2

    def step(self, grad: np.ndarray, rate: float) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return rate * m_hat / (np.sqrt(v_hat) + 1e-8)


@dataclass(frozen=True)
class DADVI:
    """Deterministic ADVI (Giordano, Ingram & Broderick 2024) as a method.

    Mean-field ADVI whose ELBO is averaged over ``fixed_draws`` standard-normal draws fixed
    for the fit (from the fit's seed), so the objective is deterministic and an ordinary
    optimiser (L-BFGS) finds its optimum to tolerance: no step size, no stopping rule.
    pymc-extras' ``fit_dadvi`` optimises the same objective (with trust-ncg) but rebuilds
    and recompiles it for every fit; ``tests/test_approximate.py`` checks they agree.

    Parameters
    ----------
    name : str
        The method's name in model names (``partial+dadvi``).
    fixed_draws : int
        Draws the ELBO is averaged over (pymc-extras' default, 30).
    max_iterations : int
        L-BFGS iteration budget.
    """

    name: str = "dadvi"
    fixed_draws: int = 30
    max_iterations: int = 1000

    def compile(self, flat: FlatModel) -> Any:
        """The fit, bound to ``flat`` (nothing to compile beyond the model)."""
        return lambda rng, draws: self.fit(flat, rng, draws)

    def fit(self, flat: FlatModel, rng: np.random.Generator, draws: int) -> Approximation:
        """Optimise the fixed-draw ELBO of ``flat``'s current data, then draw from it."""
        from scipy.optimize import minimize

        n = flat.size
        fixed = rng.standard_normal((self.fixed_draws, n))

        q = _MeanField(flat.start, n)

        def negative_elbo(params: np.ndarray) -> tuple[float, np.ndarray]:
            q.params = params
            logp, grad = flat.logp_grad(q.points(fixed))
            if not np.isfinite(logp).all():
                return np.inf, np.zeros_like(params)
            value = logp.mean() + params[n:].sum()  # the entropy up to a constant
            return -float(value), -q.gradient(fixed, grad)

        result = minimize(
            negative_elbo,
            q.params.copy(),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iterations},
        )
        q.params = result.x
        eps = rng.standard_normal((draws, n))
        return Approximation(
            q.points(eps), q.log_q(eps), bool(result.success), int(result.nit), -result.fun
        )
