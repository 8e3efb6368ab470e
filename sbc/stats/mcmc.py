"""Rank-normalised R-hat and bulk/tail ESS, batched over many quantities at once.

The same estimators as :mod:`arviz_stats` (Vehtari, Gelman, Simpson, Carpenter & Bürkner
2021): split chains, rank-normalise with Blom's offset, autocovariances and Geyer's
initial monotone sequence. arviz-stats evaluates them one quantity at a time through
Python-level loops; SBC needs them for every quantity of every fit, so here NumPy sorts
every quantity's split draws at once and compiled kernels (:mod:`sbc.stats._mcmc_kernels`,
numba, imported on the first call) do the rest row by row from that sort: normal scores
from a table, the folded draws' ranks from a merge, and autocovariances only at the lags
Geyer's sequence reads. ``tests/test_mcmc.py`` checks the results equal arviz-stats' to
floating-point precision, and the ranks, scores, R-hat and Geyer's sequence to the bit.

All functions take draws of shape ``(k, chain, draw)`` and return arrays of shape ``(k,)``.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

import numpy as np
from scipy import special


def _split(x: np.ndarray) -> np.ndarray:
    """Split each chain in two halves: ``(k, chain, draw) -> (k, 2 chain, draw // 2)``."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=-2)


def _valid(x: np.ndarray, min_chains: int) -> np.ndarray:
    """Quantities with no NaN, enough chains and at least four draws."""
    ok = ~np.isnan(x).any(axis=(-2, -1))
    if x.shape[-2] < min_chains or x.shape[-1] < 4:
        ok[:] = False
    return ok


@lru_cache(maxsize=1)
def _kernels() -> ModuleType:
    """The compiled kernels, imported (numba) on the first diagnosis of a process."""
    from sbc.stats import _mcmc_kernels

    return _mcmc_kernels


@lru_cache(maxsize=1)
def warm() -> None:
    """Load the kernels now (compile them, the first time on a machine): once a process.

    The first diagnosis of a process otherwise pays it: about 0.15 s from numba's on-disk
    cache (0.3 s with numba's import), 5 s to compile. A worker with a fit timeout calls
    this before its timed fits.
    """
    diagnose(np.arange(8.0).reshape(1, 2, 4))


@lru_cache(maxsize=16)
def _blom_table(n: int) -> np.ndarray:
    """Blom's normal scores of the ranks ``1, 1.5, 2, ..., n`` among ``n`` values (read-only).

    A run of tied values has a whole or half rank (the average of its ranks); the score of
    rank ``r`` is at index ``2 r - 2``, computed once per ``n`` by the expression arviz-stats
    uses, ``ndtri((r - 3/8) / (n + 1/4))``, so that reading it gives the same bits.
    """
    ranks = np.arange(2, 2 * n + 1) / 2
    table = special.ndtri((ranks - 0.375) / (n + 0.25))
    table.flags.writeable = False
    return table


def sort_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``x`` sorted, and its sorting permutation.

    A row of finite values whose spread is even enough is bucket-sorted by a compiled
    kernel (:func:`sbc.stats._mcmc_kernels.bucket_sort`, twice as fast as NumPy's argsort
    on posterior draws); any other row (a heavy tail, many ties, a NaN or an infinite
    value) by :func:`numpy.argsort`. Either way ``ordered`` equals ``numpy.sort(x)``;
    equal values may come in another order than NumPy's in ``order``.

    Parameters
    ----------
    x : ndarray of shape (k, n)
        Rows of values.

    Returns
    -------
    ordered : ndarray of shape (k, n)
        Each row sorted.
    order : ndarray of shape (k, n)
        ``ordered[r] == x[r, order[r]]``.
    """
    x = np.ascontiguousarray(x, dtype=float)
    ordered = np.empty_like(x)
    order = np.empty(x.shape, dtype=np.intp)
    done = np.zeros(x.shape[0], dtype=bool)
    if x.shape[-1]:
        _kernels().bucket_sort_rows(x, order, ordered, done)
    if not done.all():
        rest = ~done
        order[rest] = np.argsort(x[rest], axis=-1)
        ordered[rest] = np.take_along_axis(x[rest], order[rest], axis=-1)
    return ordered, order


def rhat_and_ess_bulk(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalised R-hat and bulk ESS together, sharing the rank normalisation.

    Parameters
    ----------
    x : ndarray of shape (k, chain, draw)
        Draws of ``k`` quantities.

    Returns
    -------
    rhat, ess_bulk : ndarray of shape (k,)
        As :func:`rhat_rank` and :func:`ess_bulk`: the first two results of
        :func:`diagnose`.
    """
    rhat, ess, _ = diagnose(x)
    return rhat, ess


def diagnose(x: np.ndarray, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised R-hat, bulk ESS and tail ESS of every quantity, in one pass.

    The same values as :func:`rhat_rank`, :func:`ess_bulk` and :func:`ess_tail`, computed
    with one sort of the split draws (shared by the normal scores, the folded draws and the
    tail quantiles) and compiled loops for the rest: a fit's diagnostics are a per-fit cost
    of every SBC simulation (see :func:`diagnose_sorted`).

    Parameters
    ----------
    x : ndarray of shape (k, chain, draw)
        Draws of ``k`` quantities.
    prob : float
        The tail ESS is the smaller ESS of the quantiles ``1 - prob`` and ``prob`` (as
        arviz-stats: 0.05 and 0.95 for the default).

    Returns
    -------
    rhat, ess_bulk, ess_tail : ndarray of shape (k,)
    """
    rhat, ess_bulk, ess_tail, _ = diagnose_sorted(x, prob)
    return rhat, ess_bulk, ess_tail


def diagnose_sorted(
    x: np.ndarray, prob: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`diagnose`, and each quantity's pooled draws sorted, from the same sort.

    With an even number of draws per chain the split draws are all the draws, so their
    sort is the pooled draws' sort, which posterior summaries need too
    (:func:`sbc.stats.posterior.summarize`'s ``ordered``). 12 quantities x 2 x 1000
    draws, one thread, best of 5 repeats on a shared 2-core VM: 1.03-1.08 ms a fit (the
    NumPy implementation before the kernels: 4.6-5.0 ms) when NumPy's argsort sorted
    them (0.58 ms of it); :func:`sort_rows` sorts them in 0.27 ms. The kernels compile in
    about 5 s the first time, then load from numba's on-disk cache in 0.15 s in a new
    process (0.3 s with numba's own import).

    Parameters
    ----------
    x : ndarray of shape (k, chain, draw)
        Draws of ``k`` quantities.
    prob : float
        As :func:`diagnose`.

    Returns
    -------
    rhat, ess_bulk, ess_tail : ndarray of shape (k,)
        As :func:`diagnose`.
    ordered : ndarray of shape (k, chain * draw) or None
        Each quantity's draws sorted (all NaN for a quantity with a NaN draw); ``None``
        when the split draws are not all the draws (an odd number of draws per chain) or
        no quantity can be diagnosed.
    """
    x = np.asarray(x, dtype=float)
    k, n_chain, n_draw = x.shape
    out = np.full((3, k), np.nan)
    ok = _valid(x, 1)
    if not ok.any():
        return out[0], out[1], out[2], None
    y = x if ok.all() else x[ok]
    m = y.shape[0]
    flat = _split(y).reshape(m, -1)
    ordered, order = sort_rows(flat)
    levels = np.array(sorted((prob, 1 - prob)), dtype=float)
    every = n_draw % 2 == 0  # the split draws are all the draws: quantiles from the sort
    if every:
        cuts = np.empty((m, 2))
    else:
        cuts = np.quantile(y.reshape(m, -1), levels, axis=-1).T.copy()
    result = np.full((3, m), np.nan)
    _kernels().diagnose_rows(
        flat,
        order,
        2 * n_chain,
        levels,
        cuts,
        not every,
        _blom_table(flat.shape[-1]),
        float(1 / np.log10(flat.shape[-1])),
        n_chain >= 2,
        ordered,
        result,
    )
    out[:, ok] = result
    if not every:
        return out[0], out[1], out[2], None
    if m < k:
        ordered, valid = np.full((k, ordered.shape[-1]), np.nan), ordered
        ordered[ok] = valid
    return out[0], out[1], out[2], ordered


def rhat_rank(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat: the larger of the bulk and folded (tail) values.

    Parameters
    ----------
    x : ndarray of shape (k, chain, draw)
        Draws of ``k`` quantities.

    Returns
    -------
    ndarray of shape (k,)
        NaN where fewer than 2 chains or 4 draws, or where a draw is NaN.
    """
    return rhat_and_ess_bulk(x)[0]


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (rank-normalised split chains).

    Parameters
    ----------
    x : ndarray of shape (k, chain, draw)
        Draws of ``k`` quantities.

    Returns
    -------
    ndarray of shape (k,)
        NaN where fewer than 4 draws or where a draw is NaN.
    """
    return rhat_and_ess_bulk(x)[1]


def ess_tail(x: np.ndarray, prob: float = 0.95) -> np.ndarray:
    """Tail effective sample size: the smaller ESS of the quantiles ``1 - prob`` and ``prob``.

    Parameters
    ----------
    x : ndarray of shape (k, chain, draw)
        Draws of ``k`` quantities.
    prob : float
        The quantiles ``1 - prob`` and ``prob`` are used (as arviz-stats).

    Returns
    -------
    ndarray of shape (k,)
    """
    return diagnose(x, prob)[2]
