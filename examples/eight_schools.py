"""The eight schools (Rubin 1981; Gelman et al., BDA3 section 5.5) as a user scenario.

Run it with ``sbc run examples/eight_schools.py``. A user scenario is any Python file that
defines ``SCENARIO``, a :class:`sbc.scenario.Scenario`; nothing needs registering.

Generative process, with the eight known standard errors of the coaching effects::

    mu       ~ Normal(0, mu_sd)                 # average coaching effect
    tau      ~ HalfNormal(tau_scale)            # sd of the school effects
    theta[j] = mu + tau * eta[j],  eta[j] ~ Normal(0, 1)
    y[j]     ~ Normal(theta[j], sigma[j]),  sigma = 15, 10, 16, 11, 9, 11, 10, 18

Estimands: ``mu``, ``tau`` and ``theta[1..8]``; test quantity: the log-likelihood (its
``sample`` replicates the effects for the posterior predictive checks of ``sbc fit``). Data
statistic: ``spread``, the sd of the observed effects over the root mean square of their
standard errors (near 1 or below: the data call for strong pooling).

The scenario also carries the real data (the observed effects 28, 8, -3, 7, -1, 1, 18, 12),
so ``sbc fit examples/eight_schools.py`` validates the models on them (:func:`observed` sets
each school's effect beside its ``theta`` for the shrinkage figure) and
``sbc run examples/eight_schools.py --posterior`` runs posterior SBC: parameters drawn
from ``partial``'s posterior given those effects, a second effect per school simulated from
them, every model refitted on the sixteen effects. For that the simulator is a
:class:`~sbc.scenario.Process` (prior draw, then data given the parameters), the design
maps each observed effect to its school (``school``), and :func:`augment` doubles it.

Models:

* ``partial`` (PyMC, non-centred): exactly the generative process; calibrated.
* ``none`` (PyMC): independent school effects with a fixed prior
  ``Normal(0, mu_sd + tau_scale)``; its ``mu`` is the average of the eight effects and its
  ``tau`` their sd. Not the generative process: expect ``tau`` to be miscalibrated.
* ``partial_stan`` (Stan, ``eight_schools.stan`` beside this file): ``partial`` as a Stan
  program, a :class:`~sbc.backends.stan.StanModel` whose ``_stan_data`` fills the program's
  data block; it needs the ``stan`` extra and a C++ compiler, so it runs when named
  (``--models partial,partial_stan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc.backends.nutpie import PyMCModel
from sbc.backends.stan import StanModel
from sbc.scenario import (
    DataStatistic,
    Likelihood,
    Model,
    Process,
    Scenario,
    Setting,
    Simulation,
    positive,
)
from sbc.stats.pooling import means_spread_ratio

SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
"""Known standard errors of the eight schools' estimated effects."""
J = len(SIGMA)
OBSERVED = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
"""The observed coaching effects (the real data)."""


