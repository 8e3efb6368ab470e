"""The compile-once nutpie backend on the real stack (PyMC and Bambi models)."""

import numpy as np
import pandas as pd
import pytest

from sbc import seeding
from sbc.backends import Sampling
from sbc.backends.nutpie import NutpieFitter
from sbc.results.schema import TIMING_COLUMNS
from scenarios import heights
from tests.helpers import run

SAMPLING = Sampling(chains=2, tune=300, draws=300)


@pytest.fixture(scope="module")
def design():
    return heights.design(heights.SCENARIO.defaults)


@pytest.fixture(scope="module")
def datasets(design):
    return [heights.simulate(design, seeding.data_rng(0, i)) for i in range(2)]


def _compile(name, design, data):
    return heights.SCENARIO.model(name).backend.compile(design, data)


@pytest.mark.parametrize("name", ["partial", "none"])
def test_refit_on_new_data_equals_a_model_compiled_for_that_data(name, design, datasets):
    """Swapping data into a compiled model gives exactly the fit of a model built on that data."""
    first, second = datasets
    reused = _compile(name, design, first.data).fit(second.data, 5, SAMPLING)
    fresh = _compile(name, design, second.data).fit(second.data, 5, SAMPLING)
    assert reused.draws.keys() == fresh.draws.keys()
    for key in reused.draws:
        np.testing.assert_allclose(reused.draws[key], fresh.draws[key], rtol=1e-8)


def test_refit_follows_the_data(design, datasets):
    """A refitted model's posterior moves with the data it is given."""
    model = heights.SCENARIO.model("partial_bambi")
    fitter = model.backend.compile(design, datasets[0].data)
    assert isinstance(fitter, NutpieFitter)
    shifted = {"height": datasets[0].data["height"] + 30.0}

    def country_means(data):
        est = model.estimands(fitter.fit(data, 1, SAMPLING).draws, design)
        return np.array([est[f"country_mean[{j}]"].mean() for j in range(1, 5)])

    moved = country_means(shifted) - country_means(datasets[0].data)
    assert np.all((25 < moved) & (moved < 31))  # 20 people per country: little shrinkage


def test_bambi_model_stores_no_per_observation_draws(design, datasets):
    """The Bambi linear predictor (one value per person) is not kept in the draws."""
    draws = _compile("none", design, datasets[0].data).fit(datasets[0].data, 1, SAMPLING).draws
    assert set(draws) == {"country", "sigma"}


def test_every_model_recovers_country_means_in_the_right_order():
    """With many people per country, each model's country means sit on the true ones.

    Eleven countries: Bambi sorts group labels as text, so unpadded labels (c10 < c2)
    would put some countries' means on others.
    """
    settings = heights.SCENARIO.resolve_settings({"n_per_group": 200, "n_groups": 11})
    design = heights.design(settings)
    sim = heights.simulate(design, np.random.default_rng(3))
    truth = np.array([sim.truth[f"country_mean[{j}]"] for j in range(1, 12)])
    for name in ("none", "partial", "partial_bambi"):
        model = heights.SCENARIO.model(name)
        draws = model.backend.compile(design, sim.data).fit(sim.data, 2, SAMPLING).draws
        est = model.estimands(draws, design)
        means = np.array([est[f"country_mean[{j}]"].mean() for j in range(1, 12)])
        tolerance = 5 * sim.truth["sigma"] / np.sqrt(200) + 0.1
        np.testing.assert_allclose(means, truth, atol=tolerance, err_msg=name)


def test_heights_results_identical_for_one_and_two_jobs(tmp_path):
    """The real sampler, run in one process or two loky workers, gives identical tables."""
    settings = heights.SCENARIO.defaults
    kwargs = {"seed": 3, "sampling": Sampling(chains=2, tune=200, draws=200)}
    models = ["complete", "partial"]
    one = run(heights.SCENARIO, settings, models, 4, tmp_path / "one", jobs=1, **kwargs)
    two = run(heights.SCENARIO, settings, models, 4, tmp_path / "two", jobs=2, **kwargs)
    assert one["error"].isna().all()
    pd.testing.assert_frame_equal(
        one.drop(columns=list(TIMING_COLUMNS)), two.drop(columns=list(TIMING_COLUMNS))
    )


def test_kept_draws_read_through_a_slice_when_they_are_one_run():
    """A mask of kept draws that is one run becomes a slice; any other mask stays a mask."""
    from sbc.backends.nutpie import _selector

    values = np.arange(10.0)
    run = np.r_[np.zeros(3, bool), np.ones(7, bool)]
    assert _selector(run) == slice(3, 10)
    gaps = run.copy()
    gaps[5] = False
    for mask in (gaps, np.zeros(10, bool)):
        np.testing.assert_array_equal(values[_selector(mask)], values[mask])


def test_arrow_conversion_equals_nutpie_own_conversion(design, datasets):
    """Draws, divergences and step counts from the raw Arrow trace equal nutpie's DataTree."""
    import nutpie

    from sbc.backends.nutpie import arrow_posterior

    fitter = _compile("partial_centred", design, datasets[0].data)
    compiled = fitter.compiled.with_data(height=datasets[1].data["height"])
    kwargs = {
        "chains": 2,
        "tune": 200,
        "draws": 200,
        "seed": 9,
        "cores": 1,
        "progress_bar": False,
        "save_warmup": False,
    }
    tree = nutpie.sample(compiled, **kwargs)
    raw = nutpie.sample(compiled, return_raw_trace=True, **kwargs)
    ours = arrow_posterior(*raw.get_arrow_trace(), skip=set(compiled.reparameterized_names))
    assert set(ours.draws) == set(tree.posterior.data_vars)
    for name, values in ours.draws.items():
        np.testing.assert_array_equal(values, tree.posterior[name].to_numpy())
    assert ours.divergences == int(tree.sample_stats["diverging"].sum())
    assert ours.grad_evals == pytest.approx(float(tree.sample_stats["n_steps"].mean()))
    assert ours.tree_depth == pytest.approx(float(tree.sample_stats["depth"].mean()))
