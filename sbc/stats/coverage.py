"""Interval coverage, z-scores and posterior contraction across simulations."""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
"""Nominal levels of the central posterior intervals that are checked."""


def covered(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Whether each true value lies inside its interval ``[lower, upper]``."""
    truth = np.asarray(truth, dtype=float)
    return (np.asarray(lower) <= truth) & (truth <= np.asarray(upper))


def binomial_interval(successes: int, trials: int, prob: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) confidence interval for a proportion.

    Parameters
    ----------
    successes, trials : int
        Observed successes out of ``trials``.
    prob : float
        Confidence level.

    Returns
    -------
    lower, upper : float
        NaN for zero trials.
    """
    if trials == 0:
        return float("nan"), float("nan")
    alpha = 1 - prob
    lower = stats.beta.ppf(alpha / 2, successes, trials - successes + 1) if successes else 0.0
    upper = (
        stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
        if successes < trials
        else 1.0
    )
    return float(lower), float(upper)


def z_scores(post_mean: np.ndarray, post_sd: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(posterior mean - truth) / posterior sd`` for each simulation.

    A degenerate posterior (sd 0, e.g. the spread of group means under complete pooling)
    gives an infinite z-score where it misses the truth and NaN where it hits it exactly.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(post_mean) - np.asarray(truth)) / np.asarray(post_sd)


def contraction_each(post_sd: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Posterior contraction of each simulation: ``1 - posterior variance / prior variance``.

    The prior variance is the variance of the true values, as in :func:`contraction`; the
    z-score against this contraction, one point per simulation, is the figure of Schad,
    Betancourt & Vasishth (2021) (the R package SBC's ``plot_contraction``): a calibrated
    posterior keeps its z-scores within about +/-2 at any contraction, an over-confident
    one spreads them wider where it contracts most.

    Returns
    -------
    ndarray of shape (n,)
        All NaN when the prior variance is zero or there are fewer than two simulations.
    """
    post_sd = np.asarray(post_sd, dtype=float)
    truth = np.asarray(truth, dtype=float)
    prior_var = truth.var(ddof=1) if truth.size > 1 else 0.0
    if not prior_var > 0:
        return np.full(post_sd.shape, np.nan)
    return 1.0 - post_sd**2 / prior_var


def contraction(post_sd: np.ndarray, truth: np.ndarray) -> float:
    """Posterior contraction ``1 - mean posterior variance / prior variance``.

    The prior variance is estimated by the variance of the true values, which SBC draws from
    the prior: 0 means the data taught nothing, 1 that they pinned the quantity down.

    Parameters
    ----------
    post_sd : ndarray of shape (n,)
        Posterior sds, one per simulation.
    truth : ndarray of shape (n,)
        True values drawn from the prior.

    Returns
    -------
    float
        NaN when the prior variance is zero or there are fewer than two simulations.
    """
    truth = np.asarray(truth, dtype=float)
    if truth.size < 2:
        return float("nan")
    prior_var = truth.var(ddof=1)
    if prior_var <= 0:
        return float("nan")
    return float(1 - np.mean(np.asarray(post_sd, dtype=float) ** 2) / prior_var)
