"""Compiled (numba) kernels of :mod:`sbc.stats.mcmc`: one fit's diagnostics, row by row.

Imported only when draws are diagnosed (:func:`sbc.stats.mcmc._kernels`), so that
importing :mod:`sbc.stats.mcmc` does not import numba. Every sum that arviz-stats leaves
to NumPy is NumPy's pairwise sum (:func:`pairwise_sum`), and every other operation is
arviz-stats' own, in its order, so that the ranks, normal scores, R-hat and Geyer's
sequence are arviz-stats' to the bit; only the autocovariances differ (a direct sum of
products at the lags Geyer's sequence reads, instead of an FFT of every lag), by rounding.
"""

from __future__ import annotations

import numba
import numpy as np

RESOLUTION = float(np.finfo(float).resolution)
"""arviz-stats' threshold of a constant series (range below it: the ESS is the draw count)."""

PAD = 8
"""Zeros after each centred series (:func:`_autocov_block` reads up to 7 values past it)."""

LAG_BLOCK = 8
"""Autocovariances are computed in blocks of this many lags, a block only when Geyer's
sequence reads into it (:func:`ess`).

Geyer's sequence stops at lag 7 at the median, 19 at the 99th percentile and 23 at most
(1080 series of 30 heights ``partial`` fits: 12 quantities, 2 x 1000 draws, bulk and both
tail series). :func:`sbc.stats.mcmc.diagnose` of five such fits, one thread, best of 5
repeats on a shared 2-core VM, ms a fit (NumPy's argsort, 0.58 ms, included): blocks of
4 lags 1.41-1.48, 8 lags 1.03-1.06, 12 lags 1.21-1.29, 16 lags 1.07-1.12, 32 lags
1.27-1.32 (a multiple of 8 is one pass of :func:`_autocov_block` a block)."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _block_sum(a: np.ndarray, start: int, n: int) -> float:
    """NumPy's sum of at most 128 values: eight accumulators (fewer than 8 values in turn)."""
    if n < 8:
        res = -0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = start + 8
    end = start + n - n % 8
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + n:
        res += a[i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pairwise_sum(a: np.ndarray, start: int, n: int) -> float:
    """``numpy.sum(a[start : start + n])`` bit for bit: NumPy's pairwise summation.

    Blocks of at most 128 values are summed as :func:`_block_sum`; a longer run is the sum
    of its halves (the first a multiple of eight long). The halving is walked with an
    explicit stack, not by recursion: numba segfaults loading a recursive function from its
    cache (numba issue 6061).
    """
    if n <= 128:
        return _block_sum(a, start, n)
    nodes = np.empty((64, 3), dtype=np.int64)  # start, length, left half summed
    left = np.empty(64)  # a node's left half's sum, once summed
    nodes[0, 0], nodes[0, 1], nodes[0, 2] = start, n, 0
    top = 0
    while True:
        length = nodes[top, 1]
        if length > 128:  # descend into the left half
            half = length // 2 - (length // 2) % 8
            nodes[top + 1, 0], nodes[top + 1, 1], nodes[top + 1, 2] = nodes[top, 0], half, 0
            top += 1
            continue
        value = _block_sum(a, nodes[top, 0], length)
        while top > 0:  # hand the sum up until a node's right half is still to sum
            parent = top - 1
            if nodes[parent, 2] == 0:
                left[parent] = value
                nodes[parent, 2] = 1
                length = nodes[parent, 1]
                half = length // 2 - (length // 2) % 8
                nodes[top, 0] = nodes[parent, 0] + half
                nodes[top, 1], nodes[top, 2] = length - half, 0
                break
            value = left[parent] + value
            top = parent
        if top == 0:
            return value


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _var(a: np.ndarray, work: np.ndarray) -> float:
    """``numpy.var(a, ddof=1)`` bit for bit (``work``: scratch of ``a``'s length)."""
    n = a.shape[0]
    mean = pairwise_sum(a, 0, n) / n
    for i in range(n):
        d = a[i] - mean
        work[i] = d * d
    return pairwise_sum(work, 0, n) / (n - 1)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scatter_scores(values: np.ndarray, target: np.ndarray, table: np.ndarray, out: np.ndarray):
    """Blom's scores of sorted ``values``, ties averaged, written to ``out[target[i]]``.

    A run of equal values ``i..j-1`` (0-based) has the average rank ``(i + j + 1) / 2``,
    whose score is ``table[i + j - 1]`` (:func:`sbc.stats.mcmc._blom_table`); the value
    at ``i`` without ties has ``table[2 i]``, written first for all, then the runs mended.
    """
    n = values.shape[0]
    for i in range(n):
        out[target[i]] = table[2 * i]
    i = 0
    while i < n - 1:
        if values[i + 1] != values[i]:
            i += 1
            continue
        j = i + 2
        while j < n and values[j] == values[i]:
            j += 1
        score = table[i + j - 1]
        for p in range(i, j):
            out[target[p]] = score
        i = j


@numba.njit(cache=True, nogil=True, error_model="numpy")
def scores(ordered: np.ndarray, order: np.ndarray, table: np.ndarray, out: np.ndarray):
    """Normal scores of one row's draws (``scipy.stats.rankdata``, Blom), in draw order.

    ``ordered`` is the row sorted, ``order`` its sorting permutation; ``out`` receives the
    score of draw ``order[i]`` at ``out[order[i]]``.
    """
    _scatter_scores(ordered, order, table, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def folded_scores(
    ordered: np.ndarray,
    order: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
    merged: np.ndarray,
    target: np.ndarray,
):
    """Normal scores of ``|draw - median|`` of one row, in draw order, without a sort.

    Below the median the folded draws fall as the sorted draws rise, above it they rise:
    the folded draws in sorted order are the merge of two sorted runs, taken here in one
    linear pass (with a branch per value; selects instead were slower: 12 rows of 2000
    draws, scores included, 0.07 against 0.13 ms). Each folded value is the float
    ``abs(draw - median)`` gives (``median - draw`` below it), the median NumPy's (the two
    middle draws averaged as ``(a + b) / 2``), so that a tie at the median is one, as
    arviz-stats sees it. ``merged`` and ``target`` are scratch of the row's length.
    """
    n = ordered.shape[0]
    low = n // 2  # ordered[:low] <= median <= ordered[low:]
    median = ordered[low] if n % 2 else (ordered[low - 1] + ordered[low]) / 2
    a, b = low - 1, low  # each run's smallest value left: ordered[a] (below), ordered[b]
    for k in range(n):
        if b >= n or (a >= 0 and median - ordered[a] <= ordered[b] - median):
            merged[k] = median - ordered[a]
            target[k] = order[a]
            a -= 1
        else:
            merged[k] = ordered[b] - median
            target[k] = order[b]
            b += 1
    _scatter_scores(merged, target, table, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rhat(x: np.ndarray, work: np.ndarray) -> float:
    """arviz-stats' ``_rhat`` of ``(chain, draw)`` values, bit for bit.

    ``work`` is scratch of at least ``draw`` values.
    """
    n_chain, n = x.shape
    means = np.empty(n_chain)
    variances = np.empty(n_chain)
    for c in range(n_chain):
        chain = x[c]
        mean = pairwise_sum(chain, 0, n) / n
        for i in range(n):
            d = chain[i] - mean
            work[i] = d * d
        means[c] = mean
        variances[c] = pairwise_sum(work, 0, n) / (n - 1)
    between = n * _var(means, np.empty(n_chain))
    within = pairwise_sum(variances, 0, n_chain) / n_chain
    return np.sqrt((between / within + n - 1) / n)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _autocov_block(centred: np.ndarray, acov: np.ndarray, start: int, stop: int):
    """Autocovariances at lags ``start..stop-1`` of each centred series: ``acov[c, t]``.

    ``sum_i x[i] x[i + t] / n`` of each chain, eight lags a pass over the series (a sum per
    lag); ``centred`` has ``PAD`` zeros after each series' ``n`` values, so that a pass
    needs no bounds of its own.
    """
    n_chain, n = acov.shape
    for c in range(n_chain):
        x = centred[c]
        t = start
        while t + 8 <= stop:
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
            for i in range(n - t):
                xi = x[i]
                j = i + t
                s0 += xi * x[j]
                s1 += xi * x[j + 1]
                s2 += xi * x[j + 2]
                s3 += xi * x[j + 3]
                s4 += xi * x[j + 4]
                s5 += xi * x[j + 5]
                s6 += xi * x[j + 6]
                s7 += xi * x[j + 7]
            acov[c, t] = s0 / n
            acov[c, t + 1] = s1 / n
            acov[c, t + 2] = s2 / n
            acov[c, t + 3] = s3 / n
            acov[c, t + 4] = s4 / n
            acov[c, t + 5] = s5 / n
            acov[c, t + 6] = s6 / n
            acov[c, t + 7] = s7 / n
            t += 8
        while t < stop:
            s = 0.0
            for i in range(n - t):
                s += x[i] * x[i + t]
            acov[c, t] = s / n
            t += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def ess(x: np.ndarray, acov: np.ndarray, filled: int, floor: float, work: np.ndarray) -> float:
    """arviz-stats' ``_ess`` of ``(chain, draw)`` values, its loop operation for operation.

    Parameters
    ----------
    x : ndarray of shape (chain, draw)
        The series.
    acov : ndarray of shape (chain, draw)
        Autocovariances by chain; those at lags ``filled`` and after are computed here, a
        block of :data:`LAG_BLOCK` lags when Geyer's sequence first reads one (``filled``
        is the draw count to use given autocovariances only).
    filled : int
        Lags of ``acov`` already computed.
    floor : float
        ``1 / numpy.log10(chain * draw)``, arviz-stats' smallest autocorrelation time.
    work : ndarray of shape (chain, draw + PAD)
        Scratch: the centred series, zero-padded.

    Returns
    -------
    float
    """
    n_chain, n_draw = x.shape
    low, high = x[0, 0], x[0, 0]
    for c in range(n_chain):
        for i in range(n_draw):
            low = min(low, x[c, i])
            high = max(high, x[c, i])
    if high - low < RESOLUTION:
        return float(n_chain * n_draw)
    chain_mean = np.empty(n_chain)
    column = np.empty(n_chain)
    for c in range(n_chain):
        chain_mean[c] = pairwise_sum(x[c], 0, n_draw) / n_draw
        if filled < n_draw:
            for i in range(n_draw):
                work[c, i] = x[c, i] - chain_mean[c]
            work[c, n_draw:] = 0.0
    if filled < 2:
        filled = min(LAG_BLOCK, n_draw)
        _autocov_block(work, acov, 0, filled)
    for c in range(n_chain):
        column[c] = acov[c, 0]
    mean_var = pairwise_sum(column, 0, n_chain) / n_chain * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += _var(chain_mean, np.empty(n_chain))

    rho_hat_t = np.zeros(n_draw)
    rho_hat_even = 1.0
    rho_hat_t[0] = rho_hat_even
    for c in range(n_chain):
        column[c] = acov[c, 1]
    rho_hat_odd = 1.0 - (mean_var - pairwise_sum(column, 0, n_chain) / n_chain) / var_plus
    rho_hat_t[1] = rho_hat_odd

    t = 1  # Geyer's initial positive sequence
    while t < (n_draw - 3) and (rho_hat_even + rho_hat_odd) > 0.0:
        if t + 2 >= filled:
            stop = min(filled + LAG_BLOCK, n_draw)
            _autocov_block(work, acov, filled, stop)
            filled = stop
        for c in range(n_chain):
            column[c] = acov[c, t + 1]
        rho_hat_even = 1.0 - (mean_var - pairwise_sum(column, 0, n_chain) / n_chain) / var_plus
        for c in range(n_chain):
            column[c] = acov[c, t + 2]
        rho_hat_odd = 1.0 - (mean_var - pairwise_sum(column, 0, n_chain) / n_chain) / var_plus
        if (rho_hat_even + rho_hat_odd) >= 0:
            rho_hat_t[t + 1] = rho_hat_even
            rho_hat_t[t + 2] = rho_hat_odd
        t += 2

    max_t = t - 2
    if rho_hat_even > 0:  # improve estimation
        rho_hat_t[max_t + 1] = rho_hat_even
    t = 1  # Geyer's initial monotone sequence
    while t <= max_t - 2:
        if (rho_hat_t[t + 1] + rho_hat_t[t + 2]) > (rho_hat_t[t - 1] + rho_hat_t[t]):
            rho_hat_t[t + 1] = (rho_hat_t[t - 1] + rho_hat_t[t]) / 2.0
            rho_hat_t[t + 2] = rho_hat_t[t + 1]
        t += 2

    tail = pairwise_sum(rho_hat_t, max_t + 1, 1) if max_t + 1 < n_draw else 0.0
    tau_hat = -1.0 + 2.0 * pairwise_sum(rho_hat_t, 0, max_t + 1) + tail
    tau_hat = floor if floor > tau_hat else tau_hat  # Python's max(tau_hat, floor)
    for i in range(min(max_t + 3, n_draw)):  # only these were written
        if np.isnan(rho_hat_t[i]):
            return np.nan
    return (n_chain * n_draw) / tau_hat


BUCKETS = 2
"""Buckets per value in :func:`bucket_sort`. 12 rows of 2000 draws (11 normal, one
log-normal), new draws at every call as in a run (the same draws at every call run twice
as fast: the branches are learnt), one thread, the shared 2-core VM, ms: half a bucket
per value 0.33, one 0.30-0.34, two 0.27-0.28, four 0.27; ``numpy.argsort`` 0.60-0.61."""

SORT_WORK = 32
"""A row is bucket-sorted (:func:`bucket_sort`) when the sum of its buckets' squared counts,
which bounds the insertion sorts' work, is at most this many times its length; else NumPy
sorts it. The rows of a heights fit give 1.8 to 3.8 (one bucket per value: 2.7 to 6.6);
a heavy tail (half-Cauchy draws) or many ties (draws rounded to a tenth of their sd) go
past 100 and fall back."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def bucket_sort(row: np.ndarray, order: np.ndarray, ordered: np.ndarray, count: np.ndarray):
    """Sort one row of finite values by buckets of equal width; whether it could be.

    :data:`BUCKETS` buckets per value between the row's least and greatest, the bucket of
    a value ``int((value - least) * scale)`` (non-decreasing in the value, so the buckets
    are in order), each bucket insertion-sorted (equal values keep their draw order).
    ``ordered`` receives the sorted row and ``order`` its permutation
    (``ordered[i] = row[order[i]]``); ``count`` is scratch of length ``BUCKETS * n + 1``.
    Returns ``False``, with the outputs unusable, for a row with a NaN or an infinite value
    or buckets too uneven (:data:`SORT_WORK`).
    """
    n = row.shape[0]
    low, high = row[0], row[0]
    for i in range(n):
        value = row[i]
        if value < low:
            low = value
        elif value > high:
            high = value
        elif value != value:  # NaN
            return False
    if not high - low < np.inf:  # an infinite value
        return False
    if high == low:
        for i in range(n):
            order[i] = i
            ordered[i] = row[i]
        return True
    buckets = BUCKETS * n
    scale = buckets / (high - low)
    if not scale < np.inf:  # a range so small that the scale overflows
        return False
    count[:] = 0
    for i in range(n):
        count[min(int((row[i] - low) * scale), buckets - 1) + 1] += 1
    work = 0
    for b in range(buckets):
        work += count[b + 1] * count[b + 1]
        count[b + 1] += count[b]  # count[b]: where bucket b starts
    if work > SORT_WORK * n:
        return False
    for i in range(n):
        value = row[i]
        b = min(int((value - low) * scale), buckets - 1)
        p = count[b]
        count[b] = p + 1  # count[b]: where bucket b ends, once every value is placed
        ordered[p] = value
        order[p] = i
    begin = 0
    for b in range(buckets):
        end = count[b]
        for j in range(begin + 1, end):
            value, index = ordered[j], order[j]
            q = j - 1
            while q >= begin and ordered[q] > value:
                ordered[q + 1] = ordered[q]
                order[q + 1] = order[q]
                q -= 1
            ordered[q + 1] = value
            order[q + 1] = index
        begin = end
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def bucket_sort_rows(x: np.ndarray, order: np.ndarray, ordered: np.ndarray, done: np.ndarray):
    """:func:`bucket_sort` of every row of ``x``; ``done[r]`` whether row ``r`` was sorted."""
    count = np.empty(BUCKETS * x.shape[1] + 1, dtype=np.int64)
    for r in range(x.shape[0]):
        done[r] = bucket_sort(x[r], order[r], ordered[r], count)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def quantile_sorted(ordered: np.ndarray, q: float) -> float:
    """``numpy.quantile(row, q)`` (linear interpolation) of a sorted row, bit for bit."""
    n = ordered.shape[0]
    position = q * (n - 1)
    low = int(np.floor(position))
    high = min(low + 1, n - 1)
    frac = position - low
    a, b = ordered[low], ordered[high]
    diff = b - a
    return b - diff * (1 - frac) if frac >= 0.5 else a + diff * frac  # numpy's _lerp


@numba.njit(cache=True, nogil=True, error_model="numpy")
def diagnose_rows(
    flat: np.ndarray,
    order: np.ndarray,
    n_chain: int,
    levels: np.ndarray,
    cuts: np.ndarray,
    cuts_given: bool,
    table: np.ndarray,
    floor: float,
    with_rhat: bool,
    ordered: np.ndarray,
    out: np.ndarray,
):
    """R-hat, bulk ESS and tail ESS of each row of split draws, given each row's sort.

    Parameters
    ----------
    flat : ndarray of shape (k, n)
        Split draws of ``k`` quantities, ``n_chain`` split chains one after the other.
    order : ndarray of shape (k, n)
        Each row's sorting permutation.
    n_chain : int
        Split chains.
    levels : ndarray of shape (2,)
        The tail ESS's quantile levels.
    cuts : ndarray of shape (k, 2)
        Each row's quantiles at ``levels`` (the tail ESS indicators' thresholds): given, or
        computed here from the sorted row (when the split draws are all the draws).
    cuts_given : bool
        Whether ``cuts`` holds the quantiles.
    table : ndarray of shape (2 n - 1,)
        Blom's normal scores of the ranks ``1, 1.5, 2, ..., n`` among ``n`` values.
    floor : float
        ``1 / numpy.log10(n)`` (see :func:`ess`).
    with_rhat : bool
        Whether to compute R-hat (two chains or more before splitting).
    ordered : ndarray of shape (k, n)
        Each row sorted (``flat[r, order[r]]``).
    out : ndarray of shape (3, k)
        Receives R-hat (left as it is without ``with_rhat``), bulk ESS and tail ESS.
    """
    k, n = flat.shape
    n_draw = n // n_chain
    z = np.empty(n)
    folded = np.empty(n)
    indicator = np.empty(n)
    merged = np.empty(n)
    target = np.empty_like(order[0])
    acov = np.empty((n_chain, n_draw))
    work = np.empty((n_chain, n_draw + PAD))
    for r in range(k):
        row = flat[r]
        if not cuts_given:
            for q in range(2):
                cuts[r, q] = quantile_sorted(ordered[r], levels[q])
        scores(ordered[r], order[r], table, z)
        out[1, r] = ess(z.reshape(n_chain, n_draw), acov, 0, floor, work)
        tail = np.inf
        for q in range(2):
            for i in range(n):
                indicator[i] = 1.0 if row[i] <= cuts[r, q] else 0.0
            value = ess(indicator.reshape(n_chain, n_draw), acov, 0, floor, work)
            tail = value if np.isnan(value) or value < tail else tail  # numpy.minimum
        out[2, r] = tail
        if with_rhat:
            folded_scores(ordered[r], order[r], table, folded, merged, target)
            bulk = rhat(z.reshape(n_chain, n_draw), work[0])
            fold = rhat(folded.reshape(n_chain, n_draw), work[0])
            out[0, r] = fold if fold > bulk else bulk  # Python's max(bulk, fold)
