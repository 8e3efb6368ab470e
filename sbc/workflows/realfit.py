"""Fit a scenario's models to its real data set (``sbc fit``), as the seed does by hand.

Each model is compiled with the same backend SBC uses and fitted once to
``scenario.real_data(design)``; the result is a table of posterior summaries per (model,
estimand) and a self-contained HTML report (:mod:`sbc.report.fit_html`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc import registry
from sbc.backends import Sampling
from sbc.scenario import Scenario, SettingError
from sbc.stats.mcmc import rhat_and_ess_bulk
from sbc.stats.posterior import by_quantity, diagnostics_summary, summarize


def fit_real(
    scenario: Scenario,
    settings: dict[str, Any],
    models: Sequence[str],
    sampling: Sampling,
    seed: int = 0,
) -> pd.DataFrame:
    """Fit ``models`` to the scenario's real data; one row per (model, estimand).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``estimand``, posterior ``post_mean``, ``post_sd`` and quantiles (as
        :func:`sbc.stats.posterior.summarize`), and per fit ``divergences``, ``max_rhat``,
        ``min_ess_bulk``.

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
    frames = []
    for name in models:
        model = registry.model(scenario, name)
        posterior = model.backend.compile(design, data).fit(
            data, seed, sampling.resolve(model.sampling)
        )
        derived = model.estimands(posterior.draws, design)
        stacked = np.stack([np.asarray(derived[e], dtype=float) for e in names])
        quantities = np.concatenate([stacked, *(by_quantity(v) for v in posterior.draws.values())])
        frame = pd.DataFrame(
            {"model": name, "estimand": names, **summarize(stacked.reshape(len(names), -1))}
        )
        frame["divergences"] = posterior.divergences
        for key, value in diagnostics_summary(*rhat_and_ess_bulk(quantities)).items():
            frame[key] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_fit(
    out: str | os.PathLike[str], scenario: Scenario, settings: dict[str, Any], table: pd.DataFrame
) -> Path:
    """Write ``out/fit.csv`` and ``out/fit.html`` for a :func:`fit_real` table."""
    from sbc.report.fit_html import render_fit

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "fit.csv", index=False)
    design = scenario.design(settings)
    observed = scenario.observed(design) if scenario.observed is not None else None
    path = out / "fit.html"
    text = render_fit(
        registry.display_name(scenario), settings, table, observed, reference=scenario.name
    )
    path.write_text(text, encoding="utf-8")
    return path
