import numpy as np
import pytest
from hypothesis import given

from sbc import registry, seeding
from sbc.scenario import SettingError
from scenarios import districts, school, schools
from tests.strategies import districts_settings, school_settings, schools_settings, seeds

MODULES = {"school": school, "schools": schools, "districts": districts}
STRATEGIES = {"school": school_settings, "schools": schools_settings}


def _simulations(module, n, seed=0, **overrides):
    design = module.design(module.SCENARIO.resolve_settings(overrides))
    rng = np.random.default_rng(seed)
    return design, [module.simulate(design, rng) for _ in range(n)]


def _truths(sims, name):
    return np.array([s.truth[name] for s in sims])


def test_registry_knows_the_beta_scenarios():
    """school, schools and districts are registered under their own names."""
    for name, module in MODULES.items():
        assert registry.get(name) is module.SCENARIO
        assert module.SCENARIO.name == name


@given(school_settings, seeds)
def test_school_simulation_follows_settings(settings, seed):
    """One score per student, strictly inside (0, 1); truths are mu in (0, 1) and nu > 0."""
    design = school.design(settings)
    sim = school.simulate(design, np.random.default_rng(seed))
    assert sim.data["score"].shape == (settings["n_students"],)
    assert np.all((sim.data["score"] > 0) & (sim.data["score"] < 1))
    assert set(sim.truth) == set(school.estimands(design)) == {"mu", "nu"}
    assert 0 < sim.truth["mu"] < 1 and sim.truth["nu"] > 0


@given(schools_settings, seeds)
def test_schools_simulation_follows_settings(settings, seed):
    """Schools x students scores strictly inside (0, 1); one truth per estimand."""
    design = schools.design(settings)
    sim = schools.simulate(design, np.random.default_rng(seed))
    n = settings["n_schools"] * settings["students_per_school"]
    assert sim.data["score"].shape == (n,)
    assert np.all((sim.data["score"] > 0) & (sim.data["score"] < 1))
    assert list(sim.truth) == list(schools.estimands(design))
    assert len(sim.truth) == settings["n_schools"] + 2
    means = [sim.truth[f"school_mean[{j + 1}]"] for j in range(settings["n_schools"])]
    assert all(0 < m < 1 for m in [*means, sim.truth["pop_mean"]])
    assert sim.truth["nu"] > 0


@given(districts_settings, seeds)
def test_districts_simulation_follows_settings(settings, seed):
    """Districts x schools x students scores strictly inside (0, 1); one truth per estimand."""
    design = districts.design(settings)
    sim = districts.simulate(design, np.random.default_rng(seed))
    n_schools = settings["n_districts"] * settings["schools_per_district"]
    assert design.n_schools == n_schools
    assert sim.data["score"].shape == (n_schools * settings["students_per_school"],)
    assert np.all((sim.data["score"] > 0) & (sim.data["score"] < 1))
    assert list(sim.truth) == list(districts.estimands(design))
    assert len(sim.truth) == 1 + settings["n_districts"] + n_schools
    assert all(0 < v < 1 for v in sim.truth.values())


