"""Uniformity of SBC ranks across simulations.

All functions take fractional ranks (PIT values in [0, 1], see
:func:`sbc.stats.ranks.fractional_rank`), which are exactly Uniform(0, 1) for a calibrated
model whatever the number of draws each rank was computed among.

* :func:`ecdf_band` -- the ECDF with its simultaneous confidence band (Säilynoja, Bürkner &
  Vehtari 2022), from :func:`arviz_stats.ecdf_utils.ecdf_pit`;
* :func:`ecdf_pvalue` -- the p-value of the same simultaneous test, consistent with the band:
  the ECDF leaves the ``prob`` band exactly when the p-value is below ``1 - prob``;
* :func:`uniformity_pvalue` -- arviz-stats' pointwise order-statistic test (``pot_c``);
* :func:`histogram_test` -- a chi-square test on a rank histogram;
* :func:`holm` -- Holm's step-down adjustment, to test many estimands at once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from arviz_stats.base import array_stats
from arviz_stats.ecdf_utils import compute_ecdf, ecdf_pit
from scipy import special, stats


def _clean(pit: np.ndarray) -> np.ndarray:
    pit = np.asarray(pit, dtype=float)
    return pit[np.isfinite(pit)]


def uniformity_pvalue(pit: np.ndarray) -> float:
    """P-value of the hypothesis that fractional ranks are Uniform(0, 1).

    Uses the Cauchy-combined pointwise order-statistic test (``pot_c``) of
    :meth:`arviz_stats.base.array_stats.uniformity_test`, which is sensitive to every kind
    of departure SBC shows: shifted (bias), U-shaped (overconfidence) and humped
    (underconfidence) rank histograms.

    Parameters
    ----------
    pit : ndarray of shape (n,)
        Fractional ranks in [0, 1].

    Returns
    -------
    float
        The p-value; NaN for fewer than two values.
    """
    pit = _clean(pit)
    if pit.size < 2:
        return float("nan")
    p_value, _, _ = array_stats.uniformity_test(pit, method="pot_c")
    return float(p_value)


def ecdf_band(
    pit: np.ndarray, prob: float = 0.99, n_simulations: int = 1000, seed: int = 214
) -> dict[str, np.ndarray]:
    """ECDF of fractional ranks with its simultaneous ``prob`` confidence band.

    Parameters
    ----------
    pit : ndarray of shape (n,)
        Fractional ranks in [0, 1].
    prob : float
        Simultaneous coverage of the band under uniformity.
    n_simulations : int
        Simulations used to calibrate the band.
    seed : int
        Seed of those simulations (fixed, so reports are reproducible).

    Returns
    -------
    dict of ndarray
        ``x`` (evaluation points in [0, 1]), ``ecdf``, ``lower`` and ``upper`` at ``x``.
        Plot ``ecdf - x`` with ``lower - x`` and ``upper - x`` for the ECDF-difference view.
    """
    pit = _clean(pit)
    x, lower, upper = _band(pit.size, prob, n_simulations, seed)
    ecdf = np.concatenate(([0.0], compute_ecdf(pit, x[1:-1]), [1.0]))
    return {"x": x, "ecdf": ecdf, "lower": lower, "upper": upper}


@lru_cache(maxsize=64)
def _band(
    n: int, prob: float, n_simulations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation points and simultaneous band of :func:`ecdf_pit` for ``n`` values.

    The band depends on the number of values only, so it is simulated once per ``n`` (a
    report draws it for every quantity of every model); equal to ``ecdf_pit``'s own.
    """
    x, _, lower, upper = ecdf_pit(
        np.linspace(0, 1, n), prob, n_simulations, rng=np.random.default_rng(seed)
    )
    return x, lower, upper


def _gamma(sample: np.ndarray) -> np.ndarray:
    """Test statistic of the simultaneous ECDF test, for each row of ``sample``.

    ``1 - 2 * min`` over the evaluation points ``z = 1/n .. (n-1)/n`` of the smaller binomial
    tail probability of the ECDF count, as in arviz-stats' band simulation: a larger value
    means the ECDF strays further from uniform somewhere.
    """
    m, n = sample.shape
    cells = np.clip((sample * n).astype(int), 0, n - 1) + n * np.arange(m)[:, None]
    counts = np.cumsum(np.bincount(cells.ravel(), minlength=m * n).reshape(m, n), axis=1)
    counts = counts[:, :-1]  # number of values below z_j = j / n, j = 1 .. n-1
    z = np.arange(1, n) / n
    lower_tail = special.bdtr(counts, n, z)
    upper_tail = np.where(counts > 0, 1 - special.bdtr(np.maximum(counts - 1, 0), n, z), 1.0)
    return 1 - 2 * np.minimum(lower_tail, upper_tail).min(axis=-1)


@lru_cache(maxsize=64)
def _null_gamma(n: int, n_simulations: int, seed: int) -> np.ndarray:
    """Statistic of :func:`_gamma` for ``n_simulations`` uniform samples of size ``n``."""
    return _gamma(np.random.default_rng(seed).uniform(size=(n_simulations, n)))


def ecdf_pvalue(pit: np.ndarray, n_simulations: int = 2000, seed: int = 214) -> float:
    """P-value of the simultaneous ECDF uniformity test (the one behind :func:`ecdf_band`).

    Parameters
    ----------
    pit : ndarray of shape (n,)
        Fractional ranks in [0, 1].
    n_simulations : int
        Uniform samples simulated to calibrate the statistic; the p-value is resolved to
        about ``1 / n_simulations``.
    seed : int
        Seed of those simulations.

    Returns
    -------
    float
        Share of uniform samples whose ECDF strays at least as far as this one's (with the
        usual +1 correction, so never 0); NaN for fewer than two values.
    """
    pit = _clean(pit)
    if pit.size < 2:
        return float("nan")
    observed = _gamma(pit[None, :])[0]
    null = _null_gamma(pit.size, n_simulations, seed)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_simulations))


def histogram_bins(n: int) -> int:
    """Number of rank-histogram bins for ``n`` ranks: about 10 expected per bin, 2 to 20."""
    return int(np.clip(n // 10, 2, 20))


def histogram_test(pit: np.ndarray, bins: int | None = None) -> tuple[np.ndarray, float]:
    """Rank histogram in equal-width bins and the chi-square p-value of its flatness.

    Parameters
    ----------
    pit : ndarray of shape (n,)
        Fractional ranks in [0, 1].
    bins : int, optional
        Number of bins; default :func:`histogram_bins`.

    Returns
    -------
    counts : ndarray of int
        Counts per bin.
    p_value : float
        Chi-square goodness-of-fit p-value against equal counts; NaN for fewer than two values.
    """
    pit = _clean(pit)
    bins = bins or histogram_bins(pit.size)
    counts, _ = np.histogram(pit, bins=bins, range=(0.0, 1.0))
    if pit.size < 2:
        return counts, float("nan")
    return counts, float(stats.chisquare(counts).pvalue)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values: family-wise error control for many estimands.

    Valid whatever the dependence between the tests (estimands of one model share data).

    Parameters
    ----------
    p_values : ndarray of shape (k,)
        Raw p-values; NaNs are left out of the family and stay NaN.

    Returns
    -------
    ndarray of shape (k,)
        Adjusted p-values; reject at family-wise level ``alpha`` where adjusted < ``alpha``.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    order = valid[np.argsort(p[valid])]
    k = order.size
    adjusted = np.maximum.accumulate((k - np.arange(k)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out
