"""Detection power of SBC as a function of the number of simulations (pure functions).

A model is flagged when the smallest Holm-adjusted ``pot_c`` p-value over its ``k``
quantities is below ``alpha`` (:mod:`sbc.results.calibration`); Holm's first step makes that
"``k`` times the smallest raw p-value below ``alpha``". Two estimates of the chance that a
run of ``m`` simulations flags a model:

* :func:`subsample_power` (``m`` up to the run's ``n``): the share of random subsets of
  ``m`` of the run's simulations (without replacement) on which the model is flagged. Its
  uncertainty, :func:`power_interval`, treats the estimate as a share of ``n // m``
  independent trials (the number of disjoint blocks of size ``m`` the run holds): subsets
  overlap, so that is all the independent information there is.
* :func:`effect_power` and :func:`required_simulations` (any ``m``, beyond the run too):
  the mutant's rank departure per quantity is measured against the correct model fitted
  to the same data sets (:func:`paired_effects`: a shift and an excess second moment on
  the probit scale, free of the sampling noise both models share), and the power of the
  very same ``pot_c`` test under that departure is simulated for any ``m``. The effects'
  standard errors give the interval (:func:`bounded_effects`). Projecting from the
  mutant's own p-value instead would inherit the chance departure its correct model shows
  on the same data, and promise a finite number of simulations for mutants that have no
  effect at all.
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


def paired_effects(pit: np.ndarray, control: np.ndarray) -> dict[str, np.ndarray]:
    """A mutant's rank departure per quantity, measured against the correct model's ranks.

    Both models were fitted to the same simulated data sets, so their ranks share most of
    their sampling noise. On the probit scale ``x = Phi^-1(pit)`` the correct model's ranks
    satisfy ``E x = 0`` and ``E x^2 = 1`` exactly, so the paired differences estimate the
    mutant's shift and excess second moment without that shared noise (a control variate):
    ``shift = mean(x_m - x_c)``, ``excess = mean(x_m^2 - x_c^2)``, each with its standard
    error from the paired differences.

    Parameters
    ----------
    pit, control : ndarray of shape (n, k)
        Fractional ranks of the mutant and of the correct model, simulation by quantity.

    Returns
    -------
    dict of ndarray of shape (k,)
        ``shift``, ``shift_se``, ``excess``, ``excess_se`` and ``n`` (pairs used); NaN for a
        quantity with fewer than two complete pairs.
    """
    x = stats.norm.ppf(np.clip(np.asarray(pit, dtype=float), 1e-9, 1 - 1e-9))
    c = stats.norm.ppf(np.clip(np.asarray(control, dtype=float), 1e-9, 1 - 1e-9))
    both = np.isfinite(x) & np.isfinite(c)
    n = both.sum(axis=0)
    out: dict[str, np.ndarray] = {"n": n}
    for key, diff in (("shift", x - c), ("excess", x**2 - c**2)):
        diff = np.where(both, diff, 0.0)
        mean = diff.sum(axis=0) / np.maximum(n, 1)
        var = (np.where(both, diff - mean, 0.0) ** 2).sum(axis=0) / np.maximum(n - 1, 1)
        out[key] = np.where(n >= 2, mean, np.nan)
        out[f"{key}_se"] = np.where(n >= 2, np.sqrt(var / np.maximum(n, 1)), np.nan)
    return out


def bounded_effects(effects: dict[str, np.ndarray], z: float) -> dict[str, np.ndarray]:
    """The effects moved ``z`` standard errors away from zero (``z < 0``: towards it, not past)."""
    out = dict(effects)
    for key in ("shift", "excess"):
        size = np.abs(effects[key]) + z * effects[f"{key}_se"]
        out[key] = np.sign(effects[key]) * np.maximum(size, 0.0)
    return out


def visible(effects: dict[str, np.ndarray], level: float = 0.1) -> bool:
    """Whether any shift or excess differs from zero at family-wise ``level`` (Bonferroni)."""
    tests = 2 * np.isfinite(effects["shift"]).sum()
    if not tests:
        return False
    critical = stats.norm.isf(level / (2 * tests))
    ratios = [np.abs(effects[k]) / effects[f"{k}_se"] for k in ("shift", "excess")]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.concatenate(ratios)
    return bool(np.any(ratios[np.isfinite(ratios)] > critical))


def effect_power(
    effects: dict[str, np.ndarray],
    sizes: np.ndarray,
    k: int,
    rng: np.random.Generator,
    alpha: float = 0.01,
    reps: int = 100,
    strongest: int = 2,
) -> np.ndarray:
    """Chance that a run of each size flags a model with these rank departures.

    Each quantity's ranks are modelled as ``Phi(x)`` with ``x ~ Normal(shift, 1 + excess -
    shift^2)``; the chance that ``pot_c`` gives that quantity a p-value below ``alpha / k``
    (the first Holm step over the model's ``k`` quantities) is simulated, and the model's
    power is that of its strongest quantity (a lower bound: other quantities only add
    chances). Only the ``strongest`` quantities (by ``shift^2 + excess^2 / 2``) are simulated.

    Returns
    -------
    ndarray of shape (len(sizes),)
    """
    shift = np.nan_to_num(np.asarray(effects["shift"], dtype=float))
    excess = np.nan_to_num(np.asarray(effects["excess"], dtype=float))
    strength = shift**2 + excess**2 / 2
    top = np.argsort(-strength)[:strongest]
    top = top[strength[top] > 0]
    out = []
    for m in np.asarray(sizes, dtype=int):
        best = 0.0
        for q in top:
            sd = np.sqrt(max(1 + excess[q] - shift[q] ** 2, 1e-4))
            pit = stats.norm.cdf(rng.normal(shift[q], sd, size=(reps, m)))
            best = max(best, float(np.mean(pvalues(pit) < alpha / max(k, 1))))
        out.append(best)
    return np.array(out)


def required_simulations(
    effects: dict[str, np.ndarray],
    n: int,
    k: int,
    rng: np.random.Generator,
    alpha: float = 0.01,
    power: float = 0.8,
    longest: int = 32,
    reps: int = 100,
) -> float:
    """Simulations at which :func:`effect_power` reaches ``power`` (``inf`` beyond ``longest n``).

    Doubles from ``n / 8`` until the power is reached, bisects that bracket three times on
    the log scale, then interpolates: about two significant digits, which is all a
    simulated power of ``reps`` runs supports.
    """
    cache: dict[int, float] = {}

    def at(m: int) -> float:
        if m not in cache:
            cache[m] = float(effect_power(effects, np.array([m]), k, rng, alpha, reps)[0])
        return cache[m]

    lower, m = 0, max(n // 8, 2)
    while at(m) < power:
        if m >= longest * n:
            return float("inf")
        lower, m = m, min(2 * m, longest * n)
    if not lower:
        return float(m)
    upper = m
    for _ in range(3):
        middle = int(np.rint(np.sqrt(lower * upper)))
        if middle in (lower, upper):
            break
        if at(middle) >= power:
            upper = middle
        else:
            lower = middle
    p_low, p_up = at(lower), at(upper)
    if p_up <= p_low:
        return float(upper)
    t = (power - p_low) / (p_up - p_low)
    return float(np.exp(np.log(lower) + t * (np.log(upper) - np.log(lower))))


def first_reaching(power: np.ndarray, sizes: np.ndarray, target: float = 0.8) -> float:
    """Smallest size at which a power curve reaches ``target`` (log-interpolated), or NaN."""
    power, sizes = np.asarray(power, dtype=float), np.asarray(sizes, dtype=float)
    above = np.flatnonzero(power >= target)
    if not above.size:
        return float("nan")
    i = above[0]
    if i == 0 or power[i] == power[i - 1]:
        return float(sizes[i])
    t = (target - power[i - 1]) / (power[i] - power[i - 1])
    return float(np.exp(np.log(sizes[i - 1]) + t * (np.log(sizes[i]) - np.log(sizes[i - 1]))))
