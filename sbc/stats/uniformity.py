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

Up to :data:`GRID` + 1 ranks the ECDF is evaluated at every ``i / n`` (``i = 1 .. n - 1``),
as arviz-stats does. Beyond, at :data:`GRID` evenly spaced points ``i / n`` and the null is
simulated as multinomial counts between them (the same distribution as counting uniform
samples, at ``GRID`` instead of ``n`` values a sample), so a report's cost stops growing with
the number of simulations.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from arviz_stats.base import array_stats
from arviz_stats.ecdf_utils import compute_ecdf, ecdf_pit, get_pointwise_confidence_band
from scipy import special, stats

GRID = 500
"""Most evaluation points of the simultaneous ECDF test and band.

Chosen so that runs of up to 501 simulations keep every point ``i / n`` (their bands and
p-values are those of arviz-stats' ``ecdf_pit``, unchanged), while a 5000-simulation report
no longer simulates 2000 x 5000 uniform ranks per test: ``sbc report`` of a 5000-simulation
conjugate run took 71 s (34 s in the ECDF null, 34 s in band simulations) and peaked at
753 MiB; see the README's report-cost table for the figures after.
"""


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


def evaluation_points(n: int) -> np.ndarray:
    """Interior points ``i / n`` at which the ECDF of ``n`` ranks is tested and drawn.

    Every ``i = 1 .. n - 1`` up to :data:`GRID` of them (arviz-stats' choice), else
    :data:`GRID` evenly spaced ``i``.
    """
    if n - 1 <= GRID:
        return np.arange(1, n) / n
    return np.unique(np.round(np.linspace(1, n - 1, GRID)).astype(int)) / n


@lru_cache(maxsize=64)
def _band(
    n: int, prob: float, n_simulations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation points and simultaneous band for ``n`` values (with 0 and 1 added).

    The band depends on the number of values only, so it is computed once per ``n`` (a
    report draws it for every quantity of every model). Up to :data:`GRID` + 1 values it is
    ``ecdf_pit``'s own; beyond, the pointwise level that makes the band simultaneous is
    the ``prob`` quantile of :func:`_null_gamma` at :func:`evaluation_points` (what
    arviz-stats' ``simulate_confidence_bands`` estimates, here from exact multinomial
    counts), and the band is arviz-stats' ``get_pointwise_confidence_band`` at that level.
    """
    if n - 1 <= GRID:
        x, _, lower, upper = ecdf_pit(
            np.linspace(0, 1, n), prob, n_simulations, rng=np.random.default_rng(seed)
        )
        return x, lower, upper
    z = evaluation_points(n)
    level = float(np.quantile(_null_gamma(n, n_simulations, seed), prob))
    lower, upper = get_pointwise_confidence_band(level, n, z)
    return tuple(np.concatenate(([0.0], values, [1.0])) for values in (z, lower, upper))


def _gamma(sample: np.ndarray) -> np.ndarray:
    """Test statistic of the simultaneous ECDF test, for each row of ``sample``.

    ``1 - 2 * min`` over the evaluation points ``z`` (:func:`evaluation_points`) of the
    smaller binomial tail probability of the ECDF count, as in arviz-stats' band
    simulation: a larger value means the ECDF strays further from uniform somewhere.
    """
    m, n = sample.shape
    if n - 1 <= GRID:
        cells = np.clip((sample * n).astype(int), 0, n - 1) + n * np.arange(m)[:, None]
        counts = np.cumsum(np.bincount(cells.ravel(), minlength=m * n).reshape(m, n), axis=1)
        counts = counts[:, :-1]  # number of values below z_j = j / n, j = 1 .. n-1
    else:
        z = evaluation_points(n)
        counts = np.stack([np.searchsorted(np.sort(row), z, side="right") for row in sample])
    return _gamma_of_counts(counts, n)


def _gamma_of_counts(counts: np.ndarray, n: int) -> np.ndarray:
    """:func:`_gamma` from the ECDF counts at :func:`evaluation_points`, one row a sample."""
    z = evaluation_points(n)
    # The binomial tails are tabulated once per point for the counts seen there (a few
    # hundred values) and looked up: the same numbers as evaluating them per sample, 5x
    # faster on the 2000-sample null.
    low = counts.min(axis=0)
    table = low + np.arange(int((counts.max(axis=0) - low).max()) + 1)[:, None]
    lower = special.bdtr(table, n, z)
    upper = np.where(table > 0, 1 - special.bdtr(np.maximum(table - 1, 0), n, z), 1.0)
    tails = np.minimum(lower, upper)[counts - low, np.arange(z.size)]
    return 1 - 2 * tails.min(axis=-1)


@lru_cache(maxsize=64)
def _null_gamma(n: int, n_simulations: int, seed: int) -> np.ndarray:
    """Statistic of :func:`_gamma` for ``n_simulations`` uniform samples of size ``n``.

    Beyond :data:`GRID` + 1 values the counts at the evaluation points are drawn directly:
    the numbers of uniform values between consecutive points are multinomial.
    """
    rng = np.random.default_rng(seed)
    if n - 1 <= GRID:
        return _gamma(rng.uniform(size=(n_simulations, n)))
    cells = np.diff(np.concatenate(([0.0], evaluation_points(n), [1.0])))
    counts = np.cumsum(rng.multinomial(n, cells, size=n_simulations), axis=1)[:, :-1]
    return _gamma_of_counts(counts, n)


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
