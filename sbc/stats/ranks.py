"""Thinning and SBC ranks: this is where a rank is computed.

For a true value ``theta`` and ``L`` roughly independent posterior draws, the SBC rank is
the number of draws below ``theta``; ties are broken uniformly at random, so under a
calibrated posterior the rank is uniform on ``0..L`` (Talts et al., 2018).
"""

from __future__ import annotations

import numpy as np

from sbc.stats import mcmc


def thinning_factor(
    draws: np.ndarray, ess_bulk: np.ndarray | None = None, ess_tail: np.ndarray | None = None
) -> int:
    """Factor that leaves thinned draws roughly independent, from their effective sample size.

    Uses the smallest of the bulk and tail (95%) ESS over all quantities, as
    :func:`arviz_stats.thin_factor` with ``reduce_func="min"``: the factor is
    ``floor(n_draws / min_ess)``, at least 1.

    Parameters
    ----------
    draws : ndarray of shape (n_quantities, chain, draw)
        Posterior draws of the quantities to be ranked.
    ess_bulk, ess_tail : ndarray of shape (n_quantities,), optional
        Their bulk and tail ESS, if already computed.

    Returns
    -------
    int
        Keep every ``factor``-th draw of each chain.
    """
    draws = np.asarray(draws, dtype=float)
    if draws.shape[-1] < 4:
        return 1
    if ess_bulk is None or ess_tail is None:  # both from one pass of the diagnostics
        _, bulk, tail = mcmc.diagnose(draws, prob=0.95)
        ess_bulk = bulk if ess_bulk is None else ess_bulk
        ess_tail = tail if ess_tail is None else ess_tail
    ess = np.minimum(ess_bulk, ess_tail)
    ess = ess[np.isfinite(ess)]
    if ess.size == 0:
        return 1
    n = draws.shape[-2] * draws.shape[-1]
    return max(1, int(np.floor(n / max(ess.min(), 1.0))))


def thin(draws: np.ndarray, factor: int) -> np.ndarray:
    """Keep every ``factor``-th draw of each chain and pool the chains.

    Parameters
    ----------
    draws : ndarray of shape (..., chain, draw)
        Draws to thin.
    factor : int
        Thinning factor, at least 1.

    Returns
    -------
    ndarray of shape (..., L)
        ``L = chain * ceil(draw / factor)`` pooled draws.
    """
    if factor < 1:
        raise ValueError(f"thinning factor must be at least 1, got {factor}")
    kept = np.asarray(draws)[..., ::factor]
    return kept.reshape(*kept.shape[:-2], -1)


def rank_statistic(truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each true value among its posterior draws, ties broken uniformly at random.

    Parameters
    ----------
    truth : ndarray of shape (k,)
        True values.
    draws : ndarray of shape (k, L)
        ``L`` posterior draws for each true value.
    rng : numpy.random.Generator
        Source of the tie-breaking randomness.

    Returns
    -------
    ndarray of int, shape (k,)
        Ranks in ``0..L``.
    """
    truth = np.asarray(truth, dtype=float)[:, None]
    draws = np.asarray(draws, dtype=float)
    below = np.sum(draws < truth, axis=-1)
    ties = np.sum(draws == truth, axis=-1)
    return below + rng.integers(0, ties + 1)


def fractional_rank(rank: np.ndarray, max_rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Continuous PIT value ``(rank + U) / (max_rank + 1)`` with ``U ~ Uniform(0, 1)``.

    If ``rank`` is uniform on ``0..max_rank``, the result is exactly Uniform(0, 1), which
    lets ranks with different ``max_rank`` be pooled and tested for uniformity.

    Parameters
    ----------
    rank : ndarray of int
        Ranks from :func:`rank_statistic`.
    max_rank : ndarray of int
        The number of draws ``L`` each rank was computed among.
    rng : numpy.random.Generator
        Source of ``U``.

    Returns
    -------
    ndarray of float in [0, 1]
    """
    rank = np.asarray(rank, dtype=float)
    return (rank + rng.uniform(size=rank.shape)) / (np.asarray(max_rank, dtype=float) + 1.0)
