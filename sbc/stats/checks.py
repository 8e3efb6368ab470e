"""Predictive checks: a data statistic of the real data against its replicated distribution.

Prior and posterior predictive checks (Box 1980; Gelman, Meng & Stern 1996) compare a
statistic ``T(y)`` of the observed data with ``T`` of data sets replicated from the prior
or from a model's posterior. The p-value is the share of replicates at or above the
observed value; a value near 0 or 1 says the observed data are unusual under the model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TAIL = 0.025
"""A predictive p-value below this or above ``1 - TAIL`` is flagged (two-sided, 5% in all)."""

SUMMARIES: tuple[str, ...] = ("mean", "sd", "min", "max")
"""Generic statistics of every data array, so that any scenario gets checks."""


def predictive_pvalue(replicates: np.ndarray, observed: float) -> float:
    """Share of replicated statistics at or above the observed one.

    Parameters
    ----------
    replicates : ndarray of shape (m,)
        The statistic of each replicated data set (non-finite values are left out).
    observed : float
        The statistic of the real data.

    Returns
    -------
    float
        ``mean(replicates >= observed)``; NaN when the observed value is not finite or no
        replicate is.
    """
    values = np.asarray(replicates, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if not values.size or not np.isfinite(observed):
        return float("nan")
    return float(np.mean(values >= observed))


def flagged(p_value: float, tail: float = TAIL) -> bool:
    """Whether a predictive p-value lies in either tail (below ``tail`` or above ``1 - tail``)."""
    return bool(np.isfinite(p_value) and (p_value < tail or p_value > 1 - tail))


def array_summaries(data: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean, sd, min and max of every data array, named ``mean(key)`` ...

    Parameters
    ----------
    data : mapping of str to ndarray
        One data set.

    Returns
    -------
    dict of str to float
        Four statistics per key, in key order (NaN for an empty or non-numeric array).
    """
    out: dict[str, float] = {}
    for key, value in data.items():
        try:
            values = np.asarray(value, dtype=float).ravel()
        except (TypeError, ValueError):
            values = np.array([])
        values = values[np.isfinite(values)]
        found = values.size > 0
        out[f"mean({key})"] = float(values.mean()) if found else float("nan")
        out[f"sd({key})"] = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        out[f"min({key})"] = float(values.min()) if found else float("nan")
        out[f"max({key})"] = float(values.max()) if found else float("nan")
    return out


def thinned_index(total: int, count: int) -> np.ndarray:
    """``min(count, total)`` evenly spaced indices into ``total`` draws (no randomness)."""
    if total < 1:
        return np.array([], dtype=int)
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))
