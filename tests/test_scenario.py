import numpy as np
import pytest
from hypothesis import given

from sbc import registry, seeding
from sbc.scenario import SettingError
from scenarios import heights
from tests.strategies import heights_settings, seeds


def test_registry_knows_heights_and_refuses_unknown_names():
    """Scenarios are found by name; an unknown name is a SettingError naming the known ones."""
    assert registry.get("heights") is heights.SCENARIO
    with pytest.raises(SettingError, match=r"unknown scenario 'nope'.*heights"):
        registry.get("nope")


def test_settings_parse_text_and_keep_types():
    """--set values are parsed to the setting's type; untouched settings keep defaults."""
    values = heights.SCENARIO.resolve_settings({"n_per_group": "5", "mean_scale": "2.5"})
    assert values["n_per_group"] == 5 and isinstance(values["n_per_group"], int)
    assert values["mean_scale"] == 2.5
    assert values["n_groups"] == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_people": "5"}, "no setting 'n_people'"),
        ({"n_groups": "0"}, "n_groups=0: must be at least 1"),
        ({"n_groups": "2.5"}, "needs an integer"),
        ({"mean_scale": "-1"}, "must be positive"),
        ({"mean_scale": "nan"}, "must be finite"),
        ({"mean_scale": "abc"}, "needs a number"),
    ],
)
def test_impossible_settings_are_refused(overrides, message):
    """Unknown keys and impossible values raise a SettingError that names the problem."""
    with pytest.raises(SettingError, match=message):
        heights.SCENARIO.resolve_settings(overrides)


def test_unknown_model_is_refused():
    """Asking a scenario for a model it lacks names the models it has."""
    with pytest.raises(SettingError, match=r"no model 'pooled'.*partial"):
        heights.SCENARIO.model("pooled")


@given(heights_settings, seeds)
def test_heights_simulation_shapes_follow_settings(settings, seed):
    """One height per person, one true value per estimand, all finite."""
    design = heights.design(settings)
    sim = heights.simulate(design, np.random.default_rng(seed))
    assert sim.data["height"].shape == (settings["n_groups"] * settings["n_per_group"],)
    assert set(sim.truth) == set(heights.estimands(design))
    assert np.all(np.isfinite(sim.data["height"]))
    assert sim.truth["sigma"] >= 0


@given(heights_settings, seeds)
def test_heights_same_seed_same_data(settings, seed):
    """The generative process depends only on its generator."""
    design = heights.design(settings)
    a = heights.simulate(design, seeding.data_rng(seed, 3))
    b = heights.simulate(design, seeding.data_rng(seed, 3))
    assert a.truth == b.truth
    np.testing.assert_array_equal(a.data["height"], b.data["height"])


def test_heights_prior_moments_match_the_generative_prior():
    """Over many draws, parameters and group means have the prior's moments."""
    design = heights.design(heights.SCENARIO.defaults)
    rng = np.random.default_rng(0)
    sims = [heights.simulate(design, rng) for _ in range(4000)]
    grand = np.array([s.truth["grand_mean"] for s in sims])
    sigma = np.array([s.truth["sigma"] for s in sims])
    spread = np.array([s.truth["country_mean[1]"] - s.truth["grand_mean"] for s in sims])
    assert abs(grand.mean() - 176) < 0.3 and abs(grand.std() - 5) < 0.2
    assert abs(sigma.mean() - 10 * np.sqrt(2 / np.pi)) < 0.2  # half-normal mean
    assert abs(spread.std() - 8) < 0.3  # between_sd * z has variance E[between_sd^2] = 64
    first = np.array([s.data["height"][:20].mean() - s.truth["country_mean[1]"] for s in sims])
    assert abs(first.mean()) < 0.15  # people of country 1 are centred on its mean


def test_seed_streams_differ_by_simulation_and_model_only():
    """Streams depend on (seed, simulation, model) and not on anything else."""
    draw = lambda rng: rng.integers(2**62)  # noqa: E731
    assert draw(seeding.model_rng(1, 2, "a")) == draw(seeding.model_rng(1, 2, "a"))
    assert draw(seeding.model_rng(1, 2, "a")) != draw(seeding.model_rng(1, 2, "b"))
    assert draw(seeding.model_rng(1, 2, "a")) != draw(seeding.model_rng(1, 3, "a"))
    assert draw(seeding.data_rng(1, 2)) != draw(seeding.data_rng(2, 2))


def test_heights_partial_likelihood_is_the_hierarchy_with_its_normal_levels_integrated():
    """The heights partial model's data density equals the multivariate normal of the hierarchy."""
    from scipy import stats

    design = heights.design(heights.SCENARIO.resolve_settings({"n_groups": 3, "n_per_group": 5}))
    height = heights.simulate(design, seeding.data_rng(0, 2)).data["height"]
    model = heights._build_partial(design, {"height": height})
    logp = model.compile_logp(jacobian=False)
    member = np.eye(3)[design.country]
    for between_sd, sigma in [(3.0, 8.0), (0.2, 12.0), (15.0, 1.5)]:
        point = {
            "between_sd_log__": np.log(between_sd),
            "sigma_log__": np.log(sigma),
            "grand_mean_e": 0.0,
            "country_mean_e": np.zeros(3),
        }
        priors = (
            stats.halfnorm.logpdf(between_sd, scale=design.between_sd_scale)
            + stats.halfnorm.logpdf(sigma, scale=design.within_sd_scale)
            + 4 * stats.norm.logpdf(0.0)
        )
        cov = sigma**2 * np.eye(15) + between_sd**2 * member @ member.T + design.mean_scale**2
        mean = np.full(15, design.mean_location)
        expected = stats.multivariate_normal.logpdf(height, mean, cov)
        assert logp(point) - priors == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("infinite", [False, True])
def test_group_logliks_are_the_sums_over_each_group(infinite):
    """The total and per-group log-likelihoods are plain sums, an infinite term included."""
    from sbc.scenario import Likelihood, Scenario

    index = np.array([0, 1, 0, 2, 1])
    rng = np.random.default_rng(0)
    pointwise = rng.normal(size=(3, 7, 5))
    if infinite:
        pointwise[1, 2, 3] = -np.inf
    scenario = Scenario(
        name="sums",
        description="",
        settings=(),
        design=lambda s: None,
        simulate=lambda d, r: None,
        estimands=lambda d: ("a",),
        models=(),
        likelihood=Likelihood(lambda p, y, d: pointwise, lambda d: (["x", "y", "z"], index)),
    )
    out = scenario.quantities({"a": np.zeros((3, 7))}, {}, None)
    np.testing.assert_allclose(out["loglik"], pointwise.sum(-1))
    for j, label in enumerate("xyz"):
        np.testing.assert_allclose(out[f"loglik[{label}]"], pointwise[..., index == j].sum(-1))
