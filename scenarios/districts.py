"""Test scores of students in schools in districts (the seed's third example, three levels).

Scores are proportions in (0, 1) from ``Beta(mean * nu, (1 - mean) * nu)`` (mean /
concentration parameterisation, see :mod:`scenarios.school`).

Generative process (the ``partial`` model shares exactly these priors)::

    pop_mean          ~ Beta(pop_mean_mean * pop_mean_concentration, (1 - ...) * ...)
    district_conc     ~ Gamma(mean district_concentration_mean, sd district_concentration_sd)
    district_mean[d]  ~ Beta(pop_mean * district_conc, (1 - pop_mean) * district_conc)
    school_conc       ~ Gamma(mean school_concentration_mean, sd school_concentration_sd)
    school_mean[k]    ~ Beta(district_mean[d(k)] * school_conc, (1 - ...) * school_conc)
    nu                ~ Gamma(mean nu_mean, sd nu_sd)          # student concentration
    score[i]          ~ Beta(school_mean[k(i)] * nu, (1 - school_mean[k(i)]) * nu)

with ``n_districts`` districts of ``schools_per_district`` schools of
``students_per_school`` students (seed: 3 x 3 x 20). Schools carry a global index
``k = 1..n_districts * schools_per_district``; school ``k`` lies in district
``d(k) = (k - 1) // schools_per_district + 1``.

Departures from the seed: the seed fixes the population mean at 0.75 and uses
concentration 30 for district means, 40 for school means and 30 for students. Here
``pop_mean ~ Beta(30, 10)`` and the district concentration is centred on 50: with 30 and
``Beta(15, 5)``, 5.4% of 4000 simulated data sets had a school mean so close to 1 that some
score had to be clipped (below), against 0.8% with these defaults. The seed's Stan model
leaves its per-school concentrations without a prior and ignores the declared
hyperparameters; here every prior is the declared setting and the student concentration is
one shared ``nu``. Scores and group means are clipped to ``[1e-6, 1 - 1e-6]`` (see
:func:`scenarios.school.draw_means`).

Data statistics, one per level (see :mod:`sbc.stats.pooling`): ``district_spread``, the sd
of the district averages of school sample means over the sd that the spread of schools
within districts alone would give them, and ``school_spread``, the sd of school sample means
about their district's average over the sd that within-school noise alone would give them.

Estimands: ``pop_mean`` (the population mean of district means, which is also the mean of
school means), ``district_mean[d]`` (the mean of the school means of district ``d``) and
``school_mean[k]``.

Models:

* ``complete`` (Bambi, ``score ~ 1``, beta family): one mean for every school and district;
  intercept prior: logit-scale moments of the marginal prior of a school mean. Not
  calibrated.
* ``none`` (PyMC): independent school means with the fixed Beta prior moment-matched to the
  marginal prior of a school mean, shared ``nu``; ``district_mean[d]`` is the average of
  district ``d``'s school means and ``pop_mean`` the average of all school means. An
  honest alternative, not the generative process.
* ``partial_school`` (PyMC): schools pooled around ``pop_mean`` with one learned
  concentration, districts ignored (the ``schools`` scenario's model with one ``nu``); its
  concentration prior is a Gamma centred on the concentration that matches the two levels
  combined. ``district_mean[d]`` is the average of the district's school means. An
  approximation.
* ``partial`` (PyMC): exactly the generative process, districts and schools nested;
  calibrated. District and school means are centred Betas: the Gamma priors keep both
  concentrations away from zero, and 0 of 200 SBC fits diverged (target_accept 0.95).
* ``partial_bambi`` (Bambi, ``score ~ 1 + (1|district) + (1|school)`` with globally unique
  school labels, i.e. schools nested in districts; beta family, shared ``kappa`` = ``nu``):
  logit-normal district and school effects instead of nested Betas. Group-sd priors are
  Gammas matched to the logit-scale sd of group means that the Beta and Gamma priors imply
  (:func:`scenarios.school.logit_sd_gamma`); with half-normal priors (mean matched at the
  prior mean concentrations) 18% of 200 fits diverged and ``pop_mean`` failed uniformity,
  with the Gammas no fit diverged. ``district_mean[d] = E[expit(Intercept + u_d +
  sd_school * Z)]`` and ``pop_mean`` likewise over both levels (Gauss-Hermite
  quadrature). An approximation.
* ``mutant_*``: the ``partial`` model with one planted bug each (:data:`MUTANTS`), left out
  of default runs; ``sbc mutants`` checks that SBC flags every one.
* ``partial_stan``: ``partial`` as a Stan program (``scenarios/stan/districts_partial.stan``,
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
from sbc.stats.pooling import group_means, spread_ratio
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
    Setting("n_districts", 3, "number of districts", at_least_one),
    Setting("schools_per_district", 3, "schools per district", at_least_one),
    Setting("students_per_school", 20, "students per school", at_least_one),
    Setting("pop_mean_mean", 0.75, "prior mean of pop_mean (mean of district means)", open_unit),
    Setting("pop_mean_concentration", 40.0, "prior concentration of pop_mean (Beta)", positive),
    Setting("district_concentration_mean", 50.0, "prior mean of district_conc", positive),
    Setting("district_concentration_sd", 15.0, "prior sd of district_conc (Gamma)", positive),
    Setting("school_concentration_mean", 40.0, "prior mean of school_conc", positive),
    Setting("school_concentration_sd", 10.0, "prior sd of school_conc (Gamma)", positive),
    Setting("nu_mean", 30.0, "prior mean of the student concentration nu", positive),
    Setting("nu_sd", 5.0, "prior sd of nu (Gamma)", positive),
)


@dataclass(frozen=True)
class Design:
    """District of every school, school of every student, and the hyperparameters."""

    n_districts: int
    schools_per_district: int
    students_per_school: int
    pop_mean_mean: float
    pop_mean_concentration: float
    district_concentration_mean: float
    district_concentration_sd: float
    school_concentration_mean: float
    school_concentration_sd: float
    nu_mean: float
    nu_sd: float

    @property
    def n_schools(self) -> int:
        """Total number of schools."""
        return self.n_districts * self.schools_per_district

    @property
    def district_of_school(self) -> np.ndarray:
        """District index (0-based) of every school, schools in global index order."""
        return np.repeat(np.arange(self.n_districts), self.schools_per_district)

    @property
    def school(self) -> np.ndarray:
        """School index (0-based, global) of every student, grouped by school."""
        return np.repeat(np.arange(self.n_schools), self.students_per_school)

    @property
    def district(self) -> np.ndarray:
        """District index (0-based) of every student."""
        return self.district_of_school[self.school]

    @property
    def district_labels(self) -> list[str]:
        """District labels, in index order."""
        return group_labels("d", self.n_districts)

    @property
    def school_labels(self) -> list[str]:
        """School labels (globally unique), in index order."""
        return group_labels("s", self.n_schools)

    @property
    def pop_mean_beta(self) -> tuple[float, float]:
        """(alpha, beta) of the Beta prior on pop_mean."""
        m, c = self.pop_mean_mean, self.pop_mean_concentration
        return m * c, (1 - m) * c

    def gamma(self, prefix: str) -> tuple[float, float]:
        """(shape, rate) of the Gamma prior ``prefix`` (``district_concentration`` ...)."""
        return gamma_shape_rate(getattr(self, f"{prefix}_mean"), getattr(self, f"{prefix}_sd"))

    @property
    def marginal_concentration(self) -> float:
        """Concentration of the Beta with the prior mean and variance of one school mean."""
        return pooled_concentration(
            self.pop_mean_concentration,
            self.district_concentration_mean,
            self.school_concentration_mean,
        )

    @property
    def combined_concentration(self) -> float:
        """Concentration of school means around pop_mean, district level folded in."""
        return pooled_concentration(
            self.district_concentration_mean, self.school_concentration_mean
        )


def design(settings: Mapping[str, Any]) -> Design:
    """Build the design from resolved settings."""
    return Design(**settings)


def check_settings(values: Mapping[str, Any]) -> str | None:
    """Cross-setting rule: Gamma priors must keep concentrations away from zero."""
    return check_gamma(values, "district_concentration", "school_concentration", "nu")


def estimands(design: Design) -> tuple[str, ...]:
    """Population mean, every district's mean, every school's mean (global index)."""
    return (
        "pop_mean",
        *(f"district_mean[{d + 1}]" for d in range(design.n_districts)),
        *(f"school_mean[{k + 1}]" for k in range(design.n_schools)),
    )


def prior(design: Design, rng: np.random.Generator) -> dict[str, Any]:
    """Draw the parameters from the prior (named as in the ``partial`` model)."""
    pop_mean = rng.beta(*design.pop_mean_beta)
    shape, rate = design.gamma("district_concentration")
    district_conc = rng.gamma(shape, 1 / rate)
    district_mean = draw_means(rng, pop_mean, district_conc, size=design.n_districts)
    shape, rate = design.gamma("school_concentration")
    school_conc = rng.gamma(shape, 1 / rate)
    school_mean = draw_means(rng, district_mean[design.district_of_school], school_conc)
    shape, rate = design.gamma("nu")
    return {
        "pop_mean": pop_mean,
        "district_conc": district_conc,
        "district_mean": district_mean,
        "school_conc": school_conc,
        "school_mean": school_mean,
        "nu": rng.gamma(shape, 1 / rate),
    }


def generate(design: Design, params: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """The scores given the parameters, and the estimands' true values."""
    school_mean = np.asarray(params["school_mean"], dtype=float)
    district_mean = np.asarray(params["district_mean"], dtype=float)
    nu = float(params["nu"])
    score = draw_scores(rng, school_mean[design.school], np.full(design.school.size, nu))
    truth = {"pop_mean": float(params["pop_mean"])}
    truth |= {f"district_mean[{d + 1}]": float(m) for d, m in enumerate(district_mean)}
    truth |= {f"school_mean[{k + 1}]": float(m) for k, m in enumerate(school_mean)}
    return Simulation(truth=truth, data={"score": score})


