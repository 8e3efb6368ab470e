"""Students passing the diploma exam: pass counts out of writers, schools within authorities.

The seed's Alberta data report, for every school and course, how many students wrote the
diploma exam and the share meeting the acceptable standard. This scenario simulates that
outcome on a synthetic design: ``n_authorities`` school authorities with unequal numbers
of schools (about ``schools_per_authority``: 0.5, 1 and 1.5 times it in turn) and schools
with unequal numbers of writers (about ``writers_per_school``: 0.3, 0.6, 1, 1.5 and 1.6
times it in turn, at least one).

Generative process (logit-normal, three levels; the ``partial`` models share exactly these
priors)::

    mu               ~ Normal(logit(typical_pass_rate), mu_scale)   # logit of a typical school
    authority_sd     ~ HalfNormal(authority_sd_scale)
    school_sd        ~ HalfNormal(school_sd_scale)
    authority[a]     = authority_sd * u[a],   u[a] ~ Normal(0, 1)
    school[s]        = school_sd * v[s],      v[s] ~ Normal(0, 1)
    pass_rate[s]     = expit(mu + authority[authority_of(s)] + school[s])
    passed[s]        ~ Binomial(writers[s], pass_rate[s])

Estimands: ``typical_rate`` (``expit(mu)``, the pass rate of a school with average
authority and school effects) and ``pass_rate[s]`` for every school. Test quantities: the
log-likelihood of the pass counts (``loglik``, and per authority) and ``rate_spread``, the
sd of the schools' logit pass rates.

Models, each in PyMC and as a Bambi formula (binomial family, ``p(passed, writers)``,
explicit priors):

* ``complete`` / ``complete_bambi`` (``p(passed, writers) ~ 1``): one pass rate for every
  school, prior ``Normal(logit(typical_pass_rate), marginal sd)`` on its logit, where the
  marginal sd ``sqrt(mu_scale^2 + authority_sd_scale^2 + school_sd_scale^2)`` is the prior
  sd of one school's logit rate. Not calibrated for school rates.
* ``none`` / ``none_bambi`` (``p(passed, writers) ~ 0 + school``): independent school
  rates with that fixed marginal prior; ``typical_rate`` is ``expit`` of the mean of the
  school logits. An honest alternative, not the generative process.
* ``partial`` (PyMC, non-centred) / ``partial_bambi``
  (``p(passed, writers) ~ 1 + (1|authority) + (1|school)``, non-centred by Bambi): exactly
  the generative process; calibrated.
* ``mutant_*``: the ``partial`` model with one planted bug each (:data:`MUTANTS`), left out
  of default runs; ``sbc mutants diploma`` checks that SBC flags every one.

The design is synthetic; the writers per school of the real Alberta extract can replace it
once that extract ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from sbc.backends.nutpie import BambiModel, PyMCModel
from sbc.scenario import (
    Likelihood,
    Model,
    Process,
    Scenario,
    Setting,
    Simulation,
    at_least_one,
    mutant_models,
    open_unit,
    positive,
)
from scenarios.school import group_labels

SCHOOL_PATTERN = (0.5, 1.0, 1.5)
"""Schools of each authority, in turn, as multiples of ``schools_per_authority``."""

WRITER_PATTERN = (0.3, 0.6, 1.0, 1.5, 1.6)
"""Writers of each school, in turn, as multiples of ``writers_per_school`` (mean 1)."""

SETTINGS = (
    Setting("n_authorities", 6, "number of school authorities", at_least_one),
    Setting(
        "schools_per_authority", 3, "schools per authority (0.5x, 1x, 1.5x in turn)", at_least_one
    ),
    Setting("writers_per_school", 20, "writers per school (0.3x to 1.6x in turn)", at_least_one),
    Setting("typical_pass_rate", 0.8, "prior median of a typical school's pass rate", open_unit),
    Setting("mu_scale", 0.5, "prior sd of mu, the typical logit pass rate", positive),
    Setting("authority_sd_scale", 0.5, "half-normal scale of the authority sd (logit)", positive),
    Setting("school_sd_scale", 0.5, "half-normal scale of the school sd (logit)", positive),
)


@dataclass(frozen=True)
class Design:
    """Authorities, schools and writers, and the generative hyperparameters."""

    n_authorities: int
    schools_per_authority: int
    writers_per_school: int
    typical_pass_rate: float
    mu_scale: float
    authority_sd_scale: float
    school_sd_scale: float

    @property
    def schools_of(self) -> np.ndarray:
        """Number of schools in each authority."""
        pattern = np.resize(SCHOOL_PATTERN, self.n_authorities)
        return np.maximum(1, np.round(pattern * self.schools_per_authority)).astype(int)

    @property
    def authority(self) -> np.ndarray:
        """Authority index (0-based) of every school, grouped by authority."""
        return np.repeat(np.arange(self.n_authorities), self.schools_of)

    @property
    def n_schools(self) -> int:
        """Number of schools."""
        return int(self.schools_of.sum())

    @property
    def writers(self) -> np.ndarray:
        """Writers of every school."""
        pattern = np.resize(WRITER_PATTERN, self.n_schools)
        return np.maximum(1, np.round(pattern * self.writers_per_school)).astype(np.int64)

    @property
    def authority_labels(self) -> list[str]:
        """Authority labels, zero-padded so that they sort in index order (as Bambi sorts)."""
        return group_labels("a", self.n_authorities)

    @property
    def school_labels(self) -> list[str]:
        """School labels, zero-padded so that they sort in index order."""
        return group_labels("s", self.n_schools)

    @property
    def mu_location(self) -> float:
        """Prior mean of ``mu``: the logit of the typical pass rate."""
        return float(special.logit(self.typical_pass_rate))

    @property
    def marginal_sd(self) -> float:
        """Prior sd of one school's logit pass rate (mu, authority and school effects)."""
        return float(
            np.sqrt(self.mu_scale**2 + self.authority_sd_scale**2 + self.school_sd_scale**2)
        )


