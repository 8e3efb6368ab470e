"""Counts per site with exposures: a hierarchical Poisson model (a held-out style test scenario).

    mu       ~ Normal(log 5, 0.5)          # log rate of a typical site
    tau      ~ HalfNormal(0.5)             # sd of site log rates
    eta[j]   ~ Normal(0, 1), j = 1..J
    rate[j]  = exp(mu + tau * eta[j])
    y[i]     ~ Poisson(exposure[i] * rate[site[i]])

The site index enters as data (``pm.Data``), exposures are fixed; the only model is
called ``hier``. Written as a held-out-style check of generated mutants: ``sbc mutants
benchmarks/heldout/poisson_counts.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sbc.backends.nutpie import PyMCModel
from sbc.scenario import Likelihood, Model, Scenario, Setting, Simulation

J, PER = 6, 8
SITE = np.repeat(np.arange(J), PER)
EXPOSURE = np.tile(np.linspace(0.5, 2.0, PER), J)


def design(settings):
    """The settings (the design is fixed in the module)."""
    return dict(settings)


def estimands(design):
    """The estimand names."""
    return ("mu", "tau", *(f"rate[{j + 1}]" for j in range(J)))


def simulate(design, rng):
    """Draw the parameters from the prior, then the data."""
    mu = rng.normal(np.log(5.0), 0.5)
    tau = abs(rng.normal(0.0, 0.5))
    rate = np.exp(mu + tau * rng.normal(size=J))
    y = rng.poisson(EXPOSURE * rate[SITE])
    truth = {"mu": mu, "tau": tau} | {f"rate[{j + 1}]": r for j, r in enumerate(rate)}
    return Simulation({k: float(v) for k, v in truth.items()}, {"y": y, "site": SITE})


def build(design, example):
    """The generative model in PyMC."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        site = pm.Data("site", example["site"])
        mu = pm.Normal("mu", np.log(5.0), 0.5)
        tau = pm.HalfNormal("tau", 0.5)
        eta = pm.Normal("eta", 0.0, 1.0, shape=J)
        rate = pm.Deterministic("rate", pm.math.exp(mu + tau * eta))
        pm.Poisson("obs", EXPOSURE * rate[site], observed=y)
    return model


def model_estimands(draws, design):
    """Estimand draws of the PyMC model."""
    return {"mu": draws["mu"], "tau": draws["tau"]} | {
        f"rate[{j + 1}]": draws["rate"][..., j] for j in range(J)
    }


def loglik(params, data, design):
    """Poisson log density of every count."""
    rate = np.stack([params[f"rate[{j + 1}]"] for j in range(J)], axis=-1)[..., SITE]
    lam = EXPOSURE * rate
    y = data["y"]
    return y * np.log(lam) - lam - special.gammaln(y + 1)


SCENARIO = Scenario(
    name="poisson_counts",
    description="counts per site with exposures (hierarchical Poisson)",
    settings=(Setting("unused", 0, "no settings"),),
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "hier",
            "hierarchical Poisson (PyMC)",
            PyMCModel(build, data=("y", "site")),
            model_estimands,
        ),
    ),
    likelihood=Likelihood(loglik),
)
