"""The data set of one simulation: from the prior, or real data joined with new data.

Prior SBC simulates each data set with the scenario's simulator. Posterior SBC
(:mod:`sbc.workflows.posterior`) fits the models to the real data followed by a block
simulated from one reference posterior draw, on the scenario's augmented design; this
module builds such a data set (:func:`replicate`) and one of its shapes for compiling
(:func:`example`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sbc.scenario import Process, Scenario, SettingError, Simulation


def process(scenario: Scenario, name: str | None = None) -> Process:
    """The scenario's two-step generative process, or a one-line error naming what lacks.

    Parameters
    ----------
    scenario : Scenario
        The scenario.
    name : str, optional
        Its name as the user wrote it (for the message; default its reference).

    Raises
    ------
    SettingError
        If the scenario cannot do posterior SBC.
    """
    name = name or scenario.name
    if scenario.real_data is None:
        raise SettingError(f"scenario {name} has no real data: posterior SBC needs real_data")
    if not isinstance(scenario.simulate, Process):
        raise SettingError(
            f"scenario {name}: posterior SBC needs simulate=sbc.scenario.Process(prior, "
            "generate), data generation apart from the prior draw"
        )
    if scenario.augment is None:
        raise SettingError(
            f"scenario {name}: posterior SBC needs augment(design), the design of the real "
            "data followed by one more block"
        )
    return scenario.simulate


def join(real: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The real data followed by the new data, key by key along the first axis.

    Raises
    ------
    SettingError
        If the two data sets do not have the same keys.
    """
    if set(real) != set(new):
        raise SettingError(
            f"real data has {sorted(real)} but simulated data has {sorted(new)}: "
            "posterior SBC joins them key by key"
        )
    return {k: np.concatenate([np.asarray(real[k]), np.asarray(new[k])]) for k in real}


def replicate(
    scenario: Scenario, design: Any, params: Mapping[str, Any], rng: np.random.Generator
) -> tuple[Any, Simulation]:
    """One posterior SBC data set: the real data plus data simulated from ``params``.

    Parameters
    ----------
    scenario : Scenario
        A scenario that can do posterior SBC (:func:`process`).
    design : object
        The scenario's (real) design.
    params : mapping
        One reference draw of every parameter.
    rng : numpy.random.Generator
        The simulation's data stream.

    Returns
    -------
    design : object
        The augmented design the models are fitted on.
    Simulation
        The true estimand values implied by ``params`` and the joined data.
    """
    new = process(scenario).generate(design, params, rng)
    data = join(scenario.real_data(design), new.data)
    return scenario.augment(design), Simulation(new.truth, data)


def example(scenario: Scenario, design: Any) -> dict[str, np.ndarray]:
    """A data set of the augmented design's shapes (the real data twice), for compiling."""
    real = scenario.real_data(design)
    return join(real, real)
