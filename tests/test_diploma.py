"""The diploma scenario: pass counts out of writers, schools within authorities."""

import numpy as np
import pytest
from scipy import special, stats

from sbc import registry, seeding
from sbc.backends import Sampling
from sbc.engine.preflight import check_scenario
from sbc.workflows.sweep import load_spec
from scenarios import diploma

SCENARIO = diploma.SCENARIO


def test_design_has_unequal_authorities_and_schools():
    """Authorities hold 0.5, 1, 1.5 x schools_per_authority; writers vary around the mean."""
    design = SCENARIO.design(SCENARIO.resolve_settings({"n_authorities": 4}))
    np.testing.assert_array_equal(design.schools_of, [2, 3, 4, 2])
    assert design.n_schools == 11 and len(design.authority) == 11
    assert sorted(design.school_labels) == design.school_labels  # Bambi's level order
    assert design.writers.min() == 6 and design.writers.max() == 32
    one = SCENARIO.design(SCENARIO.resolve_settings({"writers_per_school": 1}))
    assert one.writers.min() == 1 and one.writers.max() == 2


def test_scenario_is_registered_and_passes_its_check():
    """`diploma` is listed, every model passes the pre-run check, mutants are marked."""
    assert "diploma" in registry.names()
    names = [m.name for m in SCENARIO.models]
    check_scenario(SCENARIO, SCENARIO.defaults, names)
    assert SCENARIO.default_models == [
        "complete",
        "complete_bambi",
        "none",
        "none_bambi",
        "partial",
        "partial_bambi",
    ]
    assert len(SCENARIO.mutants) == 4


def test_loglik_is_the_binomial_log_probability_at_the_truth():
    """The loglik test quantity at the true rates is the binomial log pmf of the counts."""
    design = SCENARIO.design(SCENARIO.defaults)
    sim = SCENARIO.simulate(design, seeding.data_rng(0, 1))
    truth = {k: np.asarray(v) for k, v in sim.truth.items()}
    quantities = SCENARIO.quantities(truth, sim.data, design)
    rates = np.array([sim.truth[f"pass_rate[{s + 1}]"] for s in range(design.n_schools)])
    expected = stats.binom.logpmf(sim.data["passed"], design.writers, rates).sum()
    assert quantities["loglik"] == pytest.approx(expected)
    assert {f"loglik[{a}]" for a in design.authority_labels} < set(quantities)
    assert quantities["rate_spread"] == pytest.approx(special.logit(rates).std(ddof=1))


def _logp(model, point):
    return float(model.compile_logp(mode="FAST_COMPILE")(point))


def test_every_mutant_changes_the_partial_model():
    """Each planted bug gives the partial model another log density at the same point."""
    design = SCENARIO.design(SCENARIO.defaults)
    data = SCENARIO.simulate(design, seeding.example_rng()).data
    correct = SCENARIO.model("partial").backend.build(design, data)
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in correct.initial_point().items()}
    base = _logp(correct, point)
    for name in SCENARIO.mutants:
        mutant = SCENARIO.model(name).backend.build(design, data)
        assert _logp(mutant, point) != pytest.approx(base), name


def test_pymc_and_bambi_models_recover_the_pass_rates_with_many_writers():
    """With 400 writers a school, both partial models put every school's rate on the truth.

    Checks that the Bambi group levels are read in school and authority order.
    """
    settings = SCENARIO.resolve_settings({"writers_per_school": 400, "n_authorities": 4})
    design = SCENARIO.design(settings)
    sim = SCENARIO.simulate(design, np.random.default_rng(11))
    truth = np.array([sim.truth[f"pass_rate[{s + 1}]"] for s in range(design.n_schools)])
    tolerance = 4 * np.sqrt(truth * (1 - truth) / design.writers) + 0.01
    for name in ("partial", "partial_bambi"):
        model = SCENARIO.model(name)
        fitter = model.backend.compile(design, sim.data)
        draws = fitter.fit(sim.data, 3, Sampling(chains=2, tune=300, draws=200)).draws
        estimates = model.estimands(draws, design)
        rates = np.array([estimates[f"pass_rate[{s + 1}]"].mean() for s in range(design.n_schools)])
        assert np.all(np.abs(rates - truth) < tolerance), (name, rates - truth)


def test_sweep_example_over_writers_per_school_loads():
    """scenarios/sweeps/diploma.toml is a valid sweep over writers per school."""
    spec = load_spec(diploma.__file__.replace("diploma.py", "sweeps/diploma.toml"))
    assert spec.scenario is SCENARIO and list(spec.grid) == ["writers_per_school"]
    assert set(spec.models) == {"complete", "none", "partial"}
