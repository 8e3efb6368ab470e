import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from sbc.stats import uniformity
from sbc.stats.uniformity import (
    GRID,
    ecdf_band,
    ecdf_pvalue,
    histogram_bins,
    histogram_test,
    holm,
    uniformity_pvalue,
)

TESTS = {
    "ecdf": ecdf_pvalue,
    "pot": uniformity_pvalue,
    "chi2": lambda pit: histogram_test(pit)[1],
}


@pytest.mark.parametrize("name", list(TESTS))
def test_uniform_ranks_are_flagged_at_the_nominal_rate(name):
    """Under exact uniformity each test rejects at 5% within its binomial error."""
    rng = np.random.default_rng(10)
    reps = 400
    p = np.array([TESTS[name](rng.uniform(size=100)) for _ in range(reps)])
    rate = np.mean(p < 0.05)
    low, high = stats.binom.ppf([0.0005, 0.9995], reps, 0.05) / reps
    assert low <= rate <= high, rate


@pytest.mark.parametrize("name", list(TESTS))
@pytest.mark.parametrize(
    "distort",
    [
        pytest.param(lambda u: u**1.6, id="shifted"),
        pytest.param(lambda u: stats.beta.ppf(u, 0.5, 0.5), id="u-shaped"),
        pytest.param(lambda u: stats.beta.ppf(u, 2.5, 2.5), id="humped"),
    ],
)
def test_distorted_ranks_are_flagged(name, distort):
    """Shifted (bias), U-shaped (over-confidence) and humped (under-confidence) ranks fail."""
    pit = distort(np.random.default_rng(11).uniform(size=300))
    assert TESTS[name](pit) < 0.01


def test_ecdf_pvalue_agrees_with_the_arviz_band():
    """The ECDF leaves arviz-stats' simultaneous 95% band when its p-value is below 5%."""
    rng = np.random.default_rng(12)
    agree = 0
    for _ in range(60):
        pit = rng.uniform(size=80) ** rng.choice([1.0, 1.25, 1.5])
        band = ecdf_band(pit, 0.95, 1000, seed=1)
        outside = np.any((band["ecdf"] < band["lower"]) | (band["ecdf"] > band["upper"]))
        agree += bool(outside) == (ecdf_pvalue(pit, 1000, seed=1) < 0.05)
    assert agree >= 58  # the band interpolates a quantile of the null: borderline cases differ


@pytest.mark.parametrize("n", [7, 80])
def test_ecdf_band_equals_arviz_ecdf_pit(n):
    """The band, cached per sample size, equals arviz-stats' ecdf_pit for the same sample."""
    from arviz_stats.ecdf_utils import ecdf_pit

    pit = np.random.default_rng(n).uniform(size=n)
    ours = ecdf_band(pit, 0.99, 500, seed=3)
    x, ecdf, lower, upper = ecdf_pit(pit, 0.99, 500, rng=np.random.default_rng(3))
    for key, theirs in zip(("x", "ecdf", "lower", "upper"), (x, ecdf, lower, upper), strict=True):
        np.testing.assert_array_equal(ours[key], theirs)


def test_large_runs_are_tested_on_a_bounded_grid():
    """Beyond GRID + 1 ranks the ECDF is evaluated at GRID points i / n, every point below."""
    np.testing.assert_array_equal(uniformity.evaluation_points(50), np.arange(1, 50) / 50)
    z = uniformity.evaluation_points(5000)
    assert z.size == GRID and z[0] == 1 / 5000 and z[-1] == 4999 / 5000
    np.testing.assert_array_equal(np.round(z * 5000) / 5000, z)
    band = ecdf_band(np.random.default_rng(14).uniform(size=5000))
    assert band["x"].size == GRID + 2


def test_multinomial_null_equals_counting_uniform_samples():
    """The grid null drawn as multinomial counts has the law of counts of uniform samples."""
    n = 2000
    grid = uniformity._null_gamma(n, 3000, 7)
    direct = uniformity._gamma(np.random.default_rng(8).uniform(size=(3000, n)))
    assert stats.ks_2samp(grid, direct).pvalue > 0.001


