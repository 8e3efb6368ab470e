"""Success counts in groups with a covariate: hierarchical logistic regression, Beta prior.

    alpha      ~ Normal(0, 1)              # intercept (logit)
    beta       ~ Normal(0, 0.5)            # slope of the covariate
    sigma      ~ HalfNormal(0.8)           # sd of group effects
    u[j]       = sigma * z[j], z[j] ~ Normal(0, 1), j = 1..J
    phi        ~ Beta(2, 8)                # a guessing floor
    p[i]       = phi + (1 - phi) * expit(alpha + beta x[i] + u[group[i]])
    y[i]       ~ Binomial(20, p[i])

Estimands: alpha, beta, sigma, phi (no group effect): an index shift only renames groups.
No likelihood test quantity is declared. Models: ``pooled`` (no group effects, not
calibrated), declared first, and ``logit`` (the generative process): with no ``partial``
model, ``sbc mutants`` must find that ``logit`` is the one to mutate. Written as a
held-out-style check of generated mutants: ``sbc mutants
benchmarks/heldout/logistic_groups.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sbc.backends.nutpie import PyMCModel
from sbc.scenario import Model, Scenario, Setting, Simulation

J, PER, TRIALS = 8, 6, 20
GROUP = np.repeat(np.arange(J), PER)
X = np.tile(np.linspace(-1.5, 1.5, PER), J)


def design(settings):
    """The settings (the design is fixed in the module)."""
    return dict(settings)


def estimands(design):
    """The estimand names."""
    return ("alpha", "beta", "sigma", "phi")


def simulate(design, rng):
    """Draw the parameters from the prior, then the data."""
    alpha = rng.normal(0.0, 1.0)
    beta = rng.normal(0.0, 0.5)
    sigma = abs(rng.normal(0.0, 0.8))
    u = sigma * rng.normal(size=J)
    phi = rng.beta(2.0, 8.0)
    p = phi + (1 - phi) * special.expit(alpha + beta * X + u[GROUP])
    y = rng.binomial(TRIALS, p)
    truth = {"alpha": alpha, "beta": beta, "sigma": sigma, "phi": phi}
    return Simulation({k: float(v) for k, v in truth.items()}, {"y": y})


def build(design, example, pooled=False):
    """The generative model in PyMC."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        alpha = pm.Normal("alpha", 0.0, 1.0)
        beta = pm.Normal("beta", 0.0, 0.5)
        phi = pm.Beta("phi", 2.0, 8.0)
        eta = alpha + beta * X
        if not pooled:
            sigma = pm.HalfNormal("sigma", 0.8)
            z = pm.Normal("z", 0.0, 1.0, shape=J)
            eta = eta + (sigma * z)[GROUP]
        p = phi + (1 - phi) * pm.math.invlogit(eta)
        pm.Binomial("obs", TRIALS, p, observed=y)
    return model


def build_pooled(design, example):
    """The model without group effects."""
    return build(design, example, pooled=True)


def logit_estimands(draws, design):
    """Estimand draws of the generative model."""
    return {k: draws[k] for k in ("alpha", "beta", "sigma", "phi")}


def pooled_estimands(draws, design):
    """Estimand draws of the pooled model (its group sd is zero)."""
    return {k: draws[k] for k in ("alpha", "beta", "phi")} | {
        "sigma": np.zeros_like(draws["alpha"])
    }


SCENARIO = Scenario(
    name="logistic_groups",
    description="success counts in groups (hierarchical logistic with a guessing floor)",
    settings=(Setting("unused", 0, "no settings"),),
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "pooled",
            "no group effects (not calibrated)",
            PyMCModel(build_pooled, data=("y",)),
            pooled_estimands,
        ),
        Model(
            "logit", "the generative process (PyMC)", PyMCModel(build, data=("y",)), logit_estimands
        ),
    ),
)