simulate = Process(prior, generate)
"""Parameters from the prior, then the scores (one random stream)."""


def _school_level(design: Design, data: Mapping[str, np.ndarray]) -> float:
    return spread_ratio(data["score"], design.school, parent=design.district_of_school)


def _district_level(design: Design, data: Mapping[str, np.ndarray]) -> float:
    means, _ = group_means(data["score"], design.school)
    return spread_ratio(means, design.district_of_school)


def _out(
    design: Design, pop_mean: np.ndarray, district_mean: np.ndarray, school_mean: np.ndarray
) -> dict[str, np.ndarray]:
    """Estimand draws from ``(chain, draw)`` pop_mean and ``(chain, draw, n)`` means."""
    out = {"pop_mean": pop_mean}
    out |= {f"district_mean[{d + 1}]": district_mean[..., d] for d in range(design.n_districts)}
    out |= {f"school_mean[{k + 1}]": school_mean[..., k] for k in range(design.n_schools)}
    return out


def _district_average(design: Design, school_mean: np.ndarray) -> np.ndarray:
    """Average of each district's school means, ``(chain, draw, n_districts)``."""
    shape = (*school_mean.shape[:-1], design.n_districts, design.schools_per_district)
    return school_mean.reshape(shape).mean(axis=-1)


# ---- PyMC models -----------------------------------------------------------------------


