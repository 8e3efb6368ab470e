import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sbc.stats.mcmc import rhat_and_ess_bulk
from sbc.stats.posterior import (
    QUANTILES,
    diagnostics_summary,
    distinct_quantities,
    quantile_column,
    summarize,
)


def fit_diagnostics(draws):
    first = next(iter(draws.values()))
    quantities = distinct_quantities(np.empty((0, *first.shape[:2])), draws)
    return diagnostics_summary(*rhat_and_ess_bulk(quantities))


def test_quantile_columns_are_named_in_percent():
    """Quantile 0.025 is stored as q2.5 and the median as q50."""
    assert [quantile_column(q) for q in (0.025, 0.5, 0.975)] == ["q2.5", "q50", "q97.5"]


@given(hnp.arrays(float, (2, 40), elements=st.floats(-1e3, 1e3)))
def test_summary_matches_numpy(draws):
    """Means, sds and quantiles equal NumPy's on each row."""
    out = summarize(draws)
    np.testing.assert_allclose(out["post_mean"], draws.mean(-1))
    np.testing.assert_allclose(out["post_sd"], draws.std(-1, ddof=1), atol=1e-9)
    for q in QUANTILES:
        np.testing.assert_allclose(out[quantile_column(q)], np.quantile(draws, q, axis=-1))


def test_diagnostics_of_independent_chains_are_good():
    """Independent, identical chains give R-hat near 1 and ESS near the draw count."""
    rng = np.random.default_rng(0)
    out = fit_diagnostics({"a": rng.normal(size=(2, 1000)), "b": rng.normal(size=(2, 1000, 3))})
    assert out["max_rhat"] < 1.01
    assert 1500 < out["min_ess_bulk"] < 2600


def test_diagnostics_flag_chains_that_disagree():
    """Chains centred in different places give a large R-hat."""
    rng = np.random.default_rng(1)
    draws = rng.normal(size=(2, 500)) + np.array([[0.0], [3.0]])
    assert fit_diagnostics({"a": draws})["max_rhat"] > 1.5


def test_distinct_quantities_diagnoses_each_quantity_once():
    """Draws identical to an estimand are not repeated; the others follow the estimands."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 2, 50))
    out = distinct_quantities(a[None], {"v": np.stack([a, b], axis=-1)})
    assert out.shape == (2, 2, 50)
    np.testing.assert_array_equal(out[1], b)


def test_diagnostics_of_a_single_chain_have_no_rhat():
    """R-hat needs two chains: a single chain reports NaN, not a fake value."""
    out = fit_diagnostics({"a": np.random.default_rng(5).normal(size=(1, 400))})
    assert np.isnan(out["max_rhat"]) and out["min_ess_bulk"] > 100


@given(
    hnp.arrays(float, (3, 25), elements=st.floats(-1e6, 1e6)),
    st.lists(st.floats(0, 1), min_size=1, max_size=6),
)
def test_sorted_quantiles_equal_numpy_quantile(draws, levels):
    """One sort and interpolation give numpy.quantile's linear quantiles at any level."""
    from sbc.stats.posterior import sorted_quantiles

    expected = np.quantile(draws, levels, axis=-1)
    np.testing.assert_allclose(sorted_quantiles(draws, tuple(levels)), expected, atol=1e-6)


def test_sorted_quantiles_of_a_row_with_nan_are_nan():
    """A NaN draw makes its row's quantiles NaN, as in NumPy; other rows are unaffected."""
    from sbc.stats.posterior import sorted_quantiles

    draws = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]])
    out = sorted_quantiles(draws, (0.5,))
    assert np.isnan(out[0, 0]) and out[0, 1] == 2.0
