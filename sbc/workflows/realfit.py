"""Fit a scenario's models to its real data set (``sbc fit``), as the seed does by hand.

Each model is compiled with the same backend SBC uses and fitted once to
``scenario.real_data(design)``; the result is each model's draws and a table of posterior
summaries per (model, estimand), which :mod:`sbc.workflows.validate` checks against the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sbc import registry
from sbc.backends import Sampling
from sbc.scenario import Scenario, SettingError
from sbc.stats.mcmc import rhat_and_ess_bulk
from sbc.stats.posterior import by_quantity, diagnostics_summary, summarize


@dataclass(frozen=True)
class RealFit:
    """One model fitted to the real data.

    Attributes
    ----------
    model : str
        The model's name.
    draws : mapping of str to ndarray
        The model's own posterior draws, ``(chain, draw, *shape)``.
    estimands : dict of str to ndarray
        Every scenario estimand's draws, ``(chain, draw)``.
    table : pandas.DataFrame
        One row per estimand: ``model``, ``estimand``, posterior ``post_mean``, ``post_sd``
        and quantiles (as :func:`sbc.stats.posterior.summarize`), and per fit
        ``divergences``, ``max_rhat``, ``min_ess_bulk``.
    """

    model: str
    draws: Mapping[str, np.ndarray]
    estimands: dict[str, np.ndarray]
    table: pd.DataFrame


def fit_models(
    scenario: Scenario,
    settings: dict[str, Any],
    models: Sequence[str],
    sampling: Sampling,
    seed: int = 0,
) -> list[RealFit]:
    """Fit ``models`` to the scenario's real data, keeping their draws.

    Raises
    ------
    SettingError
        If the scenario has no real data.
    """
    if scenario.real_data is None:
        raise SettingError(f"scenario {scenario.name} has no real data to fit")
    design = scenario.design(settings)
    data = scenario.real_data(design)
    names = scenario.estimands(design)
    fits = []
    for name in models:
        model = registry.model(scenario, name)
        posterior = model.backend.compile(design, data).fit(
            data, seed, sampling.resolve(model.sampling)
        )
        derived = model.estimands(posterior.draws, design)
        estimands = {e: np.asarray(derived[e], dtype=float) for e in names}
        stacked = np.stack([estimands[e] for e in names])
        quantities = np.concatenate([stacked, *(by_quantity(v) for v in posterior.draws.values())])
        frame = pd.DataFrame(
            {"model": name, "estimand": names, **summarize(stacked.reshape(len(names), -1))}
        )
        frame["divergences"] = posterior.divergences
        for key, value in diagnostics_summary(*rhat_and_ess_bulk(quantities)).items():
            frame[key] = value
        fits.append(RealFit(name, posterior.draws, estimands, frame))
    return fits
