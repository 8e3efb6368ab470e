import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sbc.stats.posterior import QUANTILES, fit_diagnostics, quantile_column, summarize


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
