"""Patients readmitted or not, within hospitals: a hierarchical logistic model with an offset.

Run it with ``sbc run examples/readmissions.py``. Each of ``n_hospitals`` hospitals has
5 to 30 patients (unequal, fixed by the design). Every patient has a known baseline risk
(the log-odds from a clinical risk score, used as an offset) and an age (decades above
60)::

    mu             ~ Normal(0, mu_scale)              # hospital log-odds above the baseline
    age_effect     ~ Normal(0, age_scale)             # per decade of age
    hospital_sd    ~ HalfNormal(hospital_sd_scale)
    hospital[h]    = mu + hospital_sd * z[h],  z[h] ~ Normal(0, 1)
    readmitted[i]  ~ Bernoulli(expit(risk[i] + hospital[hospital(i)] + age_effect * age[i]))

Estimands: ``mu``, ``age_effect``, ``hospital_sd`` and ``hospital[h]`` for every hospital;
test quantity: the log-likelihood (whole and per hospital).

Models:

* ``partial_bambi`` (Bambi, bernoulli family:
  ``readmitted ~ 1 + age + offset(risk) + (1|hospital)``): exactly the generative process;
  calibrated. Ages average about 0.6 decades above 60: sbc does not centre predictors
  (``BambiModel(center_predictors=False)``), so ``Intercept`` is ``mu`` at age 60.
* ``partial`` (PyMC, non-centred): the same model in PyMC; calibrated.
* ``mutant_no_offset`` (Bambi, without ``offset(risk)``): the risk score forgotten, a
  planted bug SBC must flag (left out of default runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from sbc.backends.nutpie import BambiModel, PyMCModel
from sbc.scenario import (
    Likelihood,
    Model,
    Scenario,
    Setting,
    Simulation,
    at_least_one,
    positive,
)


def design(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Hospitals of unequal size; each patient's risk score and age (a fixed stream)."""
    rng = np.random.default_rng(7)
    n = settings["n_hospitals"]
    sizes = np.resize((5, 12, 30, 8, 20), n)
    hospital = np.repeat(np.arange(n), sizes)
    risk = rng.normal(-1.0, 0.8, hospital.size)
    age = rng.normal(0.6, 1.0, hospital.size)
    labels = [f"h{j + 1:0{len(str(n))}d}" for j in range(n)]
    return {**settings, "hospital": hospital, "risk": risk, "age": age, "labels": labels}


def estimands(design: Mapping[str, Any]) -> tuple[str, ...]:
    """Typical hospital effect, age effect, spread of hospitals, each hospital's effect."""
    hospitals = (f"hospital[{j + 1}]" for j in range(design["n_hospitals"]))
    return ("mu", "age_effect", "hospital_sd", *hospitals)


