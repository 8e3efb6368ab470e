"""Our batched R-hat and ESS equal arviz-stats' one-quantity-at-a-time estimators."""

import warnings

import numpy as np
import pytest
from arviz_stats.base import array_stats
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import special, stats

from sbc.stats import _mcmc_kernels as kernels
from sbc.stats import mcmc
from sbc.stats.posterior import summarize


def _ar1(rng, shape, rho):
    x = np.zeros(shape)
    noise = rng.normal(size=shape)
    for t in range(1, shape[-1]):
        x[..., t] = rho * x[..., t - 1] + noise[..., t]
    return x


def _series(seed, shape, rho, kind):
    """An AR(1) series as drawn (``continuous``), rounded (ties), or as a 0/1 indicator."""
    x = _ar1(np.random.default_rng(seed), shape, rho)
    if kind == "rounded":
        return np.round(x)
    if kind == "indicator":
        return (x > 0).astype(float)
    return x


def _autocov(x):
    """Autocovariances of each row at every lag by FFT (arviz-stats' ``autocov``)."""
    n = x.shape[-1]
    m = 2 * n
    centred = x - x.mean(axis=-1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=-1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=m, axis=-1)[..., :n] / n


def _ess(x, every_lag=False):
    """The kernel's ESS of ``(chain, draw)`` values: its own lags, or every lag by FFT."""
    x = np.ascontiguousarray(x, dtype=float)
    n_chain, n_draw = x.shape
    acov = _autocov(x) if every_lag else np.empty_like(x)
    filled = n_draw if every_lag else 0
    work = np.empty((n_chain, n_draw + kernels.PAD))
    return kernels.ess(x, acov, filled, float(1 / np.log10(x.size)), work)


def _blom(values):
    """Blom's normal scores of each row's average ranks, as arviz-stats computes them."""
    return special.ndtri((stats.rankdata(values, axis=-1) - 0.375) / (values.shape[-1] + 0.25))


def _arviz(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            array_stats.rhat(x),
            array_stats.ess(x, method="bulk"),
            array_stats.ess(x, method="tail", prob=0.95),
        )


