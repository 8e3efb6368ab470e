"""Detection power of SBC as a function of the number of simulations (pure functions).

A model is flagged when the smallest Holm-adjusted ``pot_c`` p-value over its ``k``
quantities is below ``alpha`` (:mod:`sbc.calibration`); Holm's first step makes that
"``k`` times the smallest raw p-value below ``alpha``". Two estimates of the chance that a
run of ``m`` simulations flags a model:

* :func:`subsample_power` (``m`` up to the run's ``n``): the share of random subsets of
  ``m`` of the run's simulations (without replacement) on which the model is flagged. Its
  uncertainty, :func:`power_interval`, treats the estimate as a share of ``n // m``
  independent trials (the number of disjoint blocks of size ``m`` the run holds): subsets
  overlap, so that is all the independent information there is.
* :func:`projected_power` and :func:`required_simulations` (any ``m``, beyond the run
  too): under a fixed departure from uniformity the evidence of a consistent test grows
  like ``sqrt(m)``. With ``z = Phi^-1(1 - p)`` the normal score of the smallest raw p-value
  at ``n`` simulations, ``z(m) ~ Normal(z sqrt(m / n), 1)``; the model is flagged when
  ``z(m)`` exceeds ``c = Phi^-1(1 - alpha / k)``. So ``power(m) = Phi(z sqrt(m/n) - c)``
  and the ``m`` flagging it with probability ``q`` is ``n ((c + Phi^-1(q)) / z)**2``.
  ``z`` is itself known to about +-1, which gives the interval. For ``pot_c`` the score
  grows like ``sqrt(m)`` because its p-value is about ``n`` times the smallest pointwise
  binomial tail probability, which falls exponentially in ``m``.
"""

from __future__ import annotations

import numpy as np
from arviz_stats.base import array_stats
from scipy import stats


def pvalues(pit: np.ndarray) -> np.ndarray:
    """``pot_c`` uniformity p-values along the last axis, batched over the others.

    Equal to :func:`sbc.stats.uniformity.uniformity_pvalue` on every row: non-finite
    values are left out; NaN where fewer than two remain.

    Parameters
    ----------
    pit : ndarray of shape (..., n)
        Fractional ranks in [0, 1].

    Returns
    -------
    ndarray of shape (...)
    """
    pit = np.asarray(pit, dtype=float)
    out = np.full(pit.shape[:-1], np.nan)
    finite = np.isfinite(pit)
    whole = finite.all(axis=-1) & (pit.shape[-1] >= 2)
    if whole.any():  # one batched call for the rows without missing values
        p, _, _ = array_stats.uniformity_test(pit[whole], axis=-1, method="pot_c")
        out[whole] = p
    for index in zip(*np.nonzero(~whole & (finite.sum(axis=-1) >= 2)), strict=True):
        row = pit[index]
        p, _, _ = array_stats.uniformity_test(row[np.isfinite(row)], method="pot_c")
        out[index] = p
    return out


def holm_min(p: np.ndarray) -> np.ndarray:
    """Smallest Holm-adjusted p-value over the last axis: ``min(k * min p, 1)``.

    ``k`` counts the finite p-values of each row; NaN where there are none.
    """
    p = np.asarray(p, dtype=float)
    k = np.isfinite(p).sum(axis=-1)
    smallest = np.where(np.isfinite(p), p, 1.0).min(axis=-1, initial=1.0)
    return np.where(k > 0, np.minimum(k * smallest, 1.0), np.nan)


def subsample_power(
    pit: np.ndarray,
    sizes: np.ndarray,
    rng: np.random.Generator,
    subsets: int = 200,
    alpha: float = 0.01,
) -> np.ndarray:
    """Share of random subsets of each size on which the model is flagged.

    Parameters
    ----------
    pit : ndarray of shape (n, k)
        Fractional ranks of one model: simulations by quantities (NaN for failed fits).
    sizes : ndarray of int
        Subset sizes ``m``, each in ``2 .. n``; at ``m = n`` the run itself (0 or 1).
    rng : numpy.random.Generator
        Draws the subsets.
    subsets : int
        Subsets per size.
    alpha : float
        Family-wise level of the Holm verdict.

    Returns
    -------
    ndarray of shape (len(sizes),)
    """
    pit = np.asarray(pit, dtype=float)
    n = pit.shape[0]
    out = []
    for m in np.asarray(sizes, dtype=int):
        if m >= n:
            out.append(float(holm_min(pvalues(pit.T)) < alpha))
            continue
        order = np.argsort(rng.random((subsets, n)), axis=1)[:, :m]  # (subsets, m)
        p = pvalues(np.moveaxis(pit[order], 1, 2))  # (subsets, k)
        out.append(float(np.mean(holm_min(p) < alpha)))
    return np.array(out)


def power_interval(
    power: np.ndarray, n: int, sizes: np.ndarray, prob: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson interval of a subsampled power, counting ``n // m`` independent trials.

    Parameters
    ----------
    power : ndarray
        Estimated power at each size.
    n : int
        Simulations in the run.
    sizes : ndarray of int
        Subset sizes.
    prob : float
        Coverage of the interval.

    Returns
    -------
    lower, upper : ndarray
    """
    power = np.asarray(power, dtype=float)
    trials = np.maximum(n // np.asarray(sizes, dtype=int), 1)
    z = stats.norm.ppf((1 + prob) / 2)
    centre = (power + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z * np.sqrt(power * (1 - power) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def score(p: np.ndarray) -> np.ndarray:
    """Normal score ``Phi^-1(1 - p)`` of p-values, at least 0 (tiny p-values kept finite)."""
    p = np.clip(np.asarray(p, dtype=float), 1e-300, 1.0)
    return np.maximum(stats.norm.isf(p), 0.0)


def critical_score(k: int, alpha: float = 0.01) -> float:
    """The score the smallest of ``k`` p-values must exceed to flag at level ``alpha``."""
    return float(stats.norm.isf(alpha / max(k, 1)))


def projected_power(z: float, n: int, sizes: np.ndarray, k: int, alpha: float = 0.01) -> np.ndarray:
    """Chance of a flag at each size, from the score ``z`` of the smallest p at ``n``.

    See the module docstring: ``Phi(z sqrt(m / n) - c)``.
    """
    sizes = np.asarray(sizes, dtype=float)
    return stats.norm.cdf(z * np.sqrt(sizes / n) - critical_score(k, alpha))


def required_simulations(
    z: float, n: int, k: int, alpha: float = 0.01, power: float = 0.8, prob: float = 0.9
) -> tuple[float, float, float]:
    """Simulations needed to flag with probability ``power``, and a ``prob`` interval.

    Parameters
    ----------
    z : float
        Score of the model's smallest raw p-value in a run of ``n`` simulations.
    n : int
        Simulations in the run.
    k : int
        Quantities in the model's Holm family.
    alpha : float
        Family-wise level.
    power : float
        Wanted chance of a flag.
    prob : float
        Coverage of the interval, from ``z`` plus or minus its normal quantile.

    Returns
    -------
    estimate, lower, upper : float
        ``inf`` where the score shows no departure from uniformity (``z <= 0``) or its
        lower limit does not.
    """
    target = critical_score(k, alpha) + stats.norm.ppf(power)
    q = stats.norm.ppf((1 + prob) / 2)

    def needed(score_: float) -> float:
        return float(n * (target / score_) ** 2) if score_ > 0 else float("inf")

    return needed(z), needed(z + q), needed(z - q)
