"""Posterior summaries and per-fit sampler diagnostics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

QUANTILES: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
"""Posterior quantiles stored per estimand: enough for central 50/80/90/95% intervals."""


def quantile_column(q: float) -> str:
    """Column name of quantile ``q``: ``q0.025`` -> ``"q2.5"``, ``0.5`` -> ``"q50"``."""
    return f"q{100 * q:g}"


def summarize(draws: np.ndarray, ordered: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean, sd and :data:`QUANTILES` of each row of pooled draws.

    Parameters
    ----------
    draws : ndarray of shape (k, n)
        ``n`` pooled draws of each of ``k`` quantities.
    ordered : ndarray of shape (k, n), optional
        Each row of ``draws`` already sorted (e.g. by
        :func:`sbc.stats.mcmc.diagnose_sorted`), so as not to sort again; the same values.

    Returns
    -------
    dict of str to ndarray of shape (k,)
        ``post_mean``, ``post_sd`` and one entry per quantile (see :func:`quantile_column`).
    """
    draws = np.asarray(draws, dtype=float)
    out = {"post_mean": draws.mean(axis=-1), "post_sd": draws.std(axis=-1, ddof=1)}
    for q, values in zip(QUANTILES, sorted_quantiles(draws, QUANTILES, ordered), strict=True):
        out[quantile_column(q)] = values
    return out


def sorted_quantiles(
    draws: np.ndarray, levels: tuple[float, ...], ordered: np.ndarray | None = None
) -> np.ndarray:
    """``numpy.quantile(draws, levels, axis=-1)`` (its default, linear method) from one sort.

    ``numpy.quantile`` partitions the rows once per level; one sort and an interpolation
    between neighbours give the same values (to rounding) in a third of the time (12
    quantities x 2000 draws, 9 levels: 0.42 against 1.32 ms), which counts when fits take
    milliseconds. A row with a NaN gives NaN, as in NumPy.

    Parameters
    ----------
    draws : ndarray of shape (k, n)
        Draws of ``k`` quantities.
    levels : tuple of float
        Quantile levels in [0, 1].
    ordered : ndarray of shape (k, n), optional
        Each row of ``draws`` already sorted (the values of rows with a NaN do not matter):
        the sort is skipped.

    Returns
    -------
    ndarray of shape (len(levels), k)
    """
    ordered = np.sort(draws, axis=-1) if ordered is None else ordered
    n = ordered.shape[-1]
    position = np.asarray(levels, dtype=float) * (n - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n - 1)
    weight = position - low
    values = ordered[..., low] + (ordered[..., high] - ordered[..., low]) * weight
    values[np.isnan(draws).any(axis=-1)] = np.nan
    return np.moveaxis(values, -1, 0)


def by_quantity(values: np.ndarray) -> np.ndarray:
    """Reshape ``(chain, draw, *shape)`` draws to ``(n_quantities, chain, draw)``."""
    values = np.asarray(values, dtype=float)
    return np.moveaxis(values.reshape(*values.shape[:2], -1), -1, 0)


def distinct_quantities(first: np.ndarray, draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """``first`` followed by every scalar of ``draws`` not already in ``first``.

    Parameters
    ----------
    first : ndarray of shape (k, chain, draw)
        Quantities kept as they are (the estimands).
    draws : mapping of str to ndarray of shape (chain, draw, *shape)
        Posterior draws; scalars identical to one already kept are left out, so that each
        quantity is diagnosed once.

    Returns
    -------
    ndarray of shape (k + m, chain, draw)
    """
    first = np.asarray(first, dtype=float)
    seen = {np.ascontiguousarray(f).tobytes() for f in first}  # exact matches, in O(k + m)
    extra = []
    for values in draws.values():
        for q in by_quantity(values):
            key = np.ascontiguousarray(q).tobytes()
            if key not in seen:
                seen.add(key)
                extra.append(q)
    return np.concatenate([first, np.asarray(extra).reshape(-1, *first.shape[1:])], axis=0)


def diagnostics_summary(
    rhat: np.ndarray, ess_bulk: np.ndarray, ess_tail: np.ndarray | None = None
) -> dict[str, float]:
    """Largest R-hat and smallest bulk and tail ESS of one fit, ignoring undefined values.

    Parameters
    ----------
    rhat, ess_bulk : ndarray of shape (k,)
        Per-quantity diagnostics (see :func:`sbc.stats.mcmc.diagnose`).
    ess_tail : ndarray of shape (k,), optional
        Per-quantity tail ESS.

    Returns
    -------
    dict
        ``max_rhat``, ``min_ess_bulk`` and ``min_ess_tail``; NaN where no quantity has a
        value (e.g. R-hat of a single chain) or the tail ESS was not given.
    """

    def extreme(values: np.ndarray | None, reduce: Any) -> float:
        values = np.asarray([] if values is None else values, dtype=float)
        return float(reduce(values)) if np.isfinite(values).any() else float("nan")

    return {
        "max_rhat": extreme(rhat, np.nanmax),
        "min_ess_bulk": extreme(ess_bulk, np.nanmin),
        "min_ess_tail": extreme(ess_tail, np.nanmin),
    }
