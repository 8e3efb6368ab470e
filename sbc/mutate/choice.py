"""Which declared model is the correct one to mutate, when the scenario does not say.

A model can only be calibrated if its prior is the simulator's: SBC's ranks are uniform
for the generative model. So when a scenario has no ``partial`` model (the name every
shipped scenario gives its generative process) and several PyMC or Bambi models,
:func:`choose_base` draws each model's estimands from its prior and compares them with the
simulator's true values: the model whose prior matches best (smallest largest
Kolmogorov-Smirnov distance over the estimands) is the one to mutate. An approximation
such as a pooled model, whose prior puts the between-group sd at zero, matches badly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from sbc import seeding
from sbc.mutate.backend import PREFERRED_BASE, graph_models

if TYPE_CHECKING:
    from sbc.scenario import Scenario

PRIOR_DRAWS = 400
"""Prior draws of each model and simulated truths compared by :func:`prior_distance`."""


def prior_distance(
    scenario: Scenario, settings: Mapping[str, Any], model: str, draws: int = PRIOR_DRAWS
) -> float:
    """Largest two-sample KS distance between a model's prior estimands and the true values.

    The truths come from ``draws`` simulations (simulation indices 0.. of seed 0), the
    model's prior draws from PyMC's forward sampler with a fixed seed; ``inf`` when the
    model's prior cannot be drawn or its estimand function fails on the draws.
    """
    import pymc as pm

    design = scenario.design(dict(settings))
    names = scenario.estimands(design)
    truths = [scenario.simulate(design, seeding.data_rng(0, i)).truth for i in range(draws)]
    example = scenario.simulate(design, seeding.example_rng()).data
    chosen = scenario.model(model)
    graph = chosen.backend.graph(design, example)
    try:
        values = pm.draw([graph.model[n] for n in graph.stored], draws=draws, random_seed=0)
        prior = {n: np.asarray(v)[None] for n, v in zip(graph.stored, values, strict=True)}
        derived = chosen.estimands(prior, design)
        distances = [
            stats.ks_2samp(
                np.ravel(np.asarray(derived[e], dtype=float)), [t[e] for t in truths]
            ).statistic
            for e in names
        ]
    except Exception:  # no prior draws, or estimands that cannot be read off them
        return float("inf")
    return float(max(distances))


def choose_base(scenario: Scenario, settings: Mapping[str, Any]) -> tuple[str | None, str]:
    """The model to mutate and why: ``partial``, the only one, or the best prior match."""
    candidates = graph_models(scenario)
    if not candidates:
        return None, "the scenario has no PyMC or Bambi model"
    if PREFERRED_BASE in candidates:
        return PREFERRED_BASE, f"the scenario's {PREFERRED_BASE} model"
    if len(candidates) == 1:
        return candidates[0], "the scenario's only PyMC or Bambi model"
    distance = {m: prior_distance(scenario, settings, m) for m in candidates}
    best = min(candidates, key=lambda m: distance[m])
    shown = ", ".join(f"{m} {d:.2f}" for m, d in distance.items())
    return best, (
        "its prior matches the simulator best (largest KS distance between prior and "
        f"simulated estimands: {shown})"
    )