def design(settings: Mapping[str, Any]) -> Design:
    """Build the design from resolved settings."""
    return Design(**settings)


def estimands(design: Design) -> tuple[str, ...]:
    """The typical pass rate and every school's pass rate."""
    return ("typical_rate", *(f"pass_rate[{s + 1}]" for s in range(design.n_schools)))


def prior(design: Design, rng: np.random.Generator) -> dict[str, Any]:
    """Draw the parameters from the prior (named as in the ``partial`` model)."""
    mu = rng.normal(design.mu_location, design.mu_scale)
    authority_sd = abs(rng.normal(0.0, design.authority_sd_scale))
    school_sd = abs(rng.normal(0.0, design.school_sd_scale))
    return {
        "mu": mu,
        "authority_sd": authority_sd,
        "school_sd": school_sd,
        "authority": authority_sd * rng.normal(size=design.n_authorities),
        "school": school_sd * rng.normal(size=design.n_schools),
    }


def generate(design: Design, params: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """The pass counts given the parameters, and the estimands' true values."""
    logit = params["mu"] + params["authority"][design.authority] + params["school"]
    rate = special.expit(logit)
    passed = rng.binomial(design.writers, rate)
    truth = {"typical_rate": special.expit(params["mu"])}
    truth |= {f"pass_rate[{s + 1}]": r for s, r in enumerate(rate)}
    return Simulation({k: float(v) for k, v in truth.items()}, {"passed": passed})


def new_authorities(
    design: Design, params: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """The parameters with new authorities and schools from the same population."""
    return {
        **params,
        "authority": params["authority_sd"] * rng.normal(size=design.n_authorities),
        "school": params["school_sd"] * rng.normal(size=design.n_schools),
    }


simulate = Process(prior, generate, new_groups=new_authorities)
"""Parameters from the prior, then the pass counts (one random stream)."""


def _new_logits(
    design: Design,
    centre: np.ndarray,
    authority_sd: np.ndarray,
    school_sd: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Rate draws of new authorities and schools: ``centre + authority + school`` logits."""
    shape = np.shape(centre)
    u = rng.normal(size=(*shape, design.n_authorities))[..., design.authority]
    v = rng.normal(size=(*shape, design.n_schools))
    logits = centre[..., None] + authority_sd[..., None] * u + school_sd[..., None] * v
    return _by_school(special.expit(centre), special.expit(logits))


def _partial_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """New authorities and schools from the posterior population."""
    return _new_logits(design, draws["mu"], draws["authority_sd"], draws["school_sd"], rng)


def _partial_bambi_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    return _new_logits(
        design, draws["Intercept"], draws["1|authority_sigma"], draws["1|school_sigma"], rng
    )


def _none_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """No pooling predicts a new school from its fixed prior."""
    shape = np.shape(next(iter(draws.values())))[:2]
    logits = rng.normal(design.mu_location, design.marginal_sd, size=(*shape, design.n_schools))
    return _by_school(special.expit(logits.mean(axis=-1)), special.expit(logits))


def _by_school(typical: np.ndarray, rates: np.ndarray) -> dict[str, np.ndarray]:
    """Estimand draws from ``(chain, draw)`` typical rate and ``(chain, draw, S)`` rates."""
    return {"typical_rate": typical} | {
        f"pass_rate[{s + 1}]": rates[..., s] for s in range(rates.shape[-1])
    }


# ---- PyMC models -----------------------------------------------------------------------


def _coords(design: Design) -> dict[str, list[str]]:
    return {"authority": design.authority_labels, "school": design.school_labels}


def _build_partial(
    design: Design, example: Mapping[str, np.ndarray], bug: str | None = None
) -> Any:
    """The generative model, non-centred; ``bug`` plants one of :data:`MUTANTS` in it."""
    import pymc as pm

    with pm.Model(coords=_coords(design)) as model:
        passed = pm.Data("passed", example["passed"])
        location = design.typical_pass_rate if bug == "prior_on_rate_scale" else design.mu_location
        mu = pm.Normal("mu", location, design.mu_scale)
        authority_sd = pm.HalfNormal("authority_sd", design.authority_sd_scale)
        school_sd = pm.HalfNormal("school_sd", design.school_sd_scale)
        u = pm.Normal("authority_z", 0.0, 1.0, dims="authority")
        v = pm.Normal("school_z", 0.0, 1.0, dims="school")
        logit = mu + authority_sd * u[design.authority] + school_sd * v
        link = pm.math.invprobit if bug == "probit_link" else pm.math.invlogit
        rate = pm.Deterministic("pass_rate", link(logit), dims="school")
        observed = design.writers - passed if bug == "failures_as_passes" else passed
        writers = design.writers + 1 if bug == "writers_plus_one" else design.writers
        pm.Binomial("obs", n=writers, p=rate, observed=observed)
    return model


MUTANTS = {
    "failures_as_passes": "the failures (writers - passed) given as the successes",
    "probit_link": "an inverse-probit link where the simulator uses the inverse logit",
    "prior_on_rate_scale": "mu's prior centred on the typical pass rate, not on its logit",
    "writers_plus_one": "one writer too many in every school (an off-by-one count)",
}
"""Planted bugs in the ``partial`` model: SBC must flag every one."""


def _partial_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return _by_school(special.expit(draws["mu"]), draws["pass_rate"])


def _build_none(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model(coords=_coords(design)) as model:
        passed = pm.Data("passed", example["passed"])
        logit = pm.Normal("school_logit", design.mu_location, design.marginal_sd, dims="school")
        rate = pm.Deterministic("pass_rate", pm.math.invlogit(logit), dims="school")
        pm.Binomial("obs", n=design.writers, p=rate, observed=passed)
    return model


def _none_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return _by_school(special.expit(draws["school_logit"].mean(axis=-1)), draws["pass_rate"])


def _build_complete(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model() as model:
        passed = pm.Data("passed", example["passed"])
        logit = pm.Normal("logit", design.mu_location, design.marginal_sd)
        pm.Binomial("obs", n=design.writers, p=pm.math.invlogit(logit), observed=passed)
    return model


def _complete_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    rate = special.expit(draws["logit"])
    return _by_school(rate, np.repeat(rate[..., None], design.n_schools, -1))


# ---- Bambi models ----------------------------------------------------------------------


def _frame(design: Design, data: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per school: passes (simulated), writers, authority and school (the design)."""
    return pd.DataFrame(
        {
            "passed": np.asarray(data["passed"]),
            "writers": design.writers,
            "authority": pd.Categorical.from_codes(
                design.authority, categories=design.authority_labels
            ),
            "school": pd.Categorical.from_codes(
                np.arange(design.n_schools), categories=design.school_labels
            ),
        }
    )


def _complete_priors(d: Design) -> dict[str, Any]:
    return {"Intercept": ("Normal", {"mu": d.mu_location, "sigma": d.marginal_sd})}


def _none_priors(d: Design) -> dict[str, Any]:
    return {"school": ("Normal", {"mu": d.mu_location, "sigma": d.marginal_sd})}


def _partial_priors(d: Design) -> dict[str, Any]:
    return {
        "Intercept": ("Normal", {"mu": d.mu_location, "sigma": d.mu_scale}),
        "1|authority": (
            "Normal",
            {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": d.authority_sd_scale})},
        ),
        "1|school": ("Normal", {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": d.school_sd_scale})}),
    }


def _complete_bambi_estimands(
    draws: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    rate = special.expit(draws["Intercept"])
    return _by_school(rate, np.repeat(rate[..., None], design.n_schools, -1))


def _none_bambi_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    logits = draws["school"]
    return _by_school(special.expit(logits.mean(axis=-1)), special.expit(logits))


def _partial_bambi_estimands(
    draws: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    intercept = draws["Intercept"]
    logits = intercept[..., None] + draws["1|authority"][..., design.authority] + draws["1|school"]
    return _by_school(special.expit(intercept), special.expit(logits))


def _bambi(formula: str, priors: Any) -> BambiModel:
    return BambiModel(formula, _frame, "passed", priors, family="binomial")


# ---- test quantities -------------------------------------------------------------------


def _rates(params: Mapping[str, np.ndarray], design: Design) -> np.ndarray:
    return np.stack([params[f"pass_rate[{s + 1}]"] for s in range(design.n_schools)], axis=-1)


def _loglik(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Design
) -> np.ndarray:
    """Binomial log probability of every school's pass count."""
    return stats.binom.logpmf(data["passed"], design.writers, _rates(params, design))


def _groups(design: Design) -> tuple[list[str], np.ndarray]:
    return design.authority_labels, design.authority


def _spread(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    """Sd of the schools' logit pass rates (left out for a single school)."""
    if design.n_schools < 2:
        return {}
    return {"rate_spread": special.logit(_rates(params, design)).std(axis=-1, ddof=1)}


SCENARIO = Scenario(
    name="diploma",
    description="students passing the diploma exam: pass counts, schools within authorities "
    "(binomial, three levels)",
    settings=SETTINGS,
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "complete",
            "one pass rate for every school (PyMC)",
            PyMCModel(_build_complete, data=("passed",)),
            _complete_estimands,
            new_groups=lambda draws, design, rng: _complete_estimands(draws, design),
        ),
        Model(
            "complete_bambi",
            "as complete (Bambi: p(passed, writers) ~ 1)",
            _bambi("p(passed, writers) ~ 1", _complete_priors),
            _complete_bambi_estimands,
            new_groups=lambda draws, design, rng: _complete_bambi_estimands(draws, design),
        ),
        Model(
            "none",
            "independent school rates, fixed prior (PyMC)",
            PyMCModel(_build_none, data=("passed",)),
            _none_estimands,
            new_groups=_none_new,
        ),
        Model(
            "none_bambi",
            "as none (Bambi: p(passed, writers) ~ 0 + school)",
            _bambi("p(passed, writers) ~ 0 + school", _none_priors),
            _none_bambi_estimands,
            new_groups=_none_new,
        ),
        Model(
            "partial",
            "school and authority effects from learned priors, non-centred (PyMC)",
            PyMCModel(_build_partial, data=("passed",)),
            _partial_estimands,
            new_groups=_partial_new,
        ),
        Model(
            "partial_bambi",
            "as partial (Bambi: p(passed, writers) ~ 1 + (1|authority) + (1|school))",
            _bambi("p(passed, writers) ~ 1 + (1|authority) + (1|school)", _partial_priors),
            _partial_bambi_estimands,
            new_groups=_partial_bambi_new,
        ),
        *mutant_models(
            MUTANTS,
            lambda bug: PyMCModel(partial(_build_partial, bug=bug), data=("passed",)),
            _partial_estimands,
        ),
    ),
    likelihood=Likelihood(_loglik, groups=_groups),
    test_quantities=_spread,
)
