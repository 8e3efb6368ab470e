import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sbc.stats.ranks import fractional_rank, rank_statistic, thin, thinning_factor
from tests.strategies import seeds, truths_and_draws


@given(truths_and_draws(), seeds)
def test_ranks_lie_in_zero_to_L(case, seed):
    """Every rank is an integer between 0 and the number of draws."""
    truth, draws = case
    ranks = rank_statistic(truth, draws, np.random.default_rng(seed))
    assert ranks.shape == truth.shape
    assert np.all((ranks >= 0) & (ranks <= draws.shape[-1]))


@given(truths_and_draws(), seeds)
def test_rank_counts_draws_below_and_at_most_ties(case, seed):
    """A rank is at least the draws below the truth and at most those below or equal."""
    truth, draws = case
    ranks = rank_statistic(truth, draws, np.random.default_rng(seed))
    below = (draws < truth[:, None]).sum(-1)
    at_most = (draws <= truth[:, None]).sum(-1)
    assert np.all((below <= ranks) & (ranks <= at_most))


def test_ties_break_uniformly():
    """When every draw equals the truth, the rank is uniform on 0..L."""
    L = 9
    rng = np.random.default_rng(1)
    truth = np.zeros(20_000)
    ranks = rank_statistic(truth, np.zeros((truth.size, L)), rng)
    counts = np.bincount(ranks, minlength=L + 1)
    assert stats.chisquare(counts).pvalue > 0.01


def test_ranks_uniform_when_truth_exchangeable_with_draws():
    """A truth drawn from the same distribution as the draws has a uniform rank."""
    rng = np.random.default_rng(2)
    L = 19
    sample = rng.gamma(2.0, size=(10_000, L + 1))
    ranks = rank_statistic(sample[:, 0], sample[:, 1:], rng)
    counts = np.bincount(ranks, minlength=L + 1)
    assert stats.chisquare(counts).pvalue > 0.01


def test_ranks_not_uniform_when_draws_are_shifted():
    """Draws shifted away from the truth pile ranks at one end."""
    rng = np.random.default_rng(3)
    sample = rng.normal(size=(2_000, 20))
    ranks = rank_statistic(sample[:, 0], sample[:, 1:] + 0.5, rng)
    assert stats.chisquare(np.bincount(ranks, minlength=20)).pvalue < 1e-6


@given(st.integers(0, 50), st.integers(1, 50), seeds)
def test_fractional_rank_is_inside_its_rank_cell(rank, extra, seed):
    """The fractional rank lies in [rank/(L+1), (rank+1)/(L+1)]."""
    max_rank = rank + extra
    u = fractional_rank(np.array([rank]), np.array([max_rank]), np.random.default_rng(seed))[0]
    assert rank / (max_rank + 1) <= u <= (rank + 1) / (max_rank + 1)


@given(st.integers(1, 4), st.integers(1, 60), st.integers(1, 20))
def test_thin_keeps_every_factor_th_draw_of_each_chain(chains, draws, factor):
    """Thinning keeps draws 0, f, 2f, ... of each chain and pools the chains."""
    values = np.arange(2 * chains * draws, dtype=float).reshape(2, chains, draws)
    thinned = thin(values, factor)
    kept = len(range(0, draws, factor))
    assert thinned.shape == (2, chains * kept)
    assert np.array_equal(thinned[0, :kept], np.arange(0, draws, factor))


def test_thin_refuses_factor_below_one():
    """A thinning factor of 0 is an error, not an empty result."""
    with pytest.raises(ValueError, match="at least 1"):
        thin(np.zeros((1, 2, 10)), 0)


def test_thinning_factor_is_one_for_independent_draws():
    """Independent draws need no thinning."""
    draws = np.random.default_rng(4).normal(size=(3, 2, 1000))
    assert thinning_factor(draws) <= 2


def test_thinning_factor_grows_with_autocorrelation():
    """Strongly autocorrelated draws are thinned by roughly n / ESS."""
    rng = np.random.default_rng(5)
    x = np.zeros((1, 2, 2000))
    for t in range(1, 2000):
        x[..., t] = 0.95 * x[..., t - 1] + rng.normal(size=(1, 2))
    factor = thinning_factor(x)
    assert 15 <= factor <= 80  # ESS of AR(1) with rho 0.95 is about n / 39


def test_thinning_factor_of_constant_draws_is_one():
    """Undefined ESS (constant draws) falls back to no thinning."""
    assert thinning_factor(np.ones((2, 2, 100))) == 1