@given(districts_settings)
def test_districts_membership_is_consistent_across_levels(settings):
    """Every school lies in exactly one district, and all its students share that district."""
    design = districts.design(settings)
    school_of, district_of = design.school, design.district
    per_district = np.bincount(design.district_of_school, minlength=settings["n_districts"])
    assert np.all(per_district == settings["schools_per_district"])
    assert np.all(np.bincount(school_of) == settings["students_per_school"])
    for k in range(design.n_schools):
        assert np.unique(district_of[school_of == k]).size == 1
    np.testing.assert_array_equal(design.district_of_school[school_of], district_of)
    # global school index k lies in district (k - 1) // schools_per_district + 1 (1-based)
    ks = np.arange(design.n_schools)
    np.testing.assert_array_equal(design.district_of_school, ks // settings["schools_per_district"])
    frame = districts._frame(design, {"score": np.full(school_of.size, 0.5)})
    assert frame.groupby("school", observed=True)["district"].nunique().eq(1).all()


@given(schools_settings)
def test_schools_membership_groups_students_by_school(settings):
    """Students are grouped by school, students_per_school in each."""
    design = schools.design(settings)
    counts = np.bincount(design.school, minlength=settings["n_schools"])
    assert np.all(counts == settings["students_per_school"])
    assert np.all(np.diff(design.school) >= 0)


@pytest.mark.parametrize("name", list(MODULES))
@given(seed=seeds)
def test_same_seed_same_data(name, seed):
    """Each generative process depends only on its generator."""
    module = MODULES[name]
    design = module.design(module.SCENARIO.defaults)
    a = module.simulate(design, seeding.data_rng(seed, 7))
    b = module.simulate(design, seeding.data_rng(seed, 7))
    c = module.simulate(design, seeding.data_rng(seed, 8))
    assert a.truth == b.truth
    np.testing.assert_array_equal(a.data["score"], b.data["score"])
    assert not np.array_equal(a.data["score"], c.data["score"])


def _shrink(shape_rate):
    """E[k / (k + 1)] for k ~ Gamma(shape, rate): how much one Beta level keeps of m (1 - m)."""
    shape, rate = shape_rate
    k = np.random.default_rng(9).gamma(shape, 1 / rate, size=1_000_000)
    return (k / (k + 1)).mean()


def test_school_prior_moments_match_the_generative_prior():
    """The mean is Beta(12, 4), nu Gamma(mean 10, sd 3); scores centre on mu with Beta spread."""
    _, sims = _simulations(school, 4000)
    mu, nu = _truths(sims, "mu"), _truths(sims, "nu")
    assert abs(mu.mean() - 0.75) < 0.006 and abs(mu.std() - np.sqrt(0.1875 / 17)) < 0.005
    assert abs(nu.mean() - 10) < 0.15 and abs(nu.std() - 3) < 0.15
    scores = np.array([s.data["score"] for s in sims])
    assert abs((scores.mean(axis=1) - mu).mean()) < 0.002
    # within-school variance of Beta(mu nu, (1 - mu) nu) is mu (1 - mu) / (nu + 1)
    ratio = scores.var(axis=1, ddof=1).mean() / (mu * (1 - mu) / (nu + 1)).mean()
    assert abs(ratio - 1) < 0.03


def test_schools_prior_moments_match_the_generative_prior():
    """pop_mean, nu and the school means have the moments of the nested Beta prior."""
    design, sims = _simulations(schools, 4000)
    pop, nu = _truths(sims, "pop_mean"), _truths(sims, "nu")
    first, second = _truths(sims, "school_mean[1]"), _truths(sims, "school_mean[2]")
    assert abs(pop.mean() - 0.75) < 0.005 and abs(pop.std() - np.sqrt(0.1875 / 21)) < 0.004
    assert abs(nu.mean() - 30) < 0.3 and abs(nu.std() - 5) < 0.3
    assert abs(first.mean() - 0.75) < 0.006
    # E[x (1 - x)] shrinks by E[k / (k + 1)] per nested Beta level
    kept = 20 / 21 * _shrink(design.kappa_gamma)
    assert abs(first.var() / (0.1875 * (1 - kept)) - 1) < 0.08
    # two schools share pop_mean only: their covariance is Var(pop_mean)
    assert abs(np.cov(first, second)[0, 1] / pop.var() - 1) < 0.15
    scores = np.array([s.data["score"][: design.students_per_school] for s in sims])
    assert abs((scores.mean(axis=1) - first).mean()) < 0.002


def test_districts_prior_moments_match_the_generative_prior():
    """District and school means have the moments of the three-level nested Beta prior."""
    design, sims = _simulations(districts, 4000)
    pop = _truths(sims, "pop_mean")
    district = _truths(sims, "district_mean[1]")
    s1, s2, s4 = (_truths(sims, f"school_mean[{k}]") for k in (1, 2, 4))
    assert abs(pop.mean() - 0.75) < 0.004 and abs(pop.std() - np.sqrt(0.1875 / 41)) < 0.003
    assert abs(district.mean() - 0.75) < 0.005 and abs(s1.mean() - 0.75) < 0.005
    kept = 40 / 41 * _shrink(design.gamma("district_concentration"))
    assert abs(district.var() / (0.1875 * (1 - kept)) - 1) < 0.08
    kept *= _shrink(design.gamma("school_concentration"))
    assert abs(s1.var() / (0.1875 * (1 - kept)) - 1) < 0.08
    # schools 1 and 2 share district 1, school 4 is in district 2
    assert abs(np.cov(s1, s2)[0, 1] / district.var() - 1) < 0.15
    assert abs(np.cov(s1, s4)[0, 1] / pop.var() - 1) < 0.2
    assert abs(np.cov(district, s1)[0, 1] / district.var() - 1) < 0.15
    scores = np.array([s.data["score"][: design.students_per_school] for s in sims])
    assert abs((scores.mean(axis=1) - s1).mean()) < 0.002


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("school", {"n_students": "0"}, "n_students=0: must be at least 1"),
        ("school", {"mu_mean": "1.5"}, "strictly between 0 and 1"),
        ("school", {"nu_mean": "-1"}, "must be positive"),
        ("school", {"nu_sd": "20"}, "nu_sd=20.0 is not below nu_mean=10.0"),
        ("schools", {"n_schools": "0"}, "n_schools=0: must be at least 1"),
        ("schools", {"students_per_school": "0"}, "must be at least 1"),
        ("schools", {"pop_mean_mean": "0"}, "strictly between 0 and 1"),
        ("schools", {"pop_mean_concentration": "-2"}, "must be positive"),
        ("schools", {"school_concentration_sd": "60"}, "not below school_concentration_mean"),
        ("schools", {"nu_spread_scale": "0"}, "must be positive"),
        ("districts", {"n_districts": "0"}, "n_districts=0: must be at least 1"),
        ("districts", {"schools_per_district": "0"}, "must be at least 1"),
        ("districts", {"students_per_school": "-3"}, "must be at least 1"),
        ("districts", {"pop_mean_mean": "1"}, "strictly between 0 and 1"),
        ("districts", {"district_concentration_mean": "-5"}, "must be positive"),
        ("districts", {"nu_mean": "4"}, "nu_sd=5.0 is not below nu_mean=4.0"),
    ],
)
def test_impossible_settings_are_refused(name, overrides, message):
    """Impossible sizes, means outside (0, 1), negative or near-zero concentrations fail."""
    with pytest.raises(SettingError, match=message):
        MODULES[name].SCENARIO.resolve_settings(overrides)


