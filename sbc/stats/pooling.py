"""How much pooling a data set calls for: spread of group means against their noise.

These are data statistics (functions of one data set and its design, never of the true
parameters) that scenarios declare with :class:`sbc.scenario.DataStatistic`, so that the
report can check calibration within strata of them (:mod:`sbc.stats.strata`).

The central quantity is the ratio of the observed spread of group means to the spread that
within-group noise alone would give them: near 1 (or below) the data show no between-group
variation beyond noise and call for strong pooling; large, the groups differ clearly and
call for little. For balanced groups it is the square root of the one-way ANOVA F statistic.
"""

from __future__ import annotations

import numpy as np


def group_means(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and size of every group.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Observations.
    groups : ndarray of int, shape (n,)
        Group index (0-based) of each observation.

    Returns
    -------
    means, counts : ndarray of shape (n_groups,)
        NaN mean for an empty group.
    """
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups, dtype=int)
    counts = np.bincount(groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(groups, weights=values, minlength=counts.size) / counts
    return means, counts


def within_variance(values: np.ndarray, groups: np.ndarray) -> float:
    """Pooled within-group variance (each group's squares about its own mean).

    NaN when no group has two observations.
    """
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups, dtype=int)
    means, counts = group_means(values, groups)
    squares = np.bincount(groups, weights=(values - means[groups]) ** 2, minlength=counts.size)
    dof = int(np.sum(np.maximum(counts - 1, 0)))
    return float(squares.sum() / dof) if dof > 0 else float("nan")


def means_spread_ratio(
    means: np.ndarray, noise_variance: np.ndarray, parent: np.ndarray | None = None
) -> float:
    """Spread of group means relative to the spread their noise alone would give.

    Parameters
    ----------
    means : ndarray of shape (k,)
        Estimated group means.
    noise_variance : ndarray of shape (k,) or float
        Sampling variance of each estimate (within-group variance over group size).
    parent : ndarray of int, shape (k,), optional
        Parent group of each group (district of a school): the spread is then measured
        around each parent's mean (pooled over parents), i.e. at this level of a nested design.

    Returns
    -------
    float
        ``sqrt(var(means) / mean(noise_variance))``; NaN when undefined (fewer than two
        groups, or no parent with two groups).
    """
    means = np.asarray(means, dtype=float)
    noise = np.broadcast_to(np.asarray(noise_variance, dtype=float), means.shape)
    if parent is None:
        between = float(np.var(means, ddof=1)) if means.size > 1 else float("nan")
    else:
        between = within_variance(means, parent)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sqrt(between / np.mean(noise)))


def spread_ratio(values: np.ndarray, groups: np.ndarray, parent: np.ndarray | None = None) -> float:
    """Spread of group sample means relative to within-group noise, from raw observations.

    ``sqrt(var(group means) / (s_w^2 * mean(1 / n_j)))`` with ``s_w^2`` the pooled
    within-group variance: for balanced groups the square root of the one-way ANOVA F
    statistic (about 1 when the groups do not differ, large when they clearly do).

    Parameters
    ----------
    values : ndarray of shape (n,)
        Observations.
    groups : ndarray of int, shape (n,)
        Group index (0-based) of each observation.
    parent : ndarray of int, shape (n_groups,), optional
        Parent of each group: measure the spread of group means around their parent's
        mean (see :func:`means_spread_ratio`).

    Returns
    -------
    float
        NaN when undefined (a single group, or no group with two observations).
    """
    means, counts = group_means(values, groups)
    return means_spread_ratio(means, within_variance(values, groups) / counts, parent)
