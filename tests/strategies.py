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
