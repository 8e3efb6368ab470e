"""Uniformity of SBC ranks across simulations."""

from __future__ import annotations

import numpy as np
from arviz_stats.base import array_stats


def uniformity_pvalue(pit: np.ndarray) -> float:
    """P-value of the hypothesis that fractional ranks are Uniform(0, 1).

    Uses the Cauchy-combined pointwise order-statistic test (``pot_c``) of
    :meth:`arviz_stats.base.array_stats.uniformity_test`, which is sensitive to every kind
    of departure SBC shows: shifted (bias), U-shaped (overconfidence) and humped
    (underconfidence) rank histograms.

    Parameters
    ----------
    pit : ndarray of shape (n,)
        Fractional ranks in [0, 1] (see :func:`sbc.stats.ranks.fractional_rank`).

    Returns
    -------
    float
        The p-value; NaN for fewer than two values.
    """
    pit = np.asarray(pit, dtype=float)
    pit = pit[np.isfinite(pit)]
    if pit.size < 2:
        return float("nan")
    p_value, _, _ = array_stats.uniformity_test(pit, method="pot_c")
    return float(p_value)
