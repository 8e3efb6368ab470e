"""Test scores of students in several schools (the seed's second example, two levels).

Scores are proportions in (0, 1) from ``Beta(mean * nu, (1 - mean) * nu)`` (mean /
concentration parameterisation, see :mod:`scenarios.school`).

Generative process (the ``partial`` model shares exactly these priors)::

    pop_mean          ~ Beta(pop_mean_mean * pop_mean_concentration, (1 - ...) * ...)
    kappa             ~ Gamma(mean school_concentration_mean, sd school_concentration_sd)
    school_mean[j]    ~ Beta(pop_mean * kappa, (1 - pop_mean) * kappa),   j = 1..n_schools
    nu                ~ Gamma(mean nu_mean, sd nu_sd)          # typical student concentration
    nu_spread         ~ HalfNormal(nu_spread_scale)            # sd of log nu_school
    nu_school[j]      = nu * exp(nu_spread * z[j]),  z[j] ~ Normal(0, 1)
    score[i]          ~ Beta(school_mean[s] * nu_school[s], (1 - school_mean[s]) * nu_school[s])

for student ``i`` of school ``s``, ``students_per_school`` students per school. Seed
defaults: 5 schools x 20 students, school means around 0.75 (seed: concentration 50),
students' concentration around 30. ``pop_mean`` is the population mean of school means
(the seed's ``alpha_bar / (alpha_bar + beta_bar)``), ``kappa`` how tightly school means
gather around it. The seed's Stan hyperpriors (``alpha_bar ~ Normal(3, 0.5)`` ...) are not
copied: every prior here is the declared setting. Scores are clipped to
``[1e-6, 1 - 1e-6]`` (and school means likewise, see
:func:`scenarios.school.draw_means`); under the defaults at least one score is clipped in
0.4% of simulated data sets.

Data statistic: ``between_within``, the sd of the school sample means over the sd that
within-school noise alone would give them (see :mod:`sbc.stats.pooling`).

Estimands: ``school_mean[j]``, ``pop_mean`` and ``nu``. ``nu`` is the *typical* student
concentration: in the generative process and ``partial`` the shared ``nu`` (the median of
the school concentrations ``nu_school[j]``); each other model reports its own closest
quantity, stated below. Only ``partial`` targets exactly the generative ``nu``.

Models:

* ``complete`` (Bambi, ``score ~ 1``, beta family): one mean for every school; every
  school mean and ``pop_mean`` are ``expit(Intercept)``, ``nu`` is Bambi's ``kappa``, which
  absorbs the between-school spread. Priors: the intercept gets the logit-scale moments of
  the marginal prior of a school mean, ``kappa`` the ``nu`` Gamma prior. Not calibrated.
* ``none`` (PyMC, the seed's unpooled model): independent ``school_mean[j]`` with a fixed
  Beta prior moment-matched to the marginal prior of a school mean, independent
  ``nu_school[j] ~ Gamma(nu prior)``. ``pop_mean`` is the average of the school means
  and ``nu`` the geometric mean of the ``nu_school[j]``. An honest alternative, not the
  generative process.
* ``partial`` (PyMC): exactly the generative process; calibrated. School means are
  centred (``school_mean ~ Beta(pop_mean * kappa, ...)``): the Gamma prior keeps ``kappa``
  away from zero, so there is no funnel to remove. The school concentrations are
  non-centred on the log scale (``nu * exp(nu_spread * z)``): written centred
  (``nu_school ~ LogNormal(log nu, nu_spread)``) 97 of 100 fits diverged (28 divergences
  per fit on average), non-centred 0 of 200 SBC fits did.
* ``partial_bambi`` (Bambi, ``score ~ 1 + (1|school)``, beta family): logit-normal school
  means, one shared ``kappa`` (no per-school concentration). Intercept prior: logit-scale
  moments of the ``pop_mean`` prior. Group-sd prior: a Gamma matched to the logit-scale sd
  of school means that the ``pop_mean`` and ``kappa`` priors imply
  (:func:`scenarios.school.logit_sd_gamma`); with a half-normal instead (mean matched at
  the prior mean ``kappa``) 4% of 200 fits diverged, with the Gamma none.
  ``pop_mean`` is ``E[expit(Intercept + sd * Z)]`` (Gauss-Hermite quadrature), ``nu`` is
  ``kappa``. An approximation of the generative process.
* ``mutant_*``: the ``partial`` model with one planted bug each (:data:`MUTANTS`), left out
  of default runs; ``sbc mutants`` checks that SBC flags every one.
* ``partial_stan``: ``partial`` as a Stan program (``scenarios/stan/schools_partial.stan``,
  the ``stan`` extra), run when named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc.backends.nutpie import BambiModel, PyMCModel
from sbc.backends.stan import StanModel
from sbc.scenario import (
    DataStatistic,
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
from sbc.stats.pooling import spread_ratio
from scenarios.school import (
    beta_scores,
    check_gamma,
    draw_means,
    draw_scores,
    expit,
    gamma_shape_rate,
    group_labels,
    logistic_normal_mean,
    logit_beta_moments,
    logit_sd_gamma,
    pooled_concentration,
    score_sums,
)

SETTINGS = (
    Setting("n_schools", 5, "number of schools", at_least_one),
    Setting("students_per_school", 20, "students per school", at_least_one),
    Setting("pop_mean_mean", 0.75, "prior mean of pop_mean (mean of school means)", open_unit),
    Setting("pop_mean_concentration", 20.0, "prior concentration of pop_mean (Beta)", positive),
    Setting("school_concentration_mean", 50.0, "prior mean of kappa (school means)", positive),
    Setting("school_concentration_sd", 20.0, "prior sd of kappa (Gamma)", positive),
    Setting("nu_mean", 30.0, "prior mean of the typical student concentration nu", positive),
    Setting("nu_sd", 5.0, "prior sd of nu (Gamma)", positive),
    Setting("nu_spread_scale", 0.2, "half-normal scale of the sd of log nu_school", positive),
)


@dataclass(frozen=True)
class Design:
    """School membership of every student and the generative hyperparameters."""

    n_schools: int
    students_per_school: int
    pop_mean_mean: float
    pop_mean_concentration: float
    school_concentration_mean: float
    school_concentration_sd: float
    nu_mean: float
    nu_sd: float
    nu_spread_scale: float

    @property
    def school(self) -> np.ndarray:
        """School index (0-based) of every student, grouped by school."""
        return np.repeat(np.arange(self.n_schools), self.students_per_school)

    @property
    def labels(self) -> list[str]:
        """School labels, in index order."""
        return group_labels("s", self.n_schools)

    @property
    def pop_mean_beta(self) -> tuple[float, float]:
        """(alpha, beta) of the Beta prior on pop_mean."""
        m, c = self.pop_mean_mean, self.pop_mean_concentration
        return m * c, (1 - m) * c

    @property
    def kappa_gamma(self) -> tuple[float, float]:
        """(shape, rate) of the Gamma prior on kappa."""
        return gamma_shape_rate(self.school_concentration_mean, self.school_concentration_sd)

    @property
    def nu_gamma(self) -> tuple[float, float]:
        """(shape, rate) of the Gamma prior on nu."""
        return gamma_shape_rate(self.nu_mean, self.nu_sd)

    @property
    def marginal_concentration(self) -> float:
        """Concentration of the Beta with the prior mean and variance of one school mean.

        Moment matching over the two levels (``pop_mean``, then the school mean) with
        ``kappa`` at its prior mean: the fixed prior a user of the unpooled model would pick.
        """
        return pooled_concentration(self.pop_mean_concentration, self.school_concentration_mean)


def design(settings: Mapping[str, Any]) -> Design:
    """Build the design from resolved settings."""
    return Design(**settings)


def check_settings(values: Mapping[str, Any]) -> str | None:
    """Cross-setting rule: Gamma priors must keep concentrations away from zero."""
    return check_gamma(values, "school_concentration", "nu")


def estimands(design: Design) -> tuple[str, ...]:
    """Population mean of school means, typical concentration, every school's mean."""
    return ("pop_mean", "nu", *(f"school_mean[{j + 1}]" for j in range(design.n_schools)))