def _coords(design: Design) -> dict[str, list[str]]:
    return {"district": design.district_labels, "school": design.school_labels}


def _likelihood(design: Design, example: Mapping[str, np.ndarray], school_mean: Any) -> None:
    import pymc as pm

    shape, rate = design.gamma("nu")
    nu = pm.Gamma("nu", alpha=shape, beta=rate)
    beta_scores("obs", school_mean, nu, design, example)


def _build_partial(
    design: Design, example: Mapping[str, np.ndarray], bug: str | None = None
) -> Any:
    """The generative model; ``bug`` plants one of :data:`MUTANTS` in it."""
    import pymc as pm

    with pm.Model(coords=_coords(design)) as model:
        pop_mean = pm.Beta("pop_mean", *design.pop_mean_beta)
        shape, rate = design.gamma("district_concentration")
        district_conc = pm.Gamma("district_conc", alpha=shape, beta=rate)
        district_mean = pm.Beta(
            "district_mean",
            pop_mean * district_conc,
            (1 - pop_mean) * district_conc,
            dims="district",
        )
        shape, rate = design.gamma("school_concentration")
        school_conc = pm.Gamma("school_conc", alpha=shape, beta=rate)
        district = design.district_of_school
        if bug == "shifted_district":
            district = (district + 1) % design.n_districts
        parent = district_mean[district]
        a, b = parent * school_conc, (1 - parent) * school_conc
        if bug == "swapped_ab":
            a, b = b, a
        school_mean = pm.Beta("school_mean", a, b, dims="school")
        _likelihood(design, example, school_mean)
    return model


