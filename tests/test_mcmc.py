"""Our batched R-hat and ESS equal arviz-stats' one-quantity-at-a-time estimators."""

import warnings

import numpy as np
import pytest
from arviz_stats.base import array_stats
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from sbc.stats import mcmc


def _ar1(rng, shape, rho):
    x = np.zeros(shape)
    noise = rng.normal(size=shape)
    for t in range(1, shape[-1]):
        x[..., t] = rho * x[..., t - 1] + noise[..., t]
    return x


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


@pytest.mark.parametrize("shape", [(3, 7), (2, 500), (1, 1)])
def test_ranks_equal_scipy_rankdata(shape):
    """Batched ranks with averaged ties equal scipy.stats.rankdata row by row."""
    x = np.round(np.random.default_rng(0).normal(size=shape) * 3)
    np.testing.assert_array_equal(mcmc._ranks(x), stats.rankdata(x, axis=-1))


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
def test_batched_geyer_equals_arviz_stats_loop_bit_for_bit(chains, draws, rho, kind, seed):
    """The ESS of every row, Geyer's sequence batched, is arviz-stats' loop's to the bit."""
    x = _ar1(np.random.default_rng(seed), (chains, draws), rho)
    if kind == "rounded":
        x = np.round(x)
    elif kind == "indicator":
        x = (x > 0).astype(float)
    with pytest.MonkeyPatch.context() as patch:  # arviz-stats' loop on our autocovariances
        patch.setattr(array_stats, "autocov", lambda ary, axis=-1: mcmc._autocov(ary[None])[0])
        expected = array_stats._ess(x)
    np.testing.assert_array_equal(mcmc._ess(x[None], lags=None), [expected])


@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(65, 1200),
    st.sampled_from([-0.5, 0.0, 0.5, 0.95, 0.999]),
    st.sampled_from(["continuous", "rounded", "indicator"]),
    st.integers(0, 2**32 - 1),
)
@example(k=2, chains=2, draws=1000, rho=0.99, kind="continuous", seed=0)  # past the short lags
def test_ess_from_the_first_lags_equals_ess_from_every_lag(k, chains, draws, rho, kind, seed):
    """The ESS from the first lags' products equals the ESS from every lag's FFT."""
    x = _ar1(np.random.default_rng(seed), (k, chains, draws), rho)
    if kind == "rounded":
        x = np.round(x)
    elif kind == "indicator":
        x = (x > 0).astype(float)
    np.testing.assert_allclose(
        mcmc._ess(x), mcmc._ess(x, lags=None), rtol=1e-12, atol=0, equal_nan=True
    )


@given(st.integers(1, 40), st.integers(65, 600), st.integers(0, 2**32 - 1))
def test_short_autocovariances_equal_the_fft_ones(lags, n, seed):
    """Autocovariances at the first lags by blocked products equal the FFT's at those lags."""
    x = np.random.default_rng(seed).normal(size=(3, n)) + 5.0
    centred = x - x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        mcmc._autocov_short(centred, lags), mcmc._autocov(x[None])[0][:, :lags], atol=1e-14
    )


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
    expected = mcmc._normal_scores(mcmc._ranks_from_sorted(ordered, order), n)
    np.testing.assert_array_equal(mcmc._scores_from_sorted(ordered, order), expected)


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
    median = np.median(x, axis=-1)
    ours = mcmc._folded_scores(np.take_along_axis(x, order, axis=-1), order)
    np.testing.assert_array_equal(ours, mcmc._z_scale(np.abs(x - median[:, None])))


@given(st.integers(1, 3), st.integers(1, 40), st.booleans(), st.integers(0, 2**32 - 1))
def test_median_of_sorted_rows_is_numpys_bit_for_bit(k, n, ties, seed):
    """The median read from sorted rows is numpy.median's value, for odd and even lengths."""
    x = np.random.default_rng(seed).normal(size=(k, n)) * 1e3
    if ties:
        x = np.round(x / 500)
    ours = mcmc._median_sorted(np.sort(x, axis=-1))
    np.testing.assert_array_equal(ours, np.median(x, axis=-1))


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.9, 0.995])
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