@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(4, 300),
    st.sampled_from([-0.5, 0.0, 0.5, 0.95]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
@example(k=4, chains=2, draws=4, rho=-0.5, rounded=False, seed=2)  # the median tie, folded
@example(k=1, chains=2, draws=4, rho=0.5, rounded=True, seed=0)  # split chains never overlap
def test_estimators_equal_arviz_stats(k, chains, draws, rho, rounded, seed):
    """R-hat, bulk and tail ESS equal arviz-stats' on autocorrelated, tied or odd-length draws."""
    rng = np.random.default_rng(seed)
    x = _ar1(rng, (k, chains, draws), rho) + rng.normal(size=(k, chains, 1))
    if rounded:
        x = np.round(x)  # ties
    expected = _arviz(x)
    ours = (mcmc.rhat_rank(x), mcmc.ess_bulk(x), mcmc.ess_tail(x, 0.95))
    for a, b in zip(expected, ours, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, equal_nan=True)


def test_constant_and_too_short_draws_match_arviz_stats():
    """Constant draws and fewer than four draws are handled as arviz-stats handles them."""
    for x in (np.ones((2, 2, 10)), np.zeros((1, 2, 3))):
        for a, b in zip(
            _arviz(x), (mcmc.rhat_rank(x), mcmc.ess_bulk(x), mcmc.ess_tail(x)), strict=True
        ):
            np.testing.assert_allclose(b, a, equal_nan=True)


@given(st.integers(1, 5000), st.integers(0, 10), st.integers(0, 2**32 - 1))
def test_pairwise_sum_is_numpys_bit_for_bit(n, start, seed):
    """The kernels' pairwise sum of a slice is numpy.sum's, bit for bit, short or long."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n + start) * 10.0 ** rng.uniform(-3, 3, size=n + start)
    assert kernels.pairwise_sum(a, start, n) == np.sum(a[start:])


@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(4, 300),
    st.sampled_from([-0.5, 0.0, 0.5, 0.95]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
@example(k=4, chains=2, draws=4, rho=-0.5, ties=False, seed=2)  # the median tie, folded
def test_diagnose_equals_the_separate_estimators(k, chains, draws, rho, ties, seed):
    """One pass gives the R-hat, bulk and tail ESS of the three separate estimators."""
    x = _ar1(np.random.default_rng(seed), (k, chains, draws), rho)
    if ties:
        x = np.round(x)
    rhat, bulk, tail = mcmc.diagnose(x)
    np.testing.assert_allclose(rhat, mcmc.rhat_rank(x), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(bulk, mcmc.ess_bulk(x), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(tail, mcmc.ess_tail(x), rtol=1e-12, equal_nan=True)


@given(
    st.integers(1, 4),
    st.integers(2, 300),
    st.sampled_from([-0.5, 0.0, 0.5, 0.95, 0.999]),
    st.sampled_from(["continuous", "rounded", "indicator"]),
    st.integers(0, 2**32 - 1),
)
def test_geyer_sequence_equals_arviz_stats_loop_bit_for_bit(chains, draws, rho, kind, seed):
    """Given the same autocovariances, the kernel's ESS is arviz-stats' loop's to the bit."""
    x = _series(seed, (chains, draws), rho, kind)
    with pytest.MonkeyPatch.context() as patch:  # arviz-stats' loop on the FFT's values
        patch.setattr(array_stats, "autocov", lambda ary, axis=-1: _autocov(ary))
        expected = array_stats._ess(x)
    np.testing.assert_array_equal(_ess(x, every_lag=True), expected)


@given(
    st.integers(1, 4),
    st.integers(4, 1200),
    st.sampled_from([-0.5, 0.0, 0.5, 0.95, 0.99, 0.999]),
    st.sampled_from(["continuous", "rounded", "indicator"]),
    st.integers(0, 2**32 - 1),
)
@example(chains=4, draws=500, rho=0.99, kind="continuous", seed=0)  # many blocks of lags
def test_ess_from_the_lags_read_equals_ess_from_every_lag(chains, draws, rho, kind, seed):
    """The ESS from the lags Geyer's sequence reads, block by block, equals every lag's FFT."""
    x = _series(seed, (chains, draws), rho, kind)
    np.testing.assert_allclose(_ess(x), _ess(x, every_lag=True), rtol=1e-12, atol=0)


def test_long_geyer_sequences_read_many_blocks_and_equal_arviz_stats():
    """AR(1) draws with phi = 0.99 run Geyer's sequence far past the first lags: arviz's ESS."""
    rng = np.random.default_rng(3)
    x = _ar1(rng, (3, 2, 1000), 0.99)
    for q, ess in zip(x, mcmc.ess_bulk(x), strict=True):
        np.testing.assert_allclose(ess, _arviz(q)[1], rtol=1e-12)
    z = _blom(mcmc._split(x[:1]).reshape(1, -1)).reshape(4, 500)
    acov = _autocov(z)
    rho = 1 - (acov[:, 0].mean() - acov.mean(axis=0)) / acov[:, 0].mean()
    assert (rho[1:60:2] + rho[2:61:2] > 0).all()  # stops past lag 60: eight blocks or more


@given(st.integers(1, 40), st.integers(1, 600), st.integers(0, 2**32 - 1))
def test_autocovariance_blocks_equal_the_fft_ones(lags, n, seed):
    """Autocovariances from the kernel's passes of eight lags equal the FFT's at those lags."""
    x = np.random.default_rng(seed).normal(size=(3, n)) + 5.0
    lags = min(lags, n)
    work = np.zeros((3, n + kernels.PAD))
    work[:, :n] = x - x.mean(axis=-1, keepdims=True)
    acov = np.full((3, n), np.nan)
    kernels._autocov_block(work, acov, 0, lags)
    np.testing.assert_allclose(acov[:, :lags], _autocov(x)[:, :lags], atol=1e-14)


@given(
    st.integers(1, 4),
    st.integers(2, 600),
    st.sampled_from(["continuous", "ties", "many ties", "constant"]),
    st.integers(0, 2**32 - 1),
)
def test_scores_from_the_table_equal_ndtri_of_the_ranks(k, n, kind, seed):
    """Normal scores read from the table (ties by ndtri) equal ndtri of the average ranks."""
    x = np.random.default_rng(seed).normal(size=(k, n))
    if kind == "ties":
        x[:, : n // 3] = x[:, n // 3 : 2 * (n // 3)]  # repeated draws, as NUTS gives
    elif kind == "many ties":
        x = np.round(x)
    elif kind == "constant":
        x[:] = 1.0
    order = np.argsort(x, axis=-1)
    ordered = np.take_along_axis(x, order, axis=-1)
    ours = np.empty_like(x)
    for row, (o, i) in enumerate(zip(ordered, order, strict=True)):
        kernels.scores(o, i, mcmc._blom_table(n), ours[row])
    np.testing.assert_array_equal(ours, _blom(x))


@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(2, 200),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_folded_scores_from_the_sort_equal_a_fresh_sort(k, chains, draws, ties, seed):
    """Folded normal scores merged from the sorted draws equal those of sorting |x - median|."""
    x = np.random.default_rng(seed).normal(size=(k, chains * draws))
    if ties:
        x = np.round(x * 2)
    order = np.argsort(x, axis=-1)
    ordered = np.take_along_axis(x, order, axis=-1)
    n = x.shape[-1]
    ours = np.empty_like(x)
    merged, target = np.empty(n), np.empty(n, dtype=order.dtype)
    for row, (o, i) in enumerate(zip(ordered, order, strict=True)):
        kernels.folded_scores(o, i, mcmc._blom_table(n), ours[row], merged, target)
    median = np.median(x, axis=-1)
    np.testing.assert_array_equal(ours, _blom(np.abs(x - median[:, None])))


@given(st.integers(2, 4), st.integers(2, 300), st.booleans(), st.integers(0, 2**32 - 1))
def test_rhat_kernel_is_arviz_stats_rhat_bit_for_bit(chains, draws, ties, seed):
    """The kernel's R-hat of (chain, draw) values is arviz-stats' _rhat, bit for bit."""
    x = _ar1(np.random.default_rng(seed), (chains, draws), 0.5)
    if ties:
        x = np.round(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = array_stats._rhat(x)
    np.testing.assert_array_equal(kernels.rhat(x, np.empty(draws)), expected)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.9, 0.99, 0.995])
@pytest.mark.parametrize("repeats", [False, True])
def test_diagnose_of_a_default_fit_equals_arviz_stats(rho, repeats):
    """At a default fit's shape (12 quantities, 2 x 1000 draws) diagnose equals arviz-stats."""
    rng = np.random.default_rng(7)
    x = _ar1(rng, (12, 2, 1000), rho) + rng.normal(size=(12, 2, 1))
    if repeats:  # NUTS repeats a draw now and then: ties in the ranks
        x[:, :, 1::7] = x[:, :, 0:-1:7]
    expected = [
        np.array([f(q) for q in x])
        for f in (lambda q: _arviz(q)[0], lambda q: _arviz(q)[1], lambda q: _arviz(q)[2])
    ]
    for a, b in zip(expected, mcmc.diagnose(x), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=0)


@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 120),
    st.sampled_from(["continuous", "ties", "nan", "signed zeros"]),
    st.integers(0, 2**32 - 1),
)
@example(k=2, chains=2, draws=1000, kind="ties", seed=0)  # a default fit's shape
def test_summaries_from_the_diagnostics_sort_equal_a_fresh_sort(k, chains, draws, kind, seed):
    """Summaries from diagnose_sorted's sort equal summarize(pooled)'s (no sort: odd draws)."""
    x = _ar1(np.random.default_rng(seed), (k, chains, draws), 0.5)
    if kind == "ties":
        x = np.round(x)
    elif kind == "nan":
        x[0, 0, -1] = np.nan
    elif kind == "signed zeros":
        x = np.where(np.round(x) == 0, np.copysign(0.0, x), np.round(x))
    *diagnostics, ordered = mcmc.diagnose_sorted(x)
    for a, b in zip(diagnostics, mcmc.diagnose(x), strict=True):
        np.testing.assert_array_equal(a, b)
    pooled = x.reshape(k, -1)
    valid = ~np.isnan(pooled).any(axis=-1)
    if draws % 2 or draws < 4 or not valid.any():
        assert ordered is None
        return
    expected, ours = summarize(pooled), summarize(pooled, ordered)
    assert expected.keys() == ours.keys()
    for name in expected:
        np.testing.assert_array_equal(ours[name], expected[name])
    np.testing.assert_array_equal(ordered[valid], np.sort(pooled[valid], axis=-1))