def design(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings, the school of each observed effect and the known standard errors."""
    return {**settings, "school": np.arange(J), "sigma": SIGMA}


def augment(design: Mapping[str, Any]) -> dict[str, Any]:
    """The real effects followed by one more effect per school (for posterior SBC)."""
    return {**design, "school": np.concatenate([design["school"], np.arange(J)])}


def real_data(design: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The observed effects."""
    return {"y": OBSERVED}


def observed(design: Mapping[str, Any]) -> pd.DataFrame:
    """Each school's observed effect beside its ``theta``, weighted by its precision."""
    return pd.DataFrame(
        {
            "estimand": [f"theta[{j + 1}]" for j in range(J)],
            "label": [f"school {chr(ord('A') + j)}" for j in range(J)],
            "observed": OBSERVED,
            "weight": 1 / SIGMA**2,
        }
    )


def estimands(design: Mapping[str, Any]) -> tuple[str, ...]:
    """Average effect, effect sd and every school's effect."""
    return ("mu", "tau", *(f"theta[{j + 1}]" for j in range(J)))


def prior(design: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Draw mu, tau and the school effects from the prior (named as in ``partial``)."""
    mu = rng.normal(0.0, design["mu_sd"])
    tau = abs(rng.normal(0.0, design["tau_scale"]))
    return {"mu": mu, "tau": tau, "theta": mu + tau * rng.normal(size=J)}


def generate(
    design: Mapping[str, Any], params: Mapping[str, Any], rng: np.random.Generator
) -> Simulation:
    """The observed effects given the school effects, and the estimands' true values."""
    theta = np.asarray(params["theta"], dtype=float)
    school = design["school"]
    y = rng.normal(theta[school], design["sigma"][school])
    truth = {"mu": params["mu"], "tau": params["tau"]}
    truth |= {f"theta[{j + 1}]": t for j, t in enumerate(theta)}
    return Simulation(truth={k: float(v) for k, v in truth.items()}, data={"y": y})


def new_schools(
    design: Mapping[str, Any], params: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """The parameters with new school effects from the same population (held-out schools)."""
    return {**params, "theta": params["mu"] + params["tau"] * rng.normal(size=J)}


def _spread(design: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> float:
    """Sd of the observed effects over the root mean square of their standard errors."""
    return means_spread_ratio(data["y"], design["sigma"][design["school"]] ** 2)


def _by_school(mu: np.ndarray, tau: np.ndarray, theta: np.ndarray) -> dict[str, np.ndarray]:
    return {"mu": mu, "tau": tau} | {f"theta[{j + 1}]": theta[..., j] for j in range(J)}


def _build_partial(design: Mapping[str, Any], example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        mu = pm.Normal("mu", 0.0, design["mu_sd"])
        tau = pm.HalfNormal("tau", design["tau_scale"])
        eta = pm.Normal("eta", 0.0, 1.0, shape=J)
        theta = pm.Deterministic("theta", mu + tau * eta)
        school = design["school"]
        pm.Normal("obs", theta[school], design["sigma"][school], observed=y)
    return model


def _partial_estimands(draws: Mapping[str, np.ndarray], design: Any) -> dict[str, np.ndarray]:
    return _by_school(draws["mu"], draws["tau"], draws["theta"])


def _stan_data(design: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The Stan program's data block: every observed effect with its school and sd."""
    school = design["school"]
    return {
        "J": J,
        "N": school.size,
        "school": school + 1,  # Stan counts from 1
        "y": data["y"],
        "sigma": design["sigma"][school],
        "mu_sd": design["mu_sd"],
        "tau_scale": design["tau_scale"],
    }


def _build_none(design: Mapping[str, Any], example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        theta = pm.Normal("theta", 0.0, design["mu_sd"] + design["tau_scale"], shape=J)
        school = design["school"]
        pm.Normal("obs", theta[school], design["sigma"][school], observed=y)
    return model


def _partial_new(
    draws: Mapping[str, np.ndarray], design: Any, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """New schools' effects from the posterior population ``mu + tau * eta``."""
    eta = rng.normal(size=(*np.shape(draws["mu"]), J))
    return _by_school(
        draws["mu"], draws["tau"], draws["mu"][..., None] + draws["tau"][..., None] * eta
    )


def _none_new(
    draws: Mapping[str, np.ndarray], design: Any, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """No pooling predicts a new school from its fixed prior ``Normal(0, mu_sd + tau_scale)``."""
    shape = (*np.shape(draws["theta"])[:-1], J)
    return _none_estimands(
        {"theta": rng.normal(0.0, design["mu_sd"] + design["tau_scale"], size=shape)}, design
    )


def _none_estimands(draws: Mapping[str, np.ndarray], design: Any) -> dict[str, np.ndarray]:
    theta = draws["theta"]
    return _by_school(theta.mean(axis=-1), theta.std(axis=-1, ddof=1), theta)


def _loglik(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Any
) -> np.ndarray:
    school = design["school"]
    theta = np.stack([params[f"theta[{j + 1}]"] for j in range(J)], axis=-1)[..., school]
    sigma = design["sigma"][school]
    z = (data["y"] - theta) / sigma
    return -0.5 * z**2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)


def _sample(
    params: Mapping[str, np.ndarray], design: Any, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Effects drawn at each of a batch of parameter values: ``(n, observed effects)``."""
    school = design["school"]
    theta = np.stack([params[f"theta[{j + 1}]"] for j in range(J)], axis=-1)[..., school]
    return {"y": rng.normal(theta, design["sigma"][school])}


SCENARIO = Scenario(
    name="eight_schools",
    description="eight schools: coaching effects with known standard errors (normal, two levels)",
    settings=(
        Setting("mu_sd", 5.0, "prior sd of the average effect mu", positive),
        Setting("tau_scale", 5.0, "half-normal scale of the effect sd tau", positive),
    ),
    design=design,
    simulate=Process(prior, generate, new_groups=new_schools),
    estimands=estimands,
    models=(
        Model(
            "partial",
            "school effects from a learned prior, non-centred (PyMC)",
            PyMCModel(_build_partial, data=("y",)),
            _partial_estimands,
            new_groups=_partial_new,
            # At the default 2 x 1000 draws 92% of 100 fits were healthy (R-hat > 1.01 or an
            # ESS below 400 in the rest); at 2 x 2000, all of 100, none divergent.
            sampling={"draws": 2000},
        ),
        Model(
            "none",
            "independent school effects, fixed prior (PyMC)",
            PyMCModel(_build_none, data=("y",)),
            _none_estimands,
            new_groups=_none_new,
        ),
        Model(
            "partial_stan",
            "as partial, a Stan program (eight_schools.stan)",
            StanModel(Path(__file__).with_name("eight_schools.stan"), _stan_data),
            _partial_estimands,  # the Stan program names mu, tau and theta as PyMC does
            new_groups=_partial_new,
            sampling={"draws": 2000},
            extra="stan",
        ),
    ),
    likelihood=Likelihood(_loglik, sample=_sample),
    data_statistics=(
        DataStatistic(
            "spread",
            "sd of the observed effects over the root mean square of their standard errors",
            _spread,
        ),
    ),
    real_data=real_data,
    observed=observed,
    augment=augment,
    reference_model="partial",
)
