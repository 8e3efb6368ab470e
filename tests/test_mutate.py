"""Generated mutants: each operator's rewrite, names, equivalence, the conjugate analytic shift."""

import functools
import pickle

import numpy as np
import pytest
from scipy import stats

from sbc import registry
from sbc.backends.nutpie import PyMCModel
from sbc.mutate import (
    MutationError,
    check_generated,
    default_base,
    enumerate_mutants,
    mutant_name,
    mutate_graph,
    parse_name,
    token,
)
from sbc.scenario import Model, Scenario, SettingError, Simulation

GROUP = np.array([0, 0, 1, 1, 2, 2])
Y = np.array([0.5, -0.3, 1.2, 0.8, -1.0, 0.1])
FAST = "FAST_COMPILE"
"""PyTensor mode for the log densities here: no C compilation (seconds saved per test)."""
VALUES = {"mu": 0.3, "tau": 1.1, "theta": np.array([0.2, -0.4, 0.9]), "p": 0.4, "sigma": 0.9}


def _small(design, example, potential=False):
    """Centred theta[3] around mu, a Beta p and sigma; y ~ Normal(theta[g] + p, sigma).

    ``potential=True`` writes the likelihood as a potential ``obs``, beside a data-free
    potential ``soft`` (a prior term).
    """
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        g = pm.Data("g", example["g"])
        mu = pm.Normal("mu", 1.0, 2.0)
        tau = pm.HalfNormal("tau", 3.0)
        theta = pm.Normal("theta", mu, tau, shape=3)
        p = pm.Beta("p", 2.0, 5.0)
        sigma = pm.HalfNormal("sigma", 1.5)
        if potential:
            pm.Potential("obs", pm.logp(pm.Normal.dist(theta[g] + p, sigma), y).sum())
            pm.Potential("soft", -0.5 * mu**2)
        else:
            pm.Normal("obs", theta[g] + p, sigma, observed=y)
    return model


SMALL = PyMCModel(_small, data=("y", "g"))


def _graph():
    return SMALL.graph(None, {"y": Y, "g": GROUP})


def terms(model, values):
    """Log density of every variable (and potential) of ``model`` at constrained ``values``."""
    from pymc.model.transform.conditioning import remove_value_transforms

    plain = remove_value_transforms(model)
    names = [v.name for v in (*plain.basic_RVs, *plain.potentials)]
    logp = plain.compile_logp(
        vars=[*plain.basic_RVs, *plain.potentials], sum=False, jacobian=False, mode=FAST
    )
    point = {v.name: np.asarray(values[v.name], dtype=v.dtype) for v in plain.value_vars}
    return {n: float(np.sum(t)) for n, t in zip(names, logp(point), strict=True)}


def _expected(**changed):
    """Log densities of the unmutated model at VALUES, with ``changed`` ones replaced."""
    v = VALUES
    out = {
        "mu": stats.norm(1.0, 2.0).logpdf(v["mu"]),
        "tau": stats.halfnorm(scale=3.0).logpdf(v["tau"]),
        "theta": stats.norm(v["mu"], v["tau"]).logpdf(v["theta"]).sum(),
        "p": stats.beta(2.0, 5.0).logpdf(v["p"]),
        "sigma": stats.halfnorm(scale=1.5).logpdf(v["sigma"]),
        "obs": stats.norm(v["theta"][GROUP] + v["p"], v["sigma"]).logpdf(Y).sum(),
    }
    return out | changed


def test_unmutated_small_model_has_the_expected_terms():
    """The reference log densities of the test model are right (the tests below compare to them)."""
    got = terms(_graph().model, VALUES)
    assert got == pytest.approx(_expected())