def _fake_draws(module, design, model_name):
    """Posterior-shaped draws for every variable a model's estimand function reads."""
    rng = np.random.default_rng(1)
    shape = (2, 3)
    n_groups = {
        "school": getattr(design, "n_schools", 1),
        "district": getattr(design, "n_districts", 1),
    }
    sizes = {
        "school_mean": n_groups["school"],
        "district_mean": n_groups["district"],
        "nu_school": n_groups["school"],
        "1|school": n_groups["school"],
        "1|district": n_groups["district"],
    }
    names = [
        "mu",
        "nu",
        "pop_mean",
        "kappa",
        "Intercept",
        "1|school_sigma",
        "1|district_sigma",
        *sizes,
    ]
    draws = {}
    for name in names:
        extra = (sizes[name],) if name in sizes else ()
        draws[name] = rng.uniform(0.1, 0.9, size=(*shape, *extra))
    return draws


@pytest.mark.parametrize("name", list(MODULES))
def test_every_model_yields_every_estimand_per_draw(name):
    """Each model maps (chain, draw) posterior draws to every estimand, in (0, 1) for means."""
    module = MODULES[name]
    design = module.design(module.SCENARIO.defaults)
    wanted = set(module.estimands(design))
    for model in module.SCENARIO.models:
        out = model.estimands(_fake_draws(module, design, model.name), design)
        assert set(out) == wanted, model.name
        for key, value in out.items():
            assert value.shape == (2, 3), (model.name, key)
            if key != "nu":
                assert np.all((value > 0) & (value < 1)), (model.name, key)


def test_logistic_normal_mean_matches_monte_carlo():
    """Gauss-Hermite E[expit(loc + sd Z)] agrees with a large Monte Carlo average."""
    z = np.random.default_rng(3).normal(size=400_000)
    for loc, sd in [(0.0, 0.0), (1.1, 0.4), (-2.0, 1.5)]:
        expected = (1 / (1 + np.exp(-(loc + sd * z)))).mean()
        assert abs(school.logistic_normal_mean(loc, sd) - expected) < 2e-3


def test_schools_partial_recovers_school_means_on_a_large_design():
    """The calibrated partial model compiles and recovers school means from 400 students each."""
    from sbc.backends import Sampling

    settings = schools.SCENARIO.resolve_settings({"n_schools": 3, "students_per_school": 400})
    design = schools.design(settings)
    sim = schools.simulate(design, np.random.default_rng(11))
    model = schools.SCENARIO.model("partial")
    fitter = model.backend.compile(design, sim.data)
    posterior = fitter.fit(sim.data, seed=5, sampling=Sampling(tune=300, draws=300))
    est = model.estimands(posterior.draws, design)
    for j in range(3):
        key = f"school_mean[{j + 1}]"
        draws = est[key]
        assert abs(draws.mean() - sim.truth[key]) < 4 * draws.std() + 1e-3, key
        assert draws.std() < 0.02


def test_bambi_group_levels_follow_the_design_order():
    """Bambi sorts levels as strings; labels are padded so its order is the design's (12 groups)."""
    overrides = {"n_districts": 12, "schools_per_district": 1, "students_per_school": 2}
    design = districts.design(districts.SCENARIO.resolve_settings(overrides))
    sim = districts.simulate(design, np.random.default_rng(0))
    built = districts.SCENARIO.model("partial_bambi").backend.build(design, sim.data)
    coords = built.backend.model.coords
    assert list(coords["district__factor_dim"]) == design.district_labels
    assert list(coords["school__factor_dim"]) == design.school_labels


@pytest.mark.parametrize("name", ["school", "schools", "districts"])
def test_summed_beta_likelihood_equals_the_per_student_beta_density(name):
    """Per-school sufficient statistics give the log density of every score, summed."""
    from scipy import stats

    scenario = registry.get(name)
    design = scenario.design(scenario.defaults)
    score = scenario.simulate(design, seeding.data_rng(0, 1)).data["score"]
    sums = school.score_sums(design, {"score": score})["score_sums"]
    n_schools = getattr(design, "n_schools", 1)
    group = getattr(design, "school", np.zeros(score.size, dtype=int))
    rng = np.random.default_rng(2)
    mean, conc = rng.uniform(0.2, 0.9, n_schools), rng.uniform(5, 60, n_schools)
    n = np.bincount(group, minlength=n_schools)
    ours = school._beta_sums_logp(sums, mean * conc, (1 - mean) * conc, n).eval()
    per_student = stats.beta.logpdf(score, (mean * conc)[group], ((1 - mean) * conc)[group])
    np.testing.assert_allclose(ours, np.bincount(group, weights=per_student), rtol=1e-9)