def _rows(kind, k, n, rng):
    """Rows of draws of one kind, the kinds bucket sorting takes and those it leaves to NumPy."""
    if kind == "normal":
        return rng.normal(size=(k, n))
    if kind == "log-normal":
        return rng.lognormal(0.0, 1.0, size=(k, n))
    if kind == "half-Cauchy":
        return np.abs(rng.standard_cauchy(size=(k, n)))
    if kind == "rounded":
        return np.round(rng.normal(size=(k, n)), 1)
    if kind == "constant":
        return np.full((k, n), 2.5)
    if kind == "tiny range":
        return np.arange(k * n).reshape(k, n) % 3 * 5e-324  # subnormal: n / range overflows
    x = rng.normal(size=(k, n))
    x[:, :1] = {"infinite": -np.inf, "outlier": 1e12, "huge range": 1.7e308}[kind]
    x[:, -1:] = -1.7e308 if kind == "huge range" else x[:, -1:]
    return x


@given(
    st.integers(1, 4),
    st.integers(1, 2500),
    st.sampled_from(
        [
            "normal",
            "log-normal",
            "half-Cauchy",
            "rounded",
            "constant",
            "tiny range",
            "infinite",
            "outlier",
            "huge range",
        ]
    ),
    st.integers(0, 2**32 - 1),
)
@example(k=12, n=2000, kind="normal", seed=0)  # a default fit's shape
def test_sort_rows_equals_numpys_sort_with_a_permutation_that_gives_it(k, n, kind, seed):
    """sort_rows sorts every row as numpy.sort, and its order is a permutation giving that."""
    x = _rows(kind, k, n, np.random.default_rng(seed))
    ordered, order = mcmc.sort_rows(x)
    np.testing.assert_array_equal(ordered, np.sort(x, axis=-1))
    np.testing.assert_array_equal(np.take_along_axis(x, order, axis=-1), ordered)
    np.testing.assert_array_equal(np.sort(order, axis=-1), np.broadcast_to(np.arange(n), (k, n)))


@pytest.mark.parametrize(
    ("kind", "bucketed"),
    [("normal", True), ("log-normal", True), ("half-Cauchy", False), ("rounded", False)],
)
def test_bucket_sort_takes_even_rows_and_leaves_uneven_ones_to_numpy(kind, bucketed):
    """The kernel sorts rows of even spread itself and refuses heavy tails and many ties."""
    x = _rows(kind, 4, 2000, np.random.default_rng(1))
    done = np.zeros(4, dtype=bool)
    kernels.bucket_sort_rows(x, np.empty(x.shape, np.intp), np.empty_like(x), done)
    assert done.all() if bucketed else not done.any()


def test_warm_loads_the_kernels_once_per_process():
    """warm() loads the compiled kernels on its first call and does nothing after."""
    mcmc.warm()
    before = mcmc.warm.cache_info().hits
    mcmc.warm()
    assert mcmc.warm.cache_info().hits == before + 1
    assert mcmc._kernels.cache_info().currsize == 1