@pytest.mark.parametrize(
    ("operator", "target", "changed"),
    [
        ("prior_scale_x2", "mu", {"mu": stats.norm(1.0, 4.0).logpdf(VALUES["mu"])}),
        ("prior_scale_half", "tau", {"tau": stats.halfnorm(scale=1.5).logpdf(VALUES["tau"])}),
        ("prior_scale_x2", "p", {"p": stats.beta(0.5, 1.25).logpdf(VALUES["p"])}),
        ("prior_shift", "mu", {"mu": stats.norm(3.0, 2.0).logpdf(VALUES["mu"])}),
        (
            "prior_shift",
            "theta",
            {
                "theta": stats.norm(VALUES["mu"] + VALUES["tau"], VALUES["tau"])
                .logpdf(VALUES["theta"])
                .sum()
            },
        ),
        (
            "variance_as_sd",
            "obs",
            {
                "obs": stats.norm(VALUES["theta"][GROUP] + VALUES["p"], VALUES["sigma"] ** 2)
                .logpdf(Y)
                .sum()
            },
        ),
        (
            "index_shift",
            "theta",
            {
                "obs": stats.norm(VALUES["theta"][(GROUP + 1) % 3] + VALUES["p"], VALUES["sigma"])
                .logpdf(Y)
                .sum()
            },
        ),
        ("beta_swap", "p", {"p": stats.beta(5.0, 2.0).logpdf(VALUES["p"])}),
    ],
)
def test_operator_changes_exactly_its_term(operator, target, changed):
    """Each parameter rewrite changes its variable's density as expected and nothing else."""
    mutated = mutate_graph(_graph(), operator, target)
    assert terms(mutated.model, VALUES) == pytest.approx(_expected(**changed))
    assert mutated.containers == {"y": "y", "g": "g"}
    assert set(mutated.stored) == {"mu", "tau", "theta", "p", "sigma"}


def test_shift_of_a_positive_variable_moves_its_support():
    """prior_shift on a half-normal: tau = tau__unshifted + sd, the unshifted prior kept."""
    mutated = mutate_graph(_graph(), "prior_shift", "tau")
    shift = 3.0 * np.sqrt(1 - 2 / np.pi)
    values = {**VALUES, "tau__unshifted": VALUES["tau"] - shift}
    got = terms(mutated.model, values)
    assert "tau" not in got and "tau" in mutated.model.named_vars  # now a deterministic
    assert got.pop("tau__unshifted") == pytest.approx(
        stats.halfnorm(scale=3.0).logpdf(values["tau__unshifted"])
    )
    expected = _expected()
    expected.pop("tau")
    assert got == pytest.approx(expected)  # theta ~ Normal(mu, tau) with the shifted tau
    assert "tau__unshifted" in mutated.stored and "tau" in mutated.stored


def test_likelihood_dropped_or_counted_twice():
    """drop_likelihood removes the observed term and its data; double_likelihood adds it again."""
    dropped = mutate_graph(_graph(), "drop_likelihood", "obs")
    expected = _expected()
    obs = expected.pop("obs")
    assert terms(dropped.model, VALUES) == pytest.approx(expected)
    assert dropped.containers == {}  # the compiled model reads no data any more
    doubled = mutate_graph(_graph(), "double_likelihood", "obs")
    assert terms(doubled.model, VALUES) == pytest.approx(_expected(obs__again=obs))


def test_a_likelihood_written_as_a_potential_is_dropped_or_counted_twice():
    """A data-reading potential is a likelihood term; a potential of parameters alone is not."""
    build = functools.partial(_small, potential=True)
    graph = PyMCModel(build, data=("y", "g")).graph(None, {"y": Y, "g": GROUP})
    expected = _expected(soft=-0.5 * VALUES["mu"] ** 2)
    assert terms(graph.model, VALUES) == pytest.approx(expected)
    with pytest.raises(MutationError, match="applies to: obs\\)"):
        mutate_graph(graph, "drop_likelihood", "soft")
    dropped = mutate_graph(graph, "drop_likelihood", "obs")
    rest = dict(expected)
    obs = rest.pop("obs")
    assert terms(dropped.model, VALUES) == pytest.approx(rest)
    assert dropped.containers == {}
    doubled = mutate_graph(graph, "double_likelihood", "obs")
    assert terms(doubled.model, VALUES) == pytest.approx(expected | {"obs__again": obs})


def test_an_operator_that_does_not_apply_names_the_variables_it_does():
    """A mutant of a variable without that site fails with the variables it applies to."""
    with pytest.raises(MutationError, match="applies to: p"):
        mutate_graph(_graph(), "beta_swap", "mu")