def prior(design: Design, rng: np.random.Generator) -> dict[str, Any]:
    """Draw the parameters from the prior (named as in the ``partial`` model)."""
    pop_mean = rng.beta(*design.pop_mean_beta)
    shape, rate = design.kappa_gamma
    kappa = rng.gamma(shape, 1 / rate)
    school_mean = draw_means(rng, pop_mean, kappa, size=design.n_schools)
    shape, rate = design.nu_gamma
    nu = rng.gamma(shape, 1 / rate)
    nu_spread = abs(rng.normal(0.0, design.nu_spread_scale))
    nu_school = nu * np.exp(nu_spread * rng.normal(size=design.n_schools))
    return {
        "pop_mean": pop_mean,
        "kappa": kappa,
        "school_mean": school_mean,
        "nu": nu,
        "nu_spread": nu_spread,
        "nu_school": nu_school,
    }


def generate(design: Design, params: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """The scores given the parameters, and the estimands' true values."""
    school_mean = np.asarray(params["school_mean"], dtype=float)
    nu_school = np.asarray(params["nu_school"], dtype=float)
    score = draw_scores(rng, school_mean[design.school], nu_school[design.school])
    truth = {"pop_mean": float(params["pop_mean"]), "nu": float(params["nu"])}
    truth |= {f"school_mean[{j + 1}]": float(m) for j, m in enumerate(school_mean)}
    return Simulation(truth=truth, data={"score": score})


simulate = Process(prior, generate)
"""Parameters from the prior, then the scores (one random stream)."""


def _between_within(design: Design, data: Mapping[str, np.ndarray]) -> float:
    return spread_ratio(data["score"], design.school)


def _by_school(
    design: Design, pop_mean: np.ndarray, nu: np.ndarray, school_mean: np.ndarray
) -> dict[str, np.ndarray]:
    """Estimand draws from ``(chain, draw)`` pop_mean, nu and ``(chain, draw, J)`` means."""
    out = {"pop_mean": pop_mean, "nu": nu}
    out |= {f"school_mean[{j + 1}]": school_mean[..., j] for j in range(design.n_schools)}
    return out


# ---- PyMC models -----------------------------------------------------------------------


def _build_partial(
    design: Design, example: Mapping[str, np.ndarray], bug: str | None = None
) -> Any:
    """The generative model; ``bug`` plants one of :data:`MUTANTS` in it."""
    import pymc as pm

    with pm.Model(coords={"school": design.labels}) as model:
        pop_mean = pm.Beta("pop_mean", *design.pop_mean_beta)
        shape, rate = design.kappa_gamma
        kappa = pm.Gamma("kappa", alpha=shape, beta=rate)
        a, b = pop_mean * kappa, (1 - pop_mean) * kappa
        if bug == "swapped_ab":
            a, b = b, a
        school_mean = pm.Beta("school_mean", a, b, dims="school")
        shape, rate = design.nu_gamma
        nu = pm.Gamma("nu", alpha=shape, beta=rate)
        nu_spread = pm.HalfNormal("nu_spread", design.nu_spread_scale)
        z = pm.Normal("z", 0.0, 1.0, dims="school")
        nu_school = pm.Deterministic("nu_school", nu * pm.math.exp(nu_spread * z), dims="school")
        mean = school_mean
        if bug == "wrong_link":
            mean = pm.math.invlogit(mean)  # a mean already on (0, 1) sent through a link again
        beta_scores("obs", mean, nu_school, design, example)
    return model


MUTANTS = {
    "swapped_ab": "school-mean prior Beta((1 - pop_mean) kappa, pop_mean kappa): alpha and "
    "beta swapped (the seed's authority model)",
    "wrong_link": "the school mean sent through an inverse-logit link again in the likelihood",
}
"""Planted bugs in the ``partial`` model: SBC must flag every one."""


def _partial_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return _by_school(design, draws["pop_mean"], draws["nu"], draws["school_mean"])


def _build_none(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model(coords={"school": design.labels}) as model:
        c = design.marginal_concentration
        m = design.pop_mean_mean
        school_mean = pm.Beta("school_mean", m * c, (1 - m) * c, dims="school")
        shape, rate = design.nu_gamma
        nu_school = pm.Gamma("nu_school", alpha=shape, beta=rate, dims="school")
        beta_scores("obs", school_mean, nu_school, design, example)
    return model


def _none_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    means = draws["school_mean"]
    nu = np.exp(np.log(draws["nu_school"]).mean(axis=-1))
    return _by_school(design, means.mean(axis=-1), nu, means)


def _stan_data(design: Design, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The data block of ``schools_partial.stan`` (schools numbered from 1)."""
    return {
        "J": design.n_schools,
        "N": design.school.size,
        "school": design.school + 1,
        "score": np.asarray(data["score"], dtype=float),
        "pop_mean_beta": np.asarray(design.pop_mean_beta),
        "kappa_gamma": np.asarray(design.kappa_gamma),
        "nu_gamma": np.asarray(design.nu_gamma),
        "nu_spread_scale": design.nu_spread_scale,
    }


# ---- Bambi models ----------------------------------------------------------------------


def _frame(design: Design, data: Mapping[str, np.ndarray]) -> pd.DataFrame:
    school = pd.Categorical.from_codes(design.school, categories=design.labels)
    return pd.DataFrame({"score": np.asarray(data["score"], dtype=float), "school": school})


def _complete_priors(d: Design) -> dict[str, Any]:
    loc, sd = logit_beta_moments(d.pop_mean_mean, d.marginal_concentration)
    shape, rate = d.nu_gamma
    return {
        "Intercept": ("Normal", {"mu": loc, "sigma": sd}),
        "kappa": ("Gamma", {"alpha": shape, "beta": rate}),
    }


def _complete_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    common = expit(draws["Intercept"])
    means = np.repeat(common[..., None], design.n_schools, -1)
    return _by_school(design, common, draws["kappa"], means)


def _partial_bambi_priors(d: Design) -> dict[str, Any]:
    loc, sd = logit_beta_moments(d.pop_mean_mean, d.pop_mean_concentration)
    sd_shape, sd_rate = logit_sd_gamma(d.pop_mean_beta, d.kappa_gamma)
    shape, rate = d.nu_gamma
    return {
        "Intercept": ("Normal", {"mu": loc, "sigma": sd}),
        "1|school": (
            "Normal",
            {"mu": 0.0, "sigma": ("Gamma", {"alpha": sd_shape, "beta": sd_rate})},
        ),
        "kappa": ("Gamma", {"alpha": shape, "beta": rate}),
    }


def _partial_bambi_estimands(
    draws: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    intercept = draws["Intercept"]
    means = expit(intercept[..., None] + draws["1|school"])
    pop_mean = logistic_normal_mean(intercept, draws["1|school_sigma"])
    return _by_school(design, pop_mean, draws["kappa"], means)


def _bambi(formula: str, priors: Any) -> BambiModel:
    return BambiModel(formula=formula, frame=_frame, response="score", priors=priors, family="beta")


SCENARIO = Scenario(
    name="schools",
    description="test scores of students in several schools (beta, two levels)",
    settings=SETTINGS,
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "complete",
            "one mean for every school (Bambi: score ~ 1, family beta)",
            _bambi("score ~ 1", _complete_priors),
            _complete_estimands,
        ),
        Model(
            "none",
            "independent school means and concentrations, fixed priors (PyMC)",
            PyMCModel(_build_none, data=(), derive=score_sums),
            _none_estimands,
        ),
        Model(
            "partial",
            "school means from a learned Beta prior: the generative process (PyMC)",
            PyMCModel(_build_partial, data=(), derive=score_sums),
            _partial_estimands,
        ),
        *mutant_models(
            MUTANTS,
            lambda bug: PyMCModel(partial(_build_partial, bug=bug), data=(), derive=score_sums),
            _partial_estimands,
        ),
        Model(
            "partial_bambi",
            "logit-normal school means, shared kappa (Bambi: score ~ 1 + (1|school))",
            _bambi("score ~ 1 + (1|school)", _partial_bambi_priors),
            _partial_bambi_estimands,
            # Intercept and school effects are strongly correlated a posteriori: with the
            # diagonal mass matrix 7.5% of 40 fits were healthy (median bulk ESS 323, 15.6
            # gradient evaluations per draw), with the low-rank one 95% of 20 (ESS 882, 10.4).
            sampling={"adaptation": "low_rank"},
        ),
        Model(
            "partial_stan",
            "as partial, in Stan",
            StanModel(Path(__file__).with_name("stan") / "schools_partial.stan", _stan_data),
            _partial_estimands,
            extra="stan",
        ),
    ),
    check_settings=check_settings,
    data_statistics=(
        DataStatistic(
            "between_within",
            "sd of the school sample means over the sd within-school noise alone gives them "
            "(about 1: the data call for strong pooling; large: for little)",
            _between_within,
        ),
    ),
    reference_model="partial",
)
