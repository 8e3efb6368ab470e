"""Is an estimate of predictive accuracy right? Its error against a held-out truth, batched.

SBC asks whether a posterior's intervals cover the truth as often as they claim; this module
asks the same of PSIS-LOO: over simulations, the estimate ``elpd_loo`` (and a difference
between two models, with its standard error) against the held-out truth that every
simulation knows (Sivula, Magnusson, Matamoros & Vehtari 2022 report the SE of a small
difference too small). Arrays in, numbers out.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sbc.stats.coverage import covered

Z95 = float(stats.norm.ppf(0.975))
"""Half-width, in standard errors, of a central 95% normal interval."""


def mean_interval(values: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """Mean of the finite values and its normal interval ``mean +/- z SE`` (NaN if none)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(values.mean())
    half = z * float(values.std(ddof=1)) / np.sqrt(values.size) if values.size > 1 else np.nan
    return mean, mean - half, mean + half


def estimate_error(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Bias and RMSE of an estimate against the truth, over the pairs where both are finite."""
    error = np.asarray(estimate, dtype=float) - np.asarray(truth, dtype=float)
    error = error[np.isfinite(error)]
    if error.size == 0:
        return {"bias": np.nan, "rmse": np.nan, "n": 0}
    return {"bias": float(error.mean()), "rmse": float(np.sqrt(np.mean(error**2))), "n": error.size}


def se_coverage(estimate: np.ndarray, se: np.ndarray, truth: np.ndarray, z: float = Z95) -> float:
    """Share of ``estimate +/- z se`` intervals that contain the truth (finite triples only)."""
    estimate, se, truth = (np.asarray(a, dtype=float) for a in (estimate, se, truth))
    ok = np.isfinite(estimate) & np.isfinite(se) & np.isfinite(truth)
    if not ok.any():
        return np.nan
    half = z * se[ok]
    return float(np.mean(covered(estimate[ok] - half, estimate[ok] + half, truth[ok])))


def noisy_truth_coverage(replicates: int, z: float = Z95) -> float:
    """Coverage of ``+/- z SE`` that a right SE reaches against a truth averaged over replicates.

    Each held-out replicate's elpd varies about as much as the estimate's error (one data set
    of the same size), so a truth averaged over ``replicates`` of them adds ``1 / replicates``
    of that variance: the interval's reach shrinks to ``z / sqrt(1 + 1 / replicates)`` sds.
    """
    return float(2 * stats.norm.cdf(z / np.sqrt(1 + 1 / replicates)) - 1)


def picks_best(estimates: np.ndarray, truths: np.ndarray) -> float:
    """Share of rows where the largest estimate is the model with the largest truth.

    Parameters
    ----------
    estimates, truths : ndarray of shape (simulation, model)
        Rows with a non-finite value are left out.
    """
    estimates, truths = np.asarray(estimates, dtype=float), np.asarray(truths, dtype=float)
    ok = np.isfinite(estimates).all(axis=1) & np.isfinite(truths).all(axis=1)
    if not ok.any():
        return np.nan
    return float(np.mean(estimates[ok].argmax(axis=1) == truths[ok].argmax(axis=1)))