def test_names_are_tokens_that_round_trip():
    """Names are operator:variable[@model], tokens hold no commas or separators."""
    assert token("1|country_sigma") == "1_country_sigma"
    assert token("a,b/c@d:e") == "a_b_c_d_e"
    assert mutant_name("prior_shift", "1|x", "partial", "partial") == "prior_shift:1_x"
    assert mutant_name("prior_shift", "mu", "none", "partial") == "prior_shift:mu@none"
    assert parse_name("prior_shift:mu@none") == ("prior_shift", "mu", "none")
    assert parse_name("index_shift:theta") == ("index_shift", "theta", None)
    with pytest.raises(MutationError, match="not a generated mutant name"):
        parse_name("frobnicate:mu")


def test_scenario_resolves_generated_mutants_by_name_in_any_process():
    """scenario.model builds a generated mutant from its name alone; it pickles for workers."""
    heights = registry.get("heights")
    model = registry.model(heights, "prior_scale_x2:between_sd")
    assert model.mutant and model.name == "prior_scale_x2:between_sd"
    assert model.estimands is heights.model("partial").estimands
    again = pickle.loads(pickle.dumps(model))
    assert again.backend == model.backend
    assert registry.model(heights, "index_shift:1_country@partial_bambi").backend.base == (
        heights.model("partial_bambi").backend
    )
    with pytest.raises(SettingError, match="no PyMC or Bambi model 'complete_x'"):
        registry.model(heights, "prior_shift:sigma@complete_x")
    with pytest.raises(SettingError, match="no model"):
        registry.model(heights, "unknown")


