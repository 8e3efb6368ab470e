"""Posterior summaries and per-fit sampler diagnostics."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from arviz_stats.base import array_stats

QUANTILES: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
"""Posterior quantiles stored per estimand: enough for central 50/80/90/95% intervals."""


def quantile_column(q: float) -> str:
    """Column name of quantile ``q``: ``q0.025`` -> ``"q2.5"``, ``0.5`` -> ``"q50"``."""
    return f"q{100 * q:g}"


def summarize(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, sd and :data:`QUANTILES` of each row of pooled draws.

    Parameters
    ----------
    draws : ndarray of shape (k, n)
        ``n`` pooled draws of each of ``k`` quantities.

    Returns
    -------
    dict of str to ndarray of shape (k,)
        ``post_mean``, ``post_sd`` and one entry per quantile (see :func:`quantile_column`).
    """
    draws = np.asarray(draws, dtype=float)
    out = {"post_mean": draws.mean(axis=-1), "post_sd": draws.std(axis=-1, ddof=1)}
    for q, values in zip(QUANTILES, np.quantile(draws, QUANTILES, axis=-1), strict=True):
        out[quantile_column(q)] = values
    return out


def _by_quantity(values: np.ndarray) -> np.ndarray:
    """Reshape ``(chain, draw, *shape)`` to ``(n_quantities, chain, draw)``."""
    values = np.asarray(values, dtype=float)
    return np.moveaxis(values.reshape(*values.shape[:2], -1), -1, 0)


def fit_diagnostics(draws: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Largest rank-normalised R-hat and smallest bulk ESS over every scalar in ``draws``.

    Parameters
    ----------
    draws : mapping of str to ndarray of shape (chain, draw, *shape)
        Posterior draws of one fit.

    Returns
    -------
    dict
        ``max_rhat`` and ``min_ess_bulk``; NaN where undefined (e.g. constant draws).
    """
    stacked = np.concatenate([_by_quantity(v) for v in draws.values()], axis=0)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rhat = np.asarray(array_stats.rhat(stacked), dtype=float)
        ess = np.asarray(array_stats.ess(stacked, method="bulk"), dtype=float)
    return {
        "max_rhat": float(np.nanmax(rhat)) if np.isfinite(rhat).any() else float("nan"),
        "min_ess_bulk": float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan"),
    }
