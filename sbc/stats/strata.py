"""Calibration within strata of a data statistic: pure functions, arrays in, arrays out.

For a correct model with exact inference the rank of the truth is uniform conditionally on
the data, hence on any function of the data: the fractional ranks of the simulations whose
data statistic falls in one stratum are still Uniform(0, 1). (Not so for strata of the true
parameter values: a truth in the prior's upper tail tends to lie above its posterior, which
shrinks towards the prior, so its ranks pile up high even for a correct model.)

* :func:`assign_strata` -- equal-count strata (tertiles by default) of a statistic;
* :func:`stratum_ranges` -- the statistic's range in each stratum;
* :func:`stratified_pvalues` -- the uniformity p-value of the ranks in each stratum;
* :func:`ecdf_difference` -- ECDF minus the uniform CDF on a grid, for figures;
* :func:`difference_band` -- the simultaneous band of that difference for ``n`` ranks.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sbc.stats.uniformity import ecdf_band, uniformity_pvalue

STRATA = 3
"""Default number of strata: tertiles."""


def assign_strata(values: np.ndarray, k: int = STRATA) -> np.ndarray:
    """Stratum (0 .. k-1) of each value, cut at the ``1/k, 2/k, ...`` sample quantiles.

    Parameters
    ----------
    values : ndarray of shape (n,)
        One statistic per simulation.
    k : int
        Number of strata.

    Returns
    -------
    ndarray of int, shape (n,)
        Stratum of each value; -1 where the value is NaN. Tied values share a stratum, so
        strata are of equal size only up to ties.
    """
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, -1, dtype=int)
    finite = np.isfinite(values)
    if not finite.any():
        return out
    edges = np.quantile(values[finite], np.arange(1, k) / k)
    out[finite] = np.searchsorted(edges, values[finite], side="right")
    return out


def stratum_ranges(values: np.ndarray, strata: np.ndarray, k: int = STRATA) -> np.ndarray:
    """Smallest and largest value in each stratum, shape ``(k, 2)`` (NaN if empty)."""
    values = np.asarray(values, dtype=float)
    out = np.full((k, 2), np.nan)
    for s in range(k):
        inside = values[strata == s]
        if inside.size:
            out[s] = inside.min(), inside.max()
    return out


def stratified_pvalues(pit: np.ndarray, strata: np.ndarray, k: int = STRATA) -> np.ndarray:
    """Uniformity p-value (``pot_c``) of the fractional ranks in each stratum.

    Parameters
    ----------
    pit : ndarray of shape (n,)
        Fractional ranks of one quantity, one per simulation.
    strata : ndarray of int, shape (n,)
        Stratum of each simulation (:func:`assign_strata`; -1 is left out).
    k : int
        Number of strata.

    Returns
    -------
    ndarray of shape (k,)
        NaN for a stratum with fewer than two ranks.
    """
    pit = np.asarray(pit, dtype=float)
    strata = np.asarray(strata)
    return np.array([uniformity_pvalue(pit[strata == s]) for s in range(k)])


def ecdf_difference(pit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """ECDF of the fractional ranks at ``x`` minus ``x`` (the uniform CDF)."""
    pit = np.sort(np.asarray(pit, dtype=float)[np.isfinite(pit)])
    if pit.size == 0:
        return np.full(np.shape(x), np.nan)
    return np.searchsorted(pit, x, side="right") / pit.size - np.asarray(x)


@lru_cache(maxsize=256)
def difference_band(n: int, prob: float = 0.99) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid ``x`` and the simultaneous ``prob`` band of ``ECDF - x`` for ``n`` uniform ranks.

    The band of :func:`sbc.stats.uniformity.ecdf_band` depends on the number of ranks only,
    so it is computed once per ``n`` (arrays are shared: do not modify them).

    Returns
    -------
    x, lower, upper : ndarray
        Evaluation points ``0, 1/n, ..., 1`` and the band's bounds minus ``x``.
    """
    band = ecdf_band(np.full(n, 0.5), prob)
    x = band["x"]
    return x, band["lower"] - x, band["upper"] - x