def test_a_fresh_process_builds_a_generated_mutant_from_its_name_alone():
    """A worker knows only the scenario reference and the name; the rewrite happens there."""
    import subprocess
    import sys

    code = (
        "from sbc import registry, seeding; s = registry.get('heights'); "
        "d = s.design(s.defaults); ex = s.simulate(d, seeding.example_rng()).data; "
        "g = registry.model(s, 'prior_shift:sigma').backend.graph(d, ex); print(sorted(g.stored))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'sigma__unshifted'" in out.stdout


def test_default_base_prefers_partial_then_the_first_pymc_model():
    """The partial model when present, else the first PyMC or Bambi model (never exact ones)."""
    assert default_base(registry.get("heights")) == "partial"
    assert default_base(registry.get("conjugate")) == "pymc"


def _estimands_theta(draws, design):
    return {"mu": draws["mu"]} | {f"theta[{j}]": draws["theta"][..., j] for j in range(3)}


def _estimands_mu(draws, design):
    return {"mu": draws["mu"]}


def _simulate(design, rng):
    return Simulation({"mu": 0.0} | {f"theta[{j}]": 0.0 for j in range(3)}, {"y": Y, "g": GROUP})


def _unused(design, example):
    """The small model plus a hyperparameter nothing uses and a unit likelihood scale."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.HalfNormal("unused", 1.0)
        tau = pm.HalfNormal("tau", 1.0)
        theta = pm.Normal("theta", mu, tau, shape=3)
        pm.Normal("obs", theta[example["g"]], 1.0, observed=y)
    return model


def _scenario(estimands, names):
    return Scenario(
        name="tiny",
        description="",
        settings=(),
        design=lambda settings: None,
        simulate=_simulate,
        estimands=lambda design: names,
        models=(Model("partial", "", PyMCModel(_unused, data=("y",)), estimands),),
    )


def test_equivalent_mutants_are_the_ones_the_graph_shows():
    """Unused variable, unit scale squared, and a relabelling the estimands cannot see."""
    found = enumerate_mutants(_scenario(_estimands_theta, ("mu", "theta[0]", "theta[1]")), {})
    equivalent = {m.name: m.equivalent for m in found.mutants}
    for op in ("prior_scale_x2", "prior_scale_half", "prior_shift"):
        assert "nothing the likelihood or the estimands use" in equivalent[f"{op}:unused"]
        assert equivalent[f"{op}:tau"] is None  # theta depends on it, the data on theta
    assert "constant 1" in equivalent["variance_as_sd:obs"]
    assert equivalent["index_shift:theta"] is None  # the estimands read theta[j]
    assert equivalent["drop_likelihood:obs"] is None
    found = enumerate_mutants(_scenario(_estimands_mu, ("mu",)), {})
    only_mu = {m.name: m.equivalent for m in found.mutants}
    assert "only renames the groups" in only_mu["index_shift:theta"]


def test_check_generated_rejects_a_variable_the_operator_does_not_apply_to():
    """`--models beta_swap:theta` on a model without a Beta is bad input, before any fit."""
    conjugate = registry.get("conjugate")
    check_generated(conjugate, conjugate.defaults, ["exact", "prior_shift:theta"])
    with pytest.raises(MutationError, match="mutant beta_swap:theta"):
        check_generated(conjugate, conjugate.defaults, ["beta_swap:theta"])


def _posterior_of_theta(model, y):
    """Mean and sd of theta's (normal) posterior, read off the log density's quadratic."""
    from pymc.model.transform.conditioning import remove_value_transforms

    plain = remove_value_transforms(model)
    logp = plain.compile_logp(mode=FAST)
    grid = np.array([-1.0, 0.0, 1.0])
    values = [float(logp({"theta": np.asarray(t)})) for t in grid]
    a, b, _ = np.polyfit(grid, values, 2)
    return -b / (2 * a), np.sqrt(-1 / (2 * a))


@pytest.mark.parametrize(
    ("name", "prior_mean", "prior_sd", "weight", "sigma"),
    [
        ("prior_shift:theta", 1.0, 1.0, 1, 2.0),  # prior mean moved by one prior sd
        ("prior_scale_x2:theta", 0.0, 2.0, 1, 2.0),
        ("prior_scale_half:theta", 0.0, 0.5, 1, 2.0),
        ("double_likelihood:obs", 0.0, 1.0, 2, 2.0),  # the n observations counted twice
        ("drop_likelihood:obs", 0.0, 1.0, 0, 2.0),
        ("variance_as_sd:obs", 0.0, 1.0, 1, 4.0),  # sd 2 used as a variance: sd 4
    ],
)
def test_planted_operator_on_conjugate_gives_the_analytic_posterior(
    name, prior_mean, prior_sd, weight, sigma
):
    """Each mutant of the conjugate PyMC model has the conjugate posterior of its changed model."""
    conjugate = registry.get("conjugate")
    design = conjugate.design(conjugate.resolve_settings({"sigma": 2.0}))
    y = np.linspace(-0.5, 1.5, design["n"])
    graph = registry.model(conjugate, name).backend.graph(design, {"y": y})
    graph.model["y"].set_value(y)
    mean, sd = _posterior_of_theta(graph.model, y)
    precision = 1 / prior_sd**2 + weight * design["n"] / sigma**2
    expected = (prior_mean / prior_sd**2 + weight * y.sum() / sigma**2) / precision
    assert mean == pytest.approx(expected, abs=1e-9)
    assert sd == pytest.approx(precision**-0.5, abs=1e-9)


def _normal_mean(prior_sd, initval=None):
    def build(design, example):
        import pymc as pm

        with pm.Model() as model:
            y = pm.Data("y", example["y"])
            mu = pm.Normal("mu", 0.0, prior_sd, initval=initval)
            pm.Normal("obs", mu, 1.0, observed=y)
        return model

    return PyMCModel(build, data=("y",))


def _two_models(*models):
    def simulate(design, rng):
        mu = rng.normal()
        return Simulation({"mu": float(mu)}, {"y": rng.normal(mu, 1.0, size=5)})

    return Scenario(
        name="two",
        description="",
        settings=(),
        design=lambda settings: None,
        simulate=simulate,
        estimands=lambda design: ("mu",),
        models=tuple(
            Model(name, "", backend, lambda draws, design: {"mu": draws["mu"]})
            for name, backend in models
        ),
    )


def test_without_partial_the_model_whose_prior_matches_the_simulator_is_mutated():
    """A wide-prior model declared first is passed over for the one with the simulator's prior."""
    from sbc.mutate.choice import choose_base

    scenario = _two_models(("wide", _normal_mean(5.0)), ("right", _normal_mean(1.0)))
    base, why = choose_base(scenario, {})
    assert base == "right" and "prior matches the simulator best" in why
    assert default_base(scenario) == "wide"  # names without @model refer to the first
    found = enumerate_mutants(scenario, {}, base)
    assert "prior_shift:mu@right" in {m.name for m in found.mutants}


def test_a_graph_pymc_cannot_rewrite_is_one_clear_error():
    """A model with hand-set initial values (which PyMC cannot rewrite) gets a MutationError."""
    scenario = _two_models(("partial", _normal_mean(1.0, initval=0.5)))
    with pytest.raises(MutationError, match="graph of partial cannot be rewritten"):
        enumerate_mutants(scenario, {})
