import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sbc.stats.coverage import LEVELS, binomial_interval, contraction, covered, z_scores


def test_perfect_interval_covers_at_its_level():
    """Exact central intervals of the truth's own distribution cover at their nominal level."""
    rng = np.random.default_rng(20)
    n = 20_000
    truth = rng.normal(size=n)
    for level in LEVELS:
        half = stats.norm.ppf(0.5 + level / 2)
        rate = covered(np.full(n, -half), np.full(n, half), truth).mean()
        low, high = binomial_interval(round(level * n), n, 0.999)
        assert low <= rate <= high


@given(st.integers(1, 200), st.data())
def test_binomial_interval_matches_scipy_exact(n, data):
    """The Clopper-Pearson interval equals SciPy's exact binomial interval."""
    k = data.draw(st.integers(0, n))
    expected = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    np.testing.assert_allclose(binomial_interval(k, n), (expected.low, expected.high), atol=1e-9)


def test_binomial_interval_of_no_trials_is_undefined():
    """Zero trials give NaN bounds."""
    assert all(np.isnan(binomial_interval(0, 0)))


def test_z_scores_and_contraction_known_answers():
    """A z-score is (mean - truth) / sd; halving the prior sd gives contraction 3/4."""
    np.testing.assert_allclose(
        z_scores(np.array([1.0, 3.0]), np.array([2.0, 1.0]), np.array([0.0, 1.0])), [0.5, 2.0]
    )
    truth = np.random.default_rng(21).normal(0, 2, size=50_000)
    assert abs(contraction(np.full(truth.size, 1.0), truth) - 0.75) < 0.01
    assert np.isnan(contraction(np.ones(3), np.zeros(3)))