MUTANTS = {
    "swapped_ab": "school-mean prior with alpha and beta swapped (the seed's authority model)",
    "shifted_district": "each school attached to the next district (an off-by-one index)",
}
"""Planted bugs in the ``partial`` model: SBC must flag every one."""


def _partial_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return _out(design, draws["pop_mean"], draws["district_mean"], draws["school_mean"])


def _build_partial_school(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model(coords=_coords(design)) as model:
        pop_mean = pm.Beta("pop_mean", *design.pop_mean_beta)
        c = design.combined_concentration
        shape, rate = gamma_shape_rate(c, c / 2)
        conc = pm.Gamma("school_conc", alpha=shape, beta=rate)
        school_mean = pm.Beta("school_mean", pop_mean * conc, (1 - pop_mean) * conc, dims="school")
        _likelihood(design, example, school_mean)
    return model


def _partial_school_estimands(
    draws: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    means = draws["school_mean"]
    return _out(design, draws["pop_mean"], _district_average(design, means), means)


def _build_none(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model(coords=_coords(design)) as model:
        c, m = design.marginal_concentration, design.pop_mean_mean
        school_mean = pm.Beta("school_mean", m * c, (1 - m) * c, dims="school")
        _likelihood(design, example, school_mean)
    return model


def _none_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    means = draws["school_mean"]
    return _out(design, means.mean(axis=-1), _district_average(design, means), means)


def _stan_data(design: Design, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The data block of ``districts_partial.stan`` (districts and schools from 1)."""
    return {
        "D": design.n_districts,
        "K": design.n_schools,
        "N": design.school.size,
        "district": design.district_of_school + 1,
        "school": design.school + 1,
        "score": np.asarray(data["score"], dtype=float),
        "pop_mean_beta": np.asarray(design.pop_mean_beta),
        "district_gamma": np.asarray(design.gamma("district_concentration")),
        "school_gamma": np.asarray(design.gamma("school_concentration")),
        "nu_gamma": np.asarray(design.gamma("nu")),
    }


# ---- Bambi models ----------------------------------------------------------------------


def _frame(design: Design, data: Mapping[str, np.ndarray]) -> pd.DataFrame:
    school = pd.Categorical.from_codes(design.school, categories=design.school_labels)
    district = pd.Categorical.from_codes(design.district, categories=design.district_labels)
    return pd.DataFrame(
        {"score": np.asarray(data["score"], dtype=float), "district": district, "school": school}
    )


def _kappa_prior(d: Design) -> tuple[str, dict[str, float]]:
    shape, rate = d.gamma("nu")
    return ("Gamma", {"alpha": shape, "beta": rate})


def _complete_priors(d: Design) -> dict[str, Any]:
    loc, sd = logit_beta_moments(d.pop_mean_mean, d.marginal_concentration)
    return {"Intercept": ("Normal", {"mu": loc, "sigma": sd}), "kappa": _kappa_prior(d)}


def _complete_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    common = expit(draws["Intercept"])
    return _out(
        design,
        common,
        np.repeat(common[..., None], design.n_districts, -1),
        np.repeat(common[..., None], design.n_schools, -1),
    )


def _group_prior(shape: float, rate: float) -> tuple[str, dict[str, Any]]:
    return ("Normal", {"mu": 0.0, "sigma": ("Gamma", {"alpha": shape, "beta": rate})})


def _partial_bambi_priors(d: Design) -> dict[str, Any]:
    loc, sd = logit_beta_moments(d.pop_mean_mean, d.pop_mean_concentration)
    # school means spread around their district mean, which is near pop_mean a priori
    district = logit_sd_gamma(d.pop_mean_beta, d.gamma("district_concentration"))
    school = logit_sd_gamma(d.pop_mean_beta, d.gamma("school_concentration"))
    return {
        "Intercept": ("Normal", {"mu": loc, "sigma": sd}),
        "1|district": _group_prior(*district),
        "1|school": _group_prior(*school),
        "kappa": _kappa_prior(d),
    }


def _partial_bambi_estimands(
    draws: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    intercept = draws["Intercept"]
    district_effect = draws["1|district"]
    district_sd, school_sd = draws["1|district_sigma"], draws["1|school_sigma"]
    district_loc = intercept[..., None] + district_effect
    school_mean = expit(district_loc[..., design.district_of_school] + draws["1|school"])
    district_mean = logistic_normal_mean(district_loc, school_sd[..., None])
    pop_mean = logistic_normal_mean(intercept, np.hypot(district_sd, school_sd))
    return _out(design, pop_mean, district_mean, school_mean)


def _bambi(formula: str, priors: Any) -> BambiModel:
    return BambiModel(formula=formula, frame=_frame, response="score", priors=priors, family="beta")


SCENARIO = Scenario(
    name="districts",
    description="test scores of students in schools in districts (beta, three levels)",
    settings=SETTINGS,
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "complete",
            "one mean for everyone (Bambi: score ~ 1, family beta)",
            _bambi("score ~ 1", _complete_priors),
            _complete_estimands,
        ),
        Model(
            "none",
            "independent school means, fixed prior (PyMC)",
            PyMCModel(_build_none, data=(), derive=score_sums),
            _none_estimands,
        ),
        Model(
            "partial_school",
            "school means pooled around pop_mean, districts ignored (PyMC)",
            PyMCModel(_build_partial_school, data=(), derive=score_sums),
            _partial_school_estimands,
        ),
        Model(
            "partial",
            "districts and schools nested: the generative process (PyMC)",
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
            "logit-normal nested effects (Bambi: score ~ 1 + (1|district) + (1|school))",
            _bambi("score ~ 1 + (1|district) + (1|school)", _partial_bambi_priors),
            _partial_bambi_estimands,
            # The intercept, district and school effects are strongly correlated a posteriori
            # (each level can absorb the others' shifts): on 20-30 data sets the diagonal
            # mass matrix needed 39 gradient evaluations per draw (median bulk ESS 670), the
            # low-rank one 14 (ESS 1546), every fit healthy either way.
            sampling={"adaptation": "low_rank"},
        ),
        Model(
            "partial_stan",
            "as partial, in Stan",
            StanModel(Path(__file__).with_name("stan") / "districts_partial.stan", _stan_data),
            _partial_estimands,
            extra="stan",
        ),
    ),
    check_settings=check_settings,
    data_statistics=(
        DataStatistic(
            "district_spread",
            "sd of the district averages of school sample means over the sd the spread of "
            "schools within districts alone gives them (about 1: pool the districts strongly)",
            _district_level,
        ),
        DataStatistic(
            "school_spread",
            "sd of school sample means about their district's over the sd within-school "
            "noise alone gives them (about 1: pool the schools strongly)",
            _school_level,
        ),
    ),
    reference_model="partial",
)
