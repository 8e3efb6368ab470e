"""A normal mean with known sd and a conjugate prior: the exact end-to-end check.

Generative process: ``theta ~ Normal(prior_mean, prior_sd)``, then ``n`` observations
``y_i ~ Normal(theta, sigma)``. The posterior is analytic, so the models here draw from it
exactly (:class:`sbc.backends.exact.ExactNormal`), in milliseconds:

* ``exact`` -- the true posterior: ranks are exactly uniform;
* ``biased`` -- the posterior shifted by one posterior sd: SBC must flag it;
* ``overconfident`` -- the posterior sd halved: SBC must flag it (U-shaped ranks);
* ``flaky`` -- the true posterior, but the fit raises whenever the data mean exceeds 1:
  those fits must be recorded as errors while the run goes on;
* ``prior_only`` -- the prior returned as the posterior (a dropped likelihood). Its ranks
  of ``theta`` are exactly uniform; only the ``loglik`` test quantity can catch it;
* ``pymc`` -- the same model written in PyMC and sampled with nutpie: the model
  ``sbc mutants conjugate`` generates its mutants from, whose effects are analytic
  (a prior moved by one sd, a likelihood counted twice ...).

Test quantity: ``loglik``, the log-likelihood of the data at ``theta``. Data statistic:
``mean_y``, the data mean (the posterior depends on the data through it alone, so ranks
are uniform within any strata of it, while strata of the true ``theta`` are not).

For posterior SBC (tests), :func:`augment` doubles ``n``: the exact models read the sample
size off the data, so they fit a real data set joined with a simulated one as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sbc.backends.exact import ExactNormal
from sbc.backends.nutpie import PyMCModel
from sbc.scenario import (
    DataStatistic,
    Likelihood,
    Model,
    Process,
    Scenario,
    Setting,
    Simulation,
    at_least_one,
    positive,
)


def _design(settings: Mapping[str, Any]) -> dict[str, Any]:
    return dict(settings)


def _prior(design: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
    return {"theta": rng.normal(design["prior_mean"], design["prior_sd"])}


def _generate(
    design: Mapping[str, Any], params: Mapping[str, Any], rng: np.random.Generator
) -> Simulation:
    theta = float(params["theta"])
    y = rng.normal(theta, design["sigma"], size=design["n"])
    return Simulation(truth={"theta": theta}, data={"y": y})


def augment(design: Mapping[str, Any]) -> dict[str, Any]:
    """The design of a real data set followed by one more of the same size."""
    return {**design, "n": 2 * design["n"]}


def _estimands(design: Any) -> tuple[str, ...]:
    return ("theta",)


def _theta(draws: Mapping[str, np.ndarray], design: Any) -> dict[str, np.ndarray]:
    return {"theta": draws["theta"]}


def _loglik(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Any
) -> np.ndarray:
    theta = np.asarray(params["theta"])[..., None]
    z = (data["y"] - theta) / design["sigma"]
    return -0.5 * z**2 - np.log(design["sigma"]) - 0.5 * np.log(2 * np.pi)


def _mean(params: Mapping[str, np.ndarray], design: Any) -> np.ndarray:
    return np.repeat(np.asarray(params["theta"], dtype=float)[..., None], design["n"], axis=-1)


def _sample(
    params: Mapping[str, np.ndarray], design: Any, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    return {"y": rng.normal(_mean(params, design), design["sigma"])}


def _build(design: Mapping[str, Any], example: Mapping[str, np.ndarray]) -> Any:
    """The generative model in PyMC."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        theta = pm.Normal("theta", design["prior_mean"], design["prior_sd"])
        pm.Normal("obs", theta, design["sigma"], observed=y)
    return model


def _model(name: str, description: str, **distortion: float) -> Model:
    return Model(name, description, ExactNormal(**distortion), _theta)


SCENARIO = Scenario(
    name="conjugate",
    description="normal mean with known sd; exact analytic posteriors (checks the machinery)",
    settings=(
        Setting("n", 10, "observations", at_least_one),
        Setting("prior_mean", 0.0, "prior mean of theta"),
        Setting("prior_sd", 1.0, "prior sd of theta", positive),
        Setting("sigma", 1.0, "known observation sd", positive),
    ),
    design=_design,
    simulate=Process(_prior, _generate),
    estimands=_estimands,
    models=(
        _model("exact", "the analytic posterior"),
        _model("biased", "posterior mean shifted by one posterior sd", bias=1.0),
        _model("overconfident", "posterior sd halved", scale=0.5),
        _model("flaky", "the analytic posterior, but raises when mean(y) > 1", fail_when=1.0),
        _model(
            "prior_only", "the prior returned as posterior (likelihood dropped)", ignore_data=True
        ),
        Model(
            "pymc",
            "the same model in PyMC, sampled with nutpie (its mutants are generated)",
            PyMCModel(_build, data=("y",)),
            _theta,
        ),
    ),
    likelihood=Likelihood(_loglik, sample=_sample, mean=_mean, response="y"),
    data_statistics=(
        DataStatistic("mean_y", "the data mean", lambda design, data: float(np.mean(data["y"]))),
    ),
    augment=augment,
    reference_model="exact",
)
