"""Rank-normalised R-hat and bulk/tail ESS, batched over many quantities at once.

The same estimators as :mod:`arviz_stats` (Vehtari, Gelman, Simpson, Carpenter & Bürkner
2021): split chains, rank-normalise with Blom's offset, autocovariances and Geyer's
initial monotone sequence. arviz-stats evaluates them one quantity at a time through a
Python-level ufunc; SBC needs them for every quantity of every fit, so here the ranking,
normal scores, autocovariances and Geyer's sequence are computed for all quantities at
once, from one sort; the normal scores come from a table, and the autocovariances at the
few lags Geyer's sequence reads (:data:`SHORT_LAGS`) from blocked products instead of an
FFT of every lag. ``tests/test_mcmc.py`` checks the results equal arviz-stats' to
floating-point precision, and Geyer's sequence equal to arviz-stats' loop to the bit.

All functions take draws of shape ``(k, chain, draw)`` and return arrays of shape ``(k,)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special
from scipy.fft import next_fast_len


def _split(x: np.ndarray) -> np.ndarray:
    """Split each chain in two halves: ``(k, chain, draw) -> (k, 2 chain, draw // 2)``."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=-2)


def _ranks(flat: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis with ties averaged (``scipy.stats.rankdata``), batched."""
    order = np.argsort(flat, axis=-1)
    return _ranks_from_sorted(np.take_along_axis(flat, order, axis=-1), order)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each quantity over all its chains and draws (Blom's 3/8 offset)."""
    flat = x.reshape(x.shape[0], -1)
    return _normal_scores(_ranks(flat), flat.shape[-1]).reshape(x.shape)


def _rhat(x: np.ndarray) -> np.ndarray:
    """Classic R-hat of ``(k, chain, draw)`` draws."""
    n = x.shape[-1]
    between = n * np.var(x.mean(axis=-1), axis=-1, ddof=1)
    within = np.mean(np.var(x, axis=-1, ddof=1), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _valid(x: np.ndarray, min_chains: int) -> np.ndarray:
    """Quantities with no NaN, enough chains and at least four draws."""
    ok = ~np.isnan(x).any(axis=(-2, -1))
    if x.shape[-2] < min_chains or x.shape[-1] < 4:
        ok[:] = False
    return ok


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
    with one sort of the split draws (shared by the normal scores, the median and the tail
    quantiles) and one batch of autocovariances for all three effective sample sizes: a
    fit's diagnostics are a per-fit cost of every SBC simulation.

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
    x = np.asarray(x, dtype=float)
    out = [np.full(x.shape[0], np.nan) for _ in range(3)]
    ok = _valid(x, 1)
    if not ok.any():
        return out[0], out[1], out[2]
    y = x[ok]
    m, n_draw = y.shape[0], y.shape[-1]
    split = _split(y)
    flat = split.reshape(m, -1)
    order = np.argsort(flat, axis=-1)
    ordered = np.take_along_axis(flat, order, axis=-1)
    z = _scores_from_sorted(ordered, order).reshape(split.shape)
    if n_draw % 2 == 0:  # the split draws are all the draws: quantiles from the same sort
        cuts = [_quantile_sorted(ordered, q) for q in sorted((prob, 1 - prob))]
    else:
        pooled = y.reshape(m, -1)
        cuts = [np.quantile(pooled, q, axis=-1) for q in sorted((prob, 1 - prob))]
    indicators = [_split((y <= cut[:, None, None]).astype(float)) for cut in cuts]
    ess = _ess(np.concatenate([z, *indicators]))
    out[1][ok] = ess[:m]
    out[2][ok] = np.minimum(ess[m : 2 * m], ess[2 * m :])
    if y.shape[-2] >= 2:
        folded = _folded_scores(ordered, order).reshape(split.shape)
        out[0][ok] = _python_max(_rhat(z), _rhat(folded))
    return out[0], out[1], out[2]


def _median_sorted(ordered: np.ndarray) -> np.ndarray:
    """``numpy.median`` of each row of already sorted values, bit for bit.

    numpy averages the two middle values as ``(a + b) / 2``; the folded ranks need exactly
    that value: the two middle draws are equally far from it, and the folded ranks must see
    that tie as arviz-stats does (an interpolated median can break it by one ulp and move
    R-hat by 5% on 2 x 4 draws).
    """
    n = ordered.shape[-1]
    middle = ordered[:, n // 2]
    return middle if n % 2 else (ordered[:, n // 2 - 1] + middle) / 2


def _folded_scores(ordered: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Normal scores of ``|draw - median|`` of each row, from the rows already sorted.

    The same values as ``_z_scale(np.abs(split - median))``, without a second sort: below
    the median the folded draws fall as the sorted draws rise, above it they rise, so the
    folded draws in sorted order are the merge of two sorted runs, which a stable sort
    (timsort) does in linear time (0.05 ms against 0.7 ms for 12 x 2000 draws). Every
    folded value is computed as ``np.abs(draw - median)`` computes it (``median - draw``
    below it is the same float), so the ranks, and the scores, are the same.

    Parameters
    ----------
    ordered : ndarray of shape (k, n)
        Each row's draws sorted ascending.
    order : ndarray of shape (k, n)
        The sorting permutation: ``ordered = take_along_axis(flat, order)``.

    Returns
    -------
    ndarray of shape (k, n)
        Blom's normal scores of the folded draws, in the rows' original order.
    """
    n = ordered.shape[-1]
    median = _median_sorted(ordered)
    low = n // 2  # ordered[:, :low] <= median <= ordered[:, low:]
    runs = np.concatenate(
        [median[:, None] - ordered[:, :low][:, ::-1], ordered[:, low:] - median[:, None]], axis=-1
    )
    merge = np.argsort(runs, axis=-1, kind="stable")
    position = np.where(merge < low, low - 1 - merge, merge)  # index into ``ordered``
    fold_order = np.take_along_axis(order, position, axis=-1)
    return _scores_from_sorted(np.take_along_axis(runs, merge, axis=-1), fold_order)


def _python_max(bulk: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """``max(bulk, tail)`` element by element as Python's ``max`` takes it (arviz-stats').

    Unlike ``np.maximum``, a NaN tail R-hat (folded draws all equal) leaves the bulk value,
    which may be ``inf`` (chains that never overlap); a NaN bulk value stays NaN.
    """
    return np.where(tail > bulk, tail, bulk)


def _ranks_from_sorted(ordered: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Average ranks (1..n, ties averaged) of rows already sorted by ``order``."""
    k, n = ordered.shape
    starts = np.ones((k, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    first = np.flatnonzero(starts.ravel()) % n
    average = first + (np.bincount(group) - 1) / 2 + 1
    ranks = np.empty((k, n))
    np.put_along_axis(ranks, order, average[group].reshape(k, n), axis=-1)
    return ranks


def _normal_scores(ranks: np.ndarray, n: int) -> np.ndarray:
    """Blom's normal scores of ranks among ``n`` values."""
    return special.ndtri((ranks - 0.375) / (n + 0.25))


@lru_cache(maxsize=16)
def _blom_table(n: int) -> np.ndarray:
    """Blom's normal scores of the ranks ``1..n`` among ``n`` values (read-only)."""
    table = _normal_scores(np.arange(1, n + 1, dtype=float), n)
    table.flags.writeable = False
    return table


def _scores_from_sorted(ordered: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``_normal_scores(_ranks_from_sorted(ordered, order), n)``, bit for bit, from a table.

    A value without ties has an integer rank, whose score is read from :func:`_blom_table`
    (computed once per ``n``, by the same expression); only tied values' average ranks go
    through ``ndtri``: 12 x 4000 draws without ties take 0.1 ms against 0.6 ms.

    Parameters
    ----------
    ordered : ndarray of shape (k, n)
        Each row's values sorted ascending.
    order : ndarray of shape (k, n)
        The sorting permutation: ``ordered = take_along_axis(flat, order)``.

    Returns
    -------
    ndarray of shape (k, n)
        Blom's normal scores of the average ranks, in the rows' original order.
    """
    k, n = ordered.shape
    table = _blom_table(n)
    same = np.zeros((k, n + 1), dtype=bool)  # same[:, j + 1]: value j equals value j + 1
    np.equal(ordered[:, 1:], ordered[:, :-1], out=same[:, 1:n])
    if not same.any():
        in_order = np.broadcast_to(table, (k, n))
    else:  # each run of ties gets its average rank's score
        in_order = np.tile(table, (k, 1))
        start = np.flatnonzero((same[:, 1:] & ~same[:, :-1]).ravel())  # into (k, n)
        stop = np.flatnonzero((~same[:, 1:] & same[:, :-1]).ravel()) + 1
        counts = stop - start
        first = start % n
        average = first + (counts - 1) / 2 + 1  # as _ranks_from_sorted
        tied = np.repeat(start - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        in_order.ravel()[tied] = np.repeat(_normal_scores(average, n), counts)
    out = np.empty((k, n))
    np.put_along_axis(out, order, in_order, axis=-1)
    return out


def _quantile_sorted(ordered: np.ndarray, q: float) -> np.ndarray:
    """``numpy.quantile`` (linear interpolation) of each row of already sorted values."""
    n = ordered.shape[-1]
    position = q * (n - 1)
    low = int(np.floor(position))
    high = min(low + 1, n - 1)
    frac = position - low
    a, b = ordered[:, low], ordered[:, high]
    # numpy's _lerp: a + (b - a) t, computed from the nearer end
    return np.where(frac >= 0.5, b - (b - a) * (1 - frac), a + (b - a) * frac)


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


def _autocov(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    m = next_fast_len(2 * n)
    centred = x - x.mean(axis=-1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=-1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=m, axis=-1)[..., :n] / n


SHORT_LAGS = 32
"""Autocovariances first computed at lags ``0..SHORT_LAGS - 1`` only (see :func:`_ess`).

Geyer's sequence reads the autocorrelations up to its first non-positive pair of lags; in
30 heights ``partial`` fits (12 quantities, 2 x 1000 draws, bulk and both tail series:
1080 series) that was lag 7 at the median, 19 at the 99th percentile and 23 at most.
:func:`diagnose` of those fits, one thread, best of 5 repeats on a shared 2-core VM, ms a
fit: 16 lags 2.6-2.9, 24 lags 2.6-3.2, 32 lags 2.6-3.0, 48 lags 4.0-4.3, every lag by FFT
3.2-4.0 (the autocovariances alone, 144 series of 500: 0.37 against 0.93 ms). 32 is as
fast as fewer within the noise and covered every series seen; a series that needs more
lags gets them all by FFT."""


def _autocov_short(centred: np.ndarray, lags: int) -> np.ndarray:
    """Autocovariances at lags ``0..lags - 1`` of centred series, by blocked products.

    ``sum_i c[i] c[i + t] / n`` for each lag ``t``, as :func:`_autocov` gives for every lag
    (the same values up to rounding: a sum of products instead of an FFT). Each series is
    cut into blocks of ``lags`` values; a lag pairs a value with one in its own block or
    the next, so two batched matrix products of blocks hold every product needed.

    Parameters
    ----------
    centred : ndarray of shape (s, n)
        Series with their means subtracted.
    lags : int
        Number of lags, at most ``n``.

    Returns
    -------
    ndarray of shape (s, lags)
    """
    s, n = centred.shape
    m = -(-n // lags) + 1  # blocks, the last all zeros so that every block has a successor
    blocks = np.zeros((s, m, lags))
    blocks.reshape(s, -1)[:, :n] = centred
    head = np.ascontiguousarray(blocks[:, :-1].transpose(0, 2, 1))
    pairs = np.empty((s, lags, 2 * lags))  # [a, b]: value a of a block times value b of it
    np.matmul(head, blocks[:, :-1], out=pairs[:, :, :lags])  # or, b - lags, of the next
    np.matmul(head, blocks[:, 1:], out=pairs[:, :, lags:])
    step = pairs.strides
    # lag t is the sum over a of pairs[a, a + t]: a diagonal, read in place
    diagonals = np.lib.stride_tricks.as_strided(
        pairs, shape=(s, lags, lags), strides=(step[0], step[1] + step[2], step[2])
    )
    return diagonals.sum(axis=1) / n


def _ess(x: np.ndarray, lags: int | None = SHORT_LAGS) -> np.ndarray:
    """Effective sample size of ``(k, chain, draw)`` draws (arviz-stats' ``_ess``).

    Geyer's sequence stops at the first pair of lags whose autocorrelations do not sum to
    a positive value, and reads no lag after it; the autocovariances are computed at the
    first ``lags`` lags (:func:`_autocov_short`), and at every lag by FFT only for a series
    whose sequence runs past them (or for every series, ``lags=None``). The result is the
    same either way, up to the rounding of the autocovariances.
    """
    _, n_chain, n_draw = x.shape
    constant = (x.max(axis=(-2, -1)) - x.min(axis=(-2, -1))) < np.finfo(float).resolution
    total = n_chain * n_draw
    if lags is None or n_draw <= 2 * lags:
        out = _geyer(_rho(x, _autocov(x)), total)
    else:
        centred = x - x.mean(axis=-1, keepdims=True)
        short = _autocov_short(centred.reshape(-1, n_draw), lags)
        rho = _rho(x, short.reshape(*x.shape[:2], lags))
        out = _geyer(rho, total)
        long = ~_stops_within(rho)
        if long.any():
            out[long] = _geyer(_rho(x[long], _autocov(x[long])), total)
    out[constant] = total
    return out


def _rho(x: np.ndarray, acov: np.ndarray) -> np.ndarray:
    """Autocorrelations of ``(k, chain, draw)`` draws from their autocovariances by chain."""
    n_chain, n_draw = x.shape[-2:]
    mean_var = acov[:, :, 0].mean(axis=-1) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(x.mean(axis=-1), axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]


def _stops_within(rho: np.ndarray) -> np.ndarray:
    """Rows whose Geyer sequence stops within the lags given (:func:`_geyer` reads no more)."""
    n = rho.shape[-1]
    last = max(0, -(-(n - 2) // 2) - 1)  # as _geyer: the pairs it can load
    with np.errstate(invalid="ignore", over="ignore"):
        sums = np.concatenate(
            [1.0 + rho[:, 1:2], rho[:, 2 : 2 * last + 1 : 2] + rho[:, 3 : 2 * last + 2 : 2]],
            axis=-1,
        )
    return (~(sums > 0.0)).any(axis=-1)


def _geyer(rho: np.ndarray, total: int) -> np.ndarray:
    """ESS of each row of autocorrelations by Geyer's initial monotone sequence.

    arviz-stats' loop over lags for one quantity, run for all rows at once and with the
    same floating-point operations, so every value is the same bit for bit: the
    autocorrelations are summed in pairs ``(rho[2j], rho[2j + 1])`` (the first pair is
    ``(1, rho[1])``) up to the first pair whose sum is not positive (pair ``J``, kept if its
    sum is zero, and its even term kept if positive); the pairs before it are made
    non-increasing, each pair that exceeds the one before replaced by that pair's mean.

    Parameters
    ----------
    rho : ndarray of shape (k, n)
        Autocorrelations of ``k`` quantities at lags ``0..n-1``.
    total : int
        Number of draws (chains x draws per chain).

    Returns
    -------
    ndarray of shape (k,)
    """
    k, n = rho.shape
    last = max(0, -(-(n - 2) // 2) - 1)  # arviz-stats loads pairs j = 1.. while 2j - 1 < n - 3
    sums = np.empty((k, last + 1))
    with np.errstate(invalid="ignore", over="ignore"):  # arviz-stats stops at those
        sums[:, 0] = 1.0 + rho[:, 1]
        sums[:, 1:] = rho[:, 2 : 2 * last + 1 : 2] + rho[:, 3 : 2 * last + 2 : 2]
    stops = ~(sums > 0.0)  # NaN stops, as in arviz-stats' ``while ... > 0``
    first_stop = np.where(stops.any(axis=-1), stops.argmax(axis=-1), last + 1)
    pairs = np.minimum(first_stop, last)  # J: the last pair loaded, per row
    rows = np.arange(k)
    column = np.arange(n)
    rho_t = np.where(column < 2 * pairs[:, None], rho, 0.0)
    rho_t[:, 0] = 1.0
    rho_t[:, 1] = rho[:, 1]
    loaded = pairs >= 1
    keep = loaded & (sums[rows, pairs] >= 0.0)
    even = np.where(loaded, rho[rows, np.minimum(2 * pairs, n - 1)], 1.0)
    odd = rho[rows, np.minimum(2 * pairs + 1, n - 1)]
    rho_t[keep, 2 * pairs[keep]] = even[keep]
    rho_t[keep, 2 * pairs[keep] + 1] = odd[keep]
    positive = even > 0
    rho_t[positive, 2 * pairs[positive]] = even[positive]
    for j in range(1, int(pairs.max(initial=0))):  # the monotone sequence, pair by pair
        previous = rho_t[:, 2 * j - 2] + rho_t[:, 2 * j - 1]
        fix = (j < pairs) & ((rho_t[:, 2 * j] + rho_t[:, 2 * j + 1]) > previous)
        rho_t[fix, 2 * j] = previous[fix] / 2.0
        rho_t[fix, 2 * j + 1] = rho_t[fix, 2 * j]
    floor = 1 / np.log10(total)
    ends = 2 * pairs  # max_t + 1
    tau = np.empty(k)
    for end in np.unique(ends):  # numpy's sum of each row's slice, as arviz-stats sums
        same = np.flatnonzero(ends == end)  # (rows of one length: each summed on its own)
        tau[same] = -1.0 + 2.0 * np.sum(rho_t[same, :end], axis=-1)
        tau[same] += np.sum(rho_t[same, end : end + 1], axis=-1)
    tau = np.maximum(tau, floor)
    with np.errstate(invalid="ignore"):
        out = total / tau
    out[np.isnan(rho_t).any(axis=-1)] = np.nan
    return out


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
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape[0], np.nan)
    ok = _valid(x, 1)
    if ok.any():
        y = x[ok]
        flat = y.reshape(y.shape[0], -1)
        ess = []
        for q in sorted((prob, 1 - prob)):
            cut = np.quantile(flat, q, axis=-1)[:, None, None]
            ess.append(_ess(_split((y <= cut).astype(float))))
        out[ok] = np.minimum(*ess)
    return out