def simulate(design: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """Draw the effects from the prior, then who is readmitted."""
    mu = rng.normal(0.0, design["mu_scale"])
    age_effect = rng.normal(0.0, design["age_scale"])
    hospital_sd = abs(rng.normal(0.0, design["hospital_sd_scale"]))
    hospital = mu + hospital_sd * rng.normal(size=design["n_hospitals"])
    eta = design["risk"] + hospital[design["hospital"]] + age_effect * design["age"]
    readmitted = rng.binomial(1, special.expit(eta))
    truth = {"mu": mu, "age_effect": age_effect, "hospital_sd": hospital_sd}
    truth |= {f"hospital[{j + 1}]": h for j, h in enumerate(hospital)}
    return Simulation({k: float(v) for k, v in truth.items()}, {"readmitted": readmitted})


def _estimands_of(
    mu: np.ndarray, age: np.ndarray, sd: np.ndarray, hospital: np.ndarray
) -> dict[str, np.ndarray]:
    out = {"mu": mu, "age_effect": age, "hospital_sd": sd}
    return out | {f"hospital[{j + 1}]": hospital[..., j] for j in range(hospital.shape[-1])}


def _frame(design: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> pd.DataFrame:
    hospital = pd.Categorical.from_codes(design["hospital"], categories=design["labels"])
    return pd.DataFrame(
        {
            "readmitted": data["readmitted"],
            "risk": design["risk"],
            "age": design["age"],
            "hospital": hospital,
        }
    )


def _priors(design: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Intercept": ("Normal", {"mu": 0.0, "sigma": design["mu_scale"]}),
        "age": ("Normal", {"mu": 0.0, "sigma": design["age_scale"]}),
        "1|hospital": (
            "Normal",
            {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": design["hospital_sd_scale"]})},
        ),
    }


def _bambi_estimands(draws: Mapping[str, np.ndarray], design: Any) -> dict[str, np.ndarray]:
    mu = draws["Intercept"]
    hospital = mu[..., None] + draws["1|hospital"]
    return _estimands_of(mu, draws["age"], draws["1|hospital_sigma"], hospital)


def _build_partial(design: Mapping[str, Any], example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model(coords={"hospital": design["labels"]}) as model:
        readmitted = pm.Data("readmitted", example["readmitted"])
        mu = pm.Normal("mu", 0.0, design["mu_scale"])
        age_effect = pm.Normal("age_effect", 0.0, design["age_scale"])
        hospital_sd = pm.HalfNormal("hospital_sd", design["hospital_sd_scale"])
        z = pm.Normal("z", 0.0, 1.0, dims="hospital")
        hospital = pm.Deterministic("hospital_effect", mu + hospital_sd * z, dims="hospital")
        eta = design["risk"] + hospital[design["hospital"]] + age_effect * design["age"]
        pm.Bernoulli("obs", logit_p=eta, observed=readmitted)
    return model


def _partial_estimands(draws: Mapping[str, np.ndarray], design: Any) -> dict[str, np.ndarray]:
    return _estimands_of(
        draws["mu"], draws["age_effect"], draws["hospital_sd"], draws["hospital_effect"]
    )


def _loglik(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Any
) -> np.ndarray:
    """Bernoulli log probability of every patient's outcome."""
    hospital = np.stack(
        [params[f"hospital[{j + 1}]"] for j in range(design["n_hospitals"])], axis=-1
    )
    age = np.asarray(params["age_effect"])[..., None]
    eta = design["risk"] + hospital[..., design["hospital"]] + age * design["age"]
    y = data["readmitted"]
    return -np.logaddexp(0.0, np.where(y == 1, -eta, eta))


def _groups(design: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    return design["labels"], design["hospital"]


def _bambi(formula: str) -> BambiModel:
    return BambiModel(formula, _frame, "readmitted", _priors, family="bernoulli")


LONGER = {"draws": 1500}
"""Sampler settings of both correct models: with the default 2 x 1000 draws 94-96% of 100
fits were healthy (tail ESS below 400 in 4-6%), with 2 x 1500 97-100% of 60."""

SCENARIO = Scenario(
    name="readmissions",
    description="patients readmitted or not, within hospitals, with a risk-score offset "
    "(bernoulli)",
    settings=(
        Setting("n_hospitals", 8, "number of hospitals", at_least_one),
        Setting("mu_scale", 1.0, "prior sd of the typical hospital log-odds", positive),
        Setting("age_scale", 0.5, "prior sd of the age effect per decade", positive),
        Setting("hospital_sd_scale", 0.5, "half-normal scale of the sd of hospitals", positive),
    ),
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "partial_bambi",
            "Bambi: readmitted ~ 1 + age + offset(risk) + (1|hospital), bernoulli",
            _bambi("readmitted ~ 1 + age + offset(risk) + (1|hospital)"),
            _bambi_estimands,
            sampling=LONGER,
        ),
        Model(
            "partial",
            "the same model in PyMC, non-centred",
            PyMCModel(_build_partial, data=("readmitted",)),
            _partial_estimands,
            sampling=LONGER,
        ),
        Model(
            "mutant_no_offset",
            "Bambi: readmitted ~ 1 + age + (1|hospital), the risk score forgotten",
            _bambi("readmitted ~ 1 + age + (1|hospital)"),
            _bambi_estimands,
            mutant=True,
        ),
    ),
    likelihood=Likelihood(_loglik, groups=_groups),
)
