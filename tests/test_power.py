"""Detection power against the number of simulations: batched tests, subsampling, projection."""

import numpy as np
import pytest
from scipy import stats

from sbc.stats.power import (
    bounded_effects,
    effect_power,
    first_reaching,
    holm_min,
    paired_effects,
    power_interval,
    pvalues,
    required_simulations,
    subsample_power,
    visible,
)
from sbc.stats.uniformity import holm, uniformity_pvalue


def test_batched_pvalues_equal_the_per_quantity_test():
    """Batched p-values equal uniformity_pvalue row by row, NaNs left out."""
    rng = np.random.default_rng(0)
    pit = rng.uniform(size=(4, 60)) ** np.array([[1.0], [1.3], [0.7], [1.0]])
    pit[3, :5] = np.nan
    expected = [uniformity_pvalue(row) for row in pit]
    assert pvalues(pit) == pytest.approx(expected)
    assert np.isnan(pvalues(np.array([[0.5, np.nan, np.nan]])))[0]


def test_holm_min_is_the_smallest_holm_adjusted_p():
    """holm_min equals the minimum of the Holm step-down adjustment, NaNs ignored."""
    p = np.array([[0.2, 0.001, np.nan, 0.04], [np.nan, np.nan, np.nan, np.nan]])
    assert holm_min(p)[0] == pytest.approx(np.nanmin(holm(p[0])))
    assert np.isnan(holm_min(p)[1])


def test_subsampled_power_rises_with_n_and_is_the_verdict_at_the_full_run():
    """A clear departure is flagged more often by larger subsets; the full run gives 0 or 1."""
    rng = np.random.default_rng(1)
    pit = np.column_stack([rng.beta(1.6, 1.0, size=200), rng.uniform(size=200)])
    sizes = np.array([25, 50, 100, 200])
    power = subsample_power(pit, sizes, np.random.default_rng(2), subsets=100)
    assert np.all(np.diff(power) >= -0.05) and power[-1] == 1.0 and power[0] < 0.9
    null = subsample_power(rng.uniform(size=(200, 3)), sizes, np.random.default_rng(3), 100)
    assert null.max() <= 0.1


def test_subsets_come_from_the_run_seed():
    """The same run seed and purpose give the same subsets, so the same power curve."""
    from sbc.seeding import analysis_rng

    pit = np.random.default_rng(0).uniform(size=(60, 2))
    sizes = np.array([20, 40])
    first = subsample_power(pit, sizes, analysis_rng(4, "power:m"), subsets=30, alpha=0.5)
    again = subsample_power(pit, sizes, analysis_rng(4, "power:m"), subsets=30, alpha=0.5)
    other = subsample_power(pit, sizes, analysis_rng(5, "power:m"), subsets=30, alpha=0.5)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_power_interval_counts_disjoint_blocks():
    """The interval is a Wilson interval on n // m trials: narrow for small m, wide at m = n."""
    low, high = power_interval(np.array([0.5, 1.0]), 200, np.array([10, 200]))
    assert high[0] - low[0] < 0.4
    assert low[1] < 0.3 and high[1] == pytest.approx(1.0)


def _pair(shift, scale, rho=0.95, n=200, k=4, seed=0):
    """Ranks of a correct model and a mutant on the same data sets (quantity 0 departs)."""
    rng = np.random.default_rng(seed)
    x_c = rng.normal(size=(n, k))
    x_m = rho * x_c + np.sqrt(1 - rho**2) * rng.normal(size=(n, k))
    x_m[:, 0] = shift + scale * x_m[:, 0]
    return stats.norm.cdf(x_m), stats.norm.cdf(x_c)


def test_paired_effects_cancel_the_shared_noise():
    """The shift is recovered with a standard error far below an unpaired one's (1/sqrt(n))."""
    effects = paired_effects(*_pair(0.1, 1.0))
    assert effects["shift"][0] == pytest.approx(0.1, abs=3 * effects["shift_se"][0])
    assert effects["shift_se"][0] < 0.5 / np.sqrt(200)
    assert np.abs(effects["shift"][1:]).max() < 0.05 and np.all(effects["n"] == 200)
    wide = paired_effects(*_pair(0.0, 1.2))
    assert wide["excess"][0] == pytest.approx(1.2**2 - 1, abs=3 * wide["excess_se"][0])
    assert visible(effects) and not visible(paired_effects(*_pair(0.0, 1.0)))


def test_bounded_effects_move_towards_zero_without_crossing_it():
    """Weaker bounds shrink effects towards zero and stop there; stronger ones grow them."""
    effects = {"shift": np.array([0.1, -0.01]), "shift_se": np.array([0.02, 0.02])}
    effects |= {"excess": np.zeros(2), "excess_se": np.full(2, 0.01)}
    weaker, stronger = bounded_effects(effects, -1.645), bounded_effects(effects, 1.645)
    assert weaker["shift"] == pytest.approx([0.1 - 1.645 * 0.02, 0.0])
    assert stronger["shift"] == pytest.approx([0.1 + 1.645 * 0.02, -0.01 - 1.645 * 0.02])


def test_projected_simulations_shrink_as_the_departure_grows():
    """Required N falls with the effect; no effect needs infinitely many; power is monotone."""
    rng = np.random.default_rng(3)

    def effects(shift):
        return {"shift": np.array([shift, 0.0]), "excess": np.zeros(2)}

    small = required_simulations(effects(0.15), 200, 4, rng)
    large = required_simulations(effects(0.3), 200, 4, rng)
    assert large < small < 32 * 200
    assert required_simulations(effects(0.0), 200, 4, rng) == np.inf
    power = effect_power(effects(0.3), np.array([50, 400]), 4, rng)
    assert power[0] < 0.5 < 0.9 < power[1]


def test_first_reaching_interpolates_on_the_log_scale():
    """The size where a power curve crosses 0.8, log-interpolated; NaN if it never does."""
    sizes = np.array([25, 50, 100])
    assert first_reaching(np.array([0.2, 0.6, 1.0]), sizes) == pytest.approx(50 * 2**0.5)
    assert first_reaching(np.array([0.9, 1.0, 1.0]), sizes) == 25
    assert np.isnan(first_reaching(np.array([0.1, 0.2, 0.3]), sizes))
