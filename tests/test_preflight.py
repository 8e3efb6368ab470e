"""sbc.engine.preflight: a scenario checked before any simulation, in one line."""

import dataclasses

import numpy as np
import pytest

from sbc import registry
from sbc.engine.preflight import ScenarioCheckError, check_scenario
from sbc.scenario import Simulation

CONJUGATE = registry.get("conjugate")


def _with(simulate):
    return dataclasses.replace(CONJUGATE, simulate=simulate)


def _raises(design, rng):
    raise ValueError("no data today")


def _no_truth(design, rng):
    return Simulation({}, CONJUGATE.simulate(design, rng).data)


def _text_data(design, rng):
    simulation = CONJUGATE.simulate(design, rng)
    return Simulation(simulation.truth, {k: np.array(["a"]) for k in simulation.data})


def _nan_data(design, rng):
    simulation = CONJUGATE.simulate(design, rng)
    return Simulation(simulation.truth, {k: np.full(3, np.nan) for k in simulation.data})


def test_a_correct_scenario_passes():
    """The shipped conjugate scenario and its models pass the check."""
    check_scenario(CONJUGATE, CONJUGATE.defaults, CONJUGATE.default_models)


@pytest.mark.parametrize(
    ("simulate", "message"),
    [
        (_raises, "simulate raised ValueError: no data today"),
        (_no_truth, "simulated truth lacks estimand"),
        (_text_data, "must be numeric"),
        (_nan_data, "non-finite values"),
    ],
)
def test_a_broken_simulator_is_named_in_one_line(simulate, message):
    """Each detectable problem is refused before the run, naming the scenario."""
    with pytest.raises(ScenarioCheckError) as caught:
        check_scenario(_with(simulate), CONJUGATE.defaults, ["exact"])
    text = str(caught.value)
    assert text.startswith("scenario ") and message in text and "\n" not in text
