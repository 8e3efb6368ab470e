"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)

seeds = st.integers(0, 2**32 - 1)


@st.composite
def truths_and_draws(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """True values (k,) and posterior draws (k, L), with ties likely."""
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 50))
    pool = st.sampled_from([-1.0, 0.0, 0.5, 1.0]) | finite
    truth = draw(hnp.arrays(float, k, elements=pool))
    draws = draw(hnp.arrays(float, (k, n), elements=pool))
    return truth, draws


heights_settings = st.fixed_dictionaries(
    {
        "n_groups": st.integers(1, 8),
        "n_per_group": st.integers(1, 30),
        "mean_location": st.floats(100, 200),
        "mean_scale": st.floats(0.1, 20),
        "between_sd_scale": st.floats(0.1, 20),
        "within_sd_scale": st.floats(0.1, 20),
    }
)


@st.composite
def _gamma_prior(draw: st.DrawFn, prefix: str, low: float, high: float) -> dict[str, float]:
    """A Gamma prior's mean and sd settings, sd below the mean (as check_settings asks)."""
    mean = draw(st.floats(low, high))
    return {f"{prefix}_mean": mean, f"{prefix}_sd": mean * draw(st.floats(0.05, 0.95))}


unit_means = st.floats(0.05, 0.95)

school_settings = st.tuples(
    st.fixed_dictionaries(
        {
            "n_students": st.integers(1, 40),
            "mu_mean": unit_means,
            "mu_concentration": st.floats(2, 100),
        }
    ),
    _gamma_prior("nu", 2, 100),
).map(lambda parts: parts[0] | parts[1])

schools_settings = st.tuples(
    st.fixed_dictionaries(
        {
            "n_schools": st.integers(1, 8),
            "students_per_school": st.integers(1, 30),
            "pop_mean_mean": unit_means,
            "pop_mean_concentration": st.floats(2, 100),
            "nu_spread_scale": st.floats(0.01, 1),
        }
    ),
    _gamma_prior("school_concentration", 2, 200),
    _gamma_prior("nu", 2, 100),
).map(lambda parts: parts[0] | parts[1] | parts[2])

districts_settings = st.tuples(
    st.fixed_dictionaries(
        {
            "n_districts": st.integers(1, 5),
            "schools_per_district": st.integers(1, 5),
            "students_per_school": st.integers(1, 20),
            "pop_mean_mean": unit_means,
            "pop_mean_concentration": st.floats(2, 100),
        }
    ),
    _gamma_prior("district_concentration", 2, 200),
    _gamma_prior("school_concentration", 2, 200),
    _gamma_prior("nu", 2, 100),
).map(lambda parts: parts[0] | parts[1] | parts[2] | parts[3])
