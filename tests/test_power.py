"""Detection power against the number of simulations: batched tests, subsampling, projection."""

import numpy as np
import pytest
from scipy import stats

from sbc.stats.power import (
    critical_score,
    holm_min,
    power_interval,
    projected_power,
    pvalues,
    required_simulations,
    score,
    subsample_power,
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


def test_power_interval_counts_disjoint_blocks():
    """The interval is a Wilson interval on n // m trials: narrow for small m, wide at m = n."""
    low, high = power_interval(np.array([0.5, 1.0]), 200, np.array([10, 200]))
    assert high[0] - low[0] < 0.4
    assert low[1] < 0.3 and high[1] == pytest.approx(1.0)


def test_projection_and_required_simulations_agree():
    """Power at the required N is the target; no departure needs infinitely many simulations."""
    z, n, k = 2.0, 200, 10
    needed, lower, upper = required_simulations(z, n, k, alpha=0.01, power=0.8)
    assert projected_power(z, n, [needed], k, 0.01)[0] == pytest.approx(0.8)
    assert lower < needed < upper
    assert required_simulations(0.0, n, k)[0] == np.inf
    assert critical_score(10, 0.01) == pytest.approx(stats.norm.isf(0.001))
    assert score(np.array([0.5, 1e-320]))[0] == 0.0 and np.isfinite(score(np.array([1e-320])))


def test_projection_from_a_run_of_200_brackets_the_true_requirement():
    """On a known departure the 90% interval for the N reaching 80% power covers the truth."""
    rng = np.random.default_rng(5)
    k, alpha = 5, 0.01

    def flagged(m, reps):
        pit = rng.uniform(size=(reps, k, m))
        pit[:, 0] = rng.beta(1.3, 1.0, size=(reps, m))
        return holm_min(pvalues(pit)) < alpha

    true_n80 = next(m for m in (100, 150, 200, 300, 400, 600, 800) if flagged(m, 300).mean() >= 0.8)
    covered = 0
    for _ in range(40):
        pit = rng.uniform(size=(k, 200))
        pit[0] = rng.beta(1.3, 1.0, size=200)
        _, lower, upper = required_simulations(score(pvalues(pit).min()), 200, k, alpha)
        covered += lower <= true_n80 * 1.25 and true_n80 / 1.25 <= upper
    assert covered >= 32  # 90% nominal, with the truth known to the grid's resolution