def test_band_level_matches_arviz_simulation_on_the_grid():
    """On the grid the band's simultaneous level matches arviz-stats' simulation of it.

    arviz-stats truncates ``count / n * n`` to an integer (some counts fall one short), so
    its level is compared within a tolerance rather than for equality of distributions.
    """
    from arviz_stats.ecdf_utils import simulate_confidence_bands

    n = 2000
    z = uniformity.evaluation_points(n)
    ours = np.quantile(uniformity._null_gamma(n, 2000, 7), 0.95)
    theirs = simulate_confidence_bands(n, 1, z, 0.95, 2000, np.random.default_rng(9))
    assert abs(ours - theirs) < 0.005


@pytest.mark.parametrize("n", [300, 3000])
def test_large_run_pvalue_agrees_with_its_band(n):
    """On and off the grid, the ECDF leaves the 95% band when its p-value is below 5%."""
    rng = np.random.default_rng(15)
    agree = 0
    for _ in range(20):
        pit = rng.uniform(size=n) ** rng.choice([1.0, 1.08, 1.15])
        band = ecdf_band(pit, 0.95, 2000, seed=1)
        outside = np.any((band["ecdf"] < band["lower"]) | (band["ecdf"] > band["upper"]))
        agree += bool(outside) == (ecdf_pvalue(pit, 2000, seed=1) < 0.05)
    assert agree >= 19


def test_ecdf_band_starts_at_zero_and_ends_at_one():
    """The band and the ECDF are pinned at 0 and 1, with lower <= upper everywhere."""
    band = ecdf_band(np.random.default_rng(13).uniform(size=50))
    for key in ("ecdf", "lower", "upper"):
        assert band[key][0] == 0 and band[key][-1] == 1
    assert np.all(band["lower"] <= band["upper"])


@given(st.integers(0, 5000))
def test_histogram_bins_expect_about_ten_ranks_each(n):
    """Bins hold about ten ranks each, between 2 and 20 bins."""
    bins = histogram_bins(n)
    assert 2 <= bins <= 20
    assert bins == 20 or bins == 2 or n // bins >= 10


@given(hnp.arrays(float, st.integers(2, 200), elements=st.floats(0, 1)))
def test_histogram_counts_every_rank_once(pit):
    """The rank histogram counts each value exactly once."""
    counts, p = histogram_test(pit)
    assert counts.sum() == pit.size and 0 <= p <= 1


def test_holm_known_answer():
    """Holm's adjustment of a textbook example."""
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


@given(hnp.arrays(float, st.integers(1, 30), elements=st.floats(0, 1) | st.just(np.nan)))
def test_holm_adjusted_values_are_valid_and_ordered(p):
    """Adjusted p-values are at least the raw ones, at most 1, in the raw order; NaN stays NaN."""
    adjusted = holm(p)
    valid = np.isfinite(p)
    assert np.array_equal(np.isnan(adjusted), ~valid)
    assert np.all(adjusted[valid] >= p[valid] - 1e-15) and np.all(adjusted[valid] <= 1)
    order = np.argsort(p[valid], kind="stable")
    assert np.all(np.diff(adjusted[valid][order]) >= -1e-15)


@pytest.mark.parametrize("name", ["ecdf", "pot"])
def test_correct_model_with_many_estimands_is_rarely_flagged(name):
    """With 20 uniform estimands, a Holm-adjusted verdict at 1% rejects about 1% of the time."""
    rng = np.random.default_rng(14)
    reps = 200
    flagged = sum(
        np.nanmin(holm(np.array([TESTS[name](rng.uniform(size=60)) for _ in range(20)]))) < 0.01
        for _ in range(reps)
    )
    assert flagged <= stats.binom.ppf(0.999, reps, 0.01)


def test_verdict_test_resolves_the_levels_many_estimands_need():
    """The verdict's p-values go far below 1/2001, so Holm over 145 quantities can still flag."""
    pit = np.random.default_rng(15).uniform(size=200) ** 2
    assert uniformity_pvalue(pit) * 145 < 0.01
    assert ecdf_pvalue(pit) * 145 > 0.01  # the simulated ECDF null bottoms out at 1/2001
