"""Heights of people within countries (the seed's first example).

Generative process (the ``partial`` models share exactly these priors)::

    grand_mean      ~ Normal(mean_location, mean_scale)          # cm
    between_sd      ~ HalfNormal(between_sd_scale)               # sd of country means
    country_mean[j] = grand_mean + between_sd * z[j],  z[j] ~ Normal(0, 1)
    sigma           ~ HalfNormal(within_sd_scale)                # sd within a country
    height[i]       ~ Normal(country_mean[country[i]], sigma)

with ``n_groups`` countries of ``n_per_group`` people each (seed: 4 x 20, around 176 cm).

Estimands: ``grand_mean``, ``sigma`` and ``country_mean[j]`` for j = 1..n_groups.
Test quantities: the log-likelihood of the heights (``loglik``, and per country
``loglik[cj]``) and the spread of the country means (``country_mean_sd``).
Data statistic: ``between_within``, the sd of the country sample means over the sd that
within-country noise alone would give them (the square root of the one-way ANOVA F): near
1 the data call for strong pooling, large for little.

Models:

* ``complete`` (Bambi, ``height ~ 1``): one mean for everyone; every country gets the
  common mean, and its ``sigma`` absorbs the between-country spread. An approximation a
  user might try: it is not calibrated for country means or ``sigma``.
* ``none`` (Bambi, ``height ~ 0 + country``): independent country means with a fixed,
  wide prior ``Normal(mean_location, mean_scale + between_sd_scale)``; its ``grand_mean`` is
  the average of the country means. Not the generative process.
* ``partial`` (PyMC): exactly the generative process, with the grand mean and the country
  means integrated out of the likelihood and drawn from their exact conditional posteriors
  (no funnel to sample: see :func:`_build_partial`); calibrated, and healthy in 99% of fits.
* ``partial_centred`` (PyMC, centred ``country_mean ~ Normal(grand_mean, between_sd)``): the
  same model, so calibrated in theory, kept to measure what centring costs in divergences.
* ``partial_bambi`` (Bambi, ``height ~ 1 + (1|country)``, non-centred by Bambi): exactly
  the generative process written as a formula; calibrated, but its non-centred geometry
  needs 4 longer chains and small steps (its own sampler settings).
* ``partial_eb`` (PyMC): empirical Bayes, a habit: ``partial`` with ``between_sd`` fixed
  at its method-of-moments estimate from the data (:func:`eb_between_sd`, fed in through
  ``PyMCModel(derive=...)``), which is 0 whenever the country means spread no more than
  noise would make them. It ignores the uncertainty of ``between_sd`` and pools completely
  when the data show little between-country spread: over-confident there, close to
  ``partial`` where the countries clearly differ. Its miscalibration sits in one part of
  the data space, which the stratified verdict finds (see ``between_within`` below).
* ``mutant_*``: the ``partial`` model with one planted bug each (:data:`MUTANTS`), left
  out of default runs; ``sbc mutants heights`` checks that SBC flags every one.
* ``*_stan``: Stan twins (``scenarios/stan/heights_*.stan``, the ``stan`` extra), run when
  named: ``complete_stan``, ``none_stan`` and ``partial_stan`` (the same priors as their
  Bambi and PyMC twins, ``partial_stan`` with the same integrated-out levels), and
  ``mutant_unused_hyperparameter_stan``, the seed's slip as the seed wrote it in Stan.
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
    Likelihood,
    Model,
    Process,
    Scenario,
    Setting,
    Simulation,
    at_least_one,
    mutant_models,
    positive,
)
from sbc.stats.pooling import group_means, spread_ratio, within_variance

SETTINGS = (
    Setting("n_groups", 4, "number of countries", at_least_one),
    Setting("n_per_group", 20, "people per country", at_least_one),
    Setting("mean_location", 176.0, "prior mean of the grand mean (cm)"),
    Setting("mean_scale", 5.0, "prior sd of the grand mean (cm)", positive),
    Setting("between_sd_scale", 8.0, "half-normal scale of the between-country sd (cm)", positive),
    Setting("within_sd_scale", 10.0, "half-normal scale of the within-country sd (cm)", positive),
)


@dataclass(frozen=True)
class Design:
    """Country membership of every person and the generative hyperparameters."""

    n_groups: int
    n_per_group: int
    mean_location: float
    mean_scale: float
    between_sd_scale: float
    within_sd_scale: float

    @property
    def country(self) -> np.ndarray:
        """Country index (0-based) of every person, grouped by country."""
        return np.repeat(np.arange(self.n_groups), self.n_per_group)

    @property
    def labels(self) -> list[str]:
        """Country labels in index order, zero-padded (``c01``, ...) so they also sort in it.

        Bambi orders group levels by their text even for an ordered categorical, so with
        ten or more countries ``c10`` would come before ``c2`` and country means would be
        read off the wrong group.
        """
        width = len(str(self.n_groups))
        return [f"c{j + 1:0{width}d}" for j in range(self.n_groups)]


def design(settings: Mapping[str, Any]) -> Design:
    """Build the design from resolved settings."""
    return Design(**settings)


def estimands(design: Design) -> tuple[str, ...]:
    """Grand mean, within-country sd and every country's mean."""
    return ("grand_mean", "sigma", *(f"country_mean[{j + 1}]" for j in range(design.n_groups)))


def prior(design: Design, rng: np.random.Generator) -> dict[str, Any]:
    """Draw the parameters from the prior (named as in the ``partial`` model)."""
    grand_mean = rng.normal(design.mean_location, design.mean_scale)
    between_sd = abs(rng.normal(0.0, design.between_sd_scale))
    country_mean = grand_mean + between_sd * rng.normal(size=design.n_groups)
    sigma = abs(rng.normal(0.0, design.within_sd_scale))
    return {
        "grand_mean": grand_mean,
        "between_sd": between_sd,
        "country_mean": country_mean,
        "sigma": sigma,
    }


def generate(design: Design, params: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """The heights given the parameters, and the estimands' true values."""
    country_mean = np.asarray(params["country_mean"], dtype=float)
    sigma = float(params["sigma"])
    height = rng.normal(country_mean[design.country], sigma)
    truth = {"grand_mean": float(params["grand_mean"]), "sigma": sigma}
    truth |= {f"country_mean[{j + 1}]": float(m) for j, m in enumerate(country_mean)}
    return Simulation(truth=truth, data={"height": height})


def new_countries(
    design: Design, params: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """The parameters with new country means from the same population (held-out countries)."""
    fresh = params["grand_mean"] + params["between_sd"] * rng.normal(size=design.n_groups)
    return {**params, "country_mean": fresh}


simulate = Process(prior, generate, new_groups=new_countries)
"""Parameters from the prior, then the heights (one random stream)."""


def _by_country(
    design: Design, grand_mean: np.ndarray, country_mean: np.ndarray, sigma: np.ndarray
) -> dict[str, np.ndarray]:
    """Estimand draws from ``(chain, draw)`` grand mean and sigma and ``(chain, draw, J)`` means."""
    out = {"grand_mean": grand_mean, "sigma": sigma}
    out |= {f"country_mean[{j + 1}]": country_mean[..., j] for j in range(design.n_groups)}
    return out


# ---- PyMC models -----------------------------------------------------------------------


def _build_partial(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    """The generative model, with the normal levels integrated out where they can be.

    Given ``between_sd`` and ``sigma``, the country sample means are jointly normal around
    the prior mean (covariance ``diag(between_sd^2 + sigma^2 / n) + mean_scale^2``, all
    countries sharing the grand mean) and the within-country sums of squares carry ``sigma``
    alone, so the sampler explores only ``between_sd`` and ``sigma``: two parameters and no
    funnel. The grand mean and then the country means are drawn from their exact normal
    conditional posteriors, ``m + s * e`` with ``e ~ Normal(0, 1)`` (the likelihood does not
    involve ``e``), so the joint posterior is exactly the written-out hierarchy's.

    Measured on 200 data sets each (2 x 1000 draws, target_accept 0.95): 99% of fits healthy,
    none divergent, median bulk ESS 2605, 6.9 gradient evaluations per draw. The written-out
    forms: non-centred R-hat > 1.01 in 33% of fits (bulk ESS 380, 22 evaluations per draw),
    centred 45% of fits divergent; with only the country means integrated out, 95% healthy
    (the grand mean and ``between_sd`` still form a funnel; 9.7 evaluations per draw at 0.97).
    """
    import pymc as pm
    import pytensor.tensor as pt

    member = np.eye(design.n_groups)[design.country].T  # (country, person)
    n = member.sum(axis=1)
    m0, b = design.mean_location, design.mean_scale**2
    with pm.Model(coords={"country": design.labels}) as model:
        height = pm.Data("height", example["height"])
        between_sd = pm.HalfNormal("between_sd", design.between_sd_scale)
        sigma = pm.HalfNormal("sigma", design.within_sd_scale)
        sample_mean = pt.dot(member, height) / n
        squares = pt.dot(member, (height - sample_mean[design.country]) ** 2)
        d = between_sd**2 + sigma**2 / n  # variance of a country's sample mean given grand_mean
        r = sample_mean - m0
        s1 = 1 + b * pt.sum(1 / d)
        logdet = pt.sum(pt.log(d)) + pt.log(s1)
        quad = pt.sum(r**2 / d) - b * pt.sum(r / d) ** 2 / s1
        pm.Potential(
            "obs",
            -0.5 * (logdet + quad)
            + pt.sum(-(n - 1) * pt.log(sigma) - squares / (2 * sigma**2))
            - 0.5 * n.sum() * np.log(2 * np.pi)
            - 0.5 * np.log(n).sum(),
        )
        precision = 1 / b + pt.sum(1 / d)
        e0 = pm.Normal("grand_mean_e", 0.0, 1.0)
        grand_mean = pm.Deterministic(
            "grand_mean", (m0 / b + pt.sum(sample_mean / d)) / precision + e0 / pt.sqrt(precision)
        )
        e = pm.Normal("country_mean_e", 0.0, 1.0, dims="country")
        data_weight = n * between_sd**2 / (n * between_sd**2 + sigma**2)
        centre = grand_mean + data_weight * (sample_mean - grand_mean)
        spread = between_sd * sigma / pt.sqrt(n * between_sd**2 + sigma**2)
        pm.Deterministic("country_mean", centre + spread * e, dims="country")
    return model


def _build_partial_centred(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model(coords={"country": design.labels}) as model:
        height = pm.Data("height", example["height"])
        grand_mean = pm.Normal("grand_mean", design.mean_location, design.mean_scale)
        between_sd = pm.HalfNormal("between_sd", design.between_sd_scale)
        country_mean = pm.Normal("country_mean", grand_mean, between_sd, dims="country")
        sigma = pm.HalfNormal("sigma", design.within_sd_scale)
        pm.Normal("obs", country_mean[design.country], sigma, observed=height)
    return model


def eb_between_sd(design: Design, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Method-of-moments estimate of the between-country sd from one data set.

    ``sqrt(max(0, var(country sample means) - s_w^2 / n))``: 0 whenever the country means
    spread no more than within-country noise alone would make them (then ``partial_eb``
    pools the countries completely).
    """
    means, counts = group_means(data["height"], design.country)
    if means.size < 2:
        return {"between_sd_hat": np.asarray(0.0)}
    noise = within_variance(data["height"], design.country) / counts
    tau2 = np.var(means, ddof=1) - np.mean(noise)
    return {"between_sd_hat": np.asarray(np.sqrt(tau2) if tau2 > 0 else 0.0)}


def _build_eb(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    """``partial`` with the between-country sd fixed at the data's estimate (a plug-in)."""
    import pymc as pm

    with pm.Model(coords={"country": design.labels}) as model:
        height = pm.Data("height", example["height"])
        between_sd = pm.Data("between_sd_hat", example["between_sd_hat"])
        grand_mean = pm.Normal("grand_mean", design.mean_location, design.mean_scale)
        z = pm.Normal("z", 0.0, 1.0, dims="country")
        country_mean = pm.Deterministic("country_mean", grand_mean + between_sd * z, dims="country")
        sigma = pm.HalfNormal("sigma", design.within_sd_scale)
        pm.Normal("obs", country_mean[design.country], sigma, observed=height)
    return model


def _build_mutant(design: Design, example: Mapping[str, np.ndarray], bug: str) -> Any:
    """The non-centred ``partial`` model with one planted bug (see :data:`MUTANTS`)."""
    import pymc as pm

    between_scale = design.between_sd_scale / (8 if bug == "prior_scale" else 1)
    with pm.Model(coords={"country": design.labels}) as model:
        height = pm.Data("height", example["height"])
        grand_mean = pm.Normal("grand_mean", design.mean_location, design.mean_scale)
        between_sd = pm.HalfNormal("between_sd", between_scale)
        if bug == "unused_hyperparameter":  # the seed's slip: sd fixed at 10, between_sd unused
            country_mean = pm.Normal("country_mean", grand_mean, 10.0, dims="country")
        else:
            z = pm.Normal("z", 0.0, 1.0, dims="country")
            country_mean = pm.Deterministic(
                "country_mean", grand_mean + between_sd * z, dims="country"
            )
        sigma = pm.HalfNormal("sigma", design.within_sd_scale)
        index = (design.country + 1) % design.n_groups if bug == "shifted_index" else design.country
        scale_obs = sigma**2 if bug == "variance_as_sd" else sigma
        pm.Normal("obs", country_mean[index], scale_obs, observed=height)
    return model


MUTANTS = {
    "unused_hyperparameter": "country means ~ Normal(grand_mean, 10): between_sd declared, "
    "never used (the seed's heights model)",
    "variance_as_sd": "likelihood scale sigma**2 where sigma belongs (variance passed as sd)",
    "prior_scale": "between-country sd prior scale 8 times smaller than the simulator's",
    "shifted_index": "each person attached to the next country (an off-by-one group index)",
}
"""Planted bugs in the ``partial`` model: SBC must flag every one."""


def _partial_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return _by_country(design, draws["grand_mean"], draws["country_mean"], draws["sigma"])


# ---- Bambi models ----------------------------------------------------------------------


def _frame(design: Design, data: Mapping[str, np.ndarray]) -> pd.DataFrame:
    country = pd.Categorical.from_codes(design.country, categories=design.labels)
    return pd.DataFrame({"height": np.asarray(data["height"]), "country": country})


def _complete_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    common = draws["Intercept"]
    return _by_country(
        design, common, np.repeat(common[..., None], design.n_groups, -1), draws["sigma"]
    )


def _none_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    means = draws["country"]
    return _by_country(design, means.mean(axis=-1), means, draws["sigma"])


def _partial_bambi_estimands(
    draws: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    intercept = draws["Intercept"]
    return _by_country(design, intercept, intercept[..., None] + draws["1|country"], draws["sigma"])


# ---- Stan models ------------------------------------------------------------------------


def _stan_data(design: Design, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The data block every heights Stan program reads (countries numbered from 1)."""
    return {
        "J": design.n_groups,
        "N": design.n_groups * design.n_per_group,
        "country": design.country + 1,
        "height": np.asarray(data["height"], dtype=float),
        "mean_location": design.mean_location,
        "mean_scale": design.mean_scale,
        "between_sd_scale": design.between_sd_scale,
        "within_sd_scale": design.within_sd_scale,
    }


def _stan(program: str) -> StanModel:
    return StanModel(Path(__file__).with_name("stan") / f"heights_{program}.stan", _stan_data)


def _none_stan_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    means = draws["country_mean"]
    return _by_country(design, means.mean(axis=-1), means, draws["sigma"])


def _complete_priors(d: Design) -> dict[str, Any]:
    return {
        "Intercept": ("Normal", {"mu": d.mean_location, "sigma": d.mean_scale}),
        "sigma": ("HalfNormal", {"sigma": d.within_sd_scale + d.between_sd_scale}),
    }


def _none_priors(d: Design) -> dict[str, Any]:
    return {
        "country": ("Normal", {"mu": d.mean_location, "sigma": d.mean_scale + d.between_sd_scale}),
        "sigma": ("HalfNormal", {"sigma": d.within_sd_scale}),
    }


def _partial_priors(d: Design) -> dict[str, Any]:
    return {
        "Intercept": ("Normal", {"mu": d.mean_location, "sigma": d.mean_scale}),
        "1|country": (
            "Normal",
            {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": d.between_sd_scale})},
        ),
        "sigma": ("HalfNormal", {"sigma": d.within_sd_scale}),
    }


def _bambi(formula: str, priors: Any) -> BambiModel:
    return BambiModel(formula=formula, frame=_frame, response="height", priors=priors)


def _country_means(params: Mapping[str, np.ndarray], design: Design, axis: int = -1) -> np.ndarray:
    """Every country's mean, stacked along ``axis`` (the last: countries after the draws)."""
    return np.stack([params[f"country_mean[{j + 1}]"] for j in range(design.n_groups)], axis=axis)


def _loglik(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Design
) -> np.ndarray:
    """Normal log density of every height given the country means and sigma.

    ``-0.5 z**2 - log(sigma) - log(2 pi) / 2`` evaluated in place in one array (the same
    operations in the same order, so the same bits): it runs at every posterior draw of
    every fit (2000 draws x 80 people: 0.32 against 0.36 ms).
    """
    out = _country_means(params, design)[..., design.country]  # a new array: fancy index
    np.subtract(data["height"], out, out=out)
    sigma = np.asarray(params["sigma"])[..., None]
    out /= sigma
    np.square(out, out=out)
    out *= -0.5
    out -= np.log(sigma)
    out -= 0.5 * np.log(2 * np.pi)
    return out


def _mean(params: Mapping[str, np.ndarray], design: Design) -> np.ndarray:
    """Expected height of every person: their country's mean."""
    return _country_means(params, design)[..., design.country]


def _sample(
    params: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Heights drawn at each of a batch of parameter values: ``(n, people)``."""
    sigma = np.asarray(params["sigma"], dtype=float)[..., None]
    return {"height": rng.normal(_mean(params, design), sigma)}


def _new_countries_shape(draws: Mapping[str, np.ndarray], design: Design) -> tuple[int, ...]:
    return (*np.shape(draws["sigma"]), design.n_groups)


def _partial_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """New countries from the posterior population: ``grand_mean + between_sd * z``."""
    z = rng.normal(size=_new_countries_shape(draws, design))
    means = draws["grand_mean"][..., None] + draws["between_sd"][..., None] * z
    return _by_country(design, draws["grand_mean"], means, draws["sigma"])


def _partial_bambi_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    z = rng.normal(size=_new_countries_shape(draws, design))
    intercept = draws["Intercept"]
    means = intercept[..., None] + draws["1|country_sigma"][..., None] * z
    return _by_country(design, intercept, means, draws["sigma"])


def _complete_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Complete pooling predicts a new country as every other: the common mean."""
    return _complete_estimands(draws, design)


def _none_new(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """No pooling learns nothing about a new country: its mean comes from the fixed prior."""
    means = rng.normal(
        design.mean_location,
        design.mean_scale + design.between_sd_scale,
        size=_new_countries_shape(draws, design),
    )
    return _by_country(design, means.mean(axis=-1), means, draws["sigma"])


def _groups(design: Design) -> tuple[list[str], np.ndarray]:
    return design.labels, design.country


def _spread(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Design
) -> dict[str, np.ndarray]:
    """Sample sd of the country means (left out for a single country).

    The means stacked along the first axis, so that NumPy reduces across countries one
    whole batch at a time: 0.02 against 0.10 ms along the last (2000 draws x 4 countries;
    the same bits up to 7 countries, within rounding beyond).
    """
    if design.n_groups < 2:
        return {}
    return {"country_mean_sd": _country_means(params, design, axis=0).std(axis=0, ddof=1)}


def _between_within(design: Design, data: Mapping[str, np.ndarray]) -> float:
    return spread_ratio(data["height"], design.country)


SCENARIO = Scenario(
    name="heights",
    description="heights of people within countries (normal, two levels)",
    settings=SETTINGS,
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "complete",
            "one mean for everyone (Bambi: height ~ 1)",
            _bambi("height ~ 1", _complete_priors),
            _complete_estimands,
            new_groups=_complete_new,
        ),
        Model(
            "none",
            "independent country means, fixed prior (Bambi: height ~ 0 + country)",
            _bambi("height ~ 0 + country", _none_priors),
            _none_estimands,
            new_groups=_none_new,
        ),
        Model(
            "partial",
            "country means from a learned prior, normal levels integrated out (PyMC)",
            PyMCModel(_build_partial, data=("height",)),
            _partial_estimands,
            new_groups=_partial_new,
        ),
        Model(
            "partial_centred",
            "as partial, written out and centred (PyMC)",
            PyMCModel(_build_partial_centred, data=("height",)),
            _partial_estimands,
            new_groups=_partial_new,
            note="kept to show what centring costs: with 4 countries the posterior of "
            "between_sd reaches near zero, where the centred country means form a funnel; "
            "divergent fits are expected here (45% of 1000), not a sign of a bug",
        ),
        Model(
            "partial_bambi",
            "as partial, as a formula (Bambi: height ~ 1 + (1|country), non-centred)",
            _bambi("height ~ 1 + (1|country)", _partial_priors),
            _partial_bambi_estimands,
            new_groups=_partial_bambi_new,
            # Bambi writes the country effects non-centred; with informative countries and
            # 4 of them that meets an inverted funnel. 100 data sets each: 2 x 1000 draws at
            # 0.95 left 33% of fits with R-hat > 1.01 and 7% divergent; at 0.99 none
            # divergent but 58% unhealthy (median bulk ESS 371); 4 x 2000 at 0.99: 96%
            # healthy, 5% divergent; 4 x 1500 at 0.995 (+500 warm-up): 96% healthy, 2%
            # divergent, 44 gradient evaluations per draw (the report's cost columns show it).
            sampling={"chains": 4, "tune": 500, "draws": 1500, "target_accept": 0.995},
        ),
        Model(
            "partial_eb",
            "as partial, between-country sd fixed at its moment estimate (empirical Bayes, PyMC)",
            PyMCModel(_build_eb, data=("height",), derive=eb_between_sd),
            _partial_estimands,
        ),
        *mutant_models(
            MUTANTS,
            lambda bug: PyMCModel(partial(_build_mutant, bug=bug), data=("height",)),
            _partial_estimands,
        ),
        Model(
            "complete_stan",
            "as complete, in Stan",
            _stan("complete"),
            _complete_estimands,
            new_groups=_complete_new,
            extra="stan",
        ),
        Model(
            "none_stan",
            "as none, in Stan",
            _stan("none"),
            _none_stan_estimands,
            new_groups=_none_new,
            extra="stan",
        ),
        Model(
            "partial_stan",
            "as partial (normal levels integrated out), in Stan",
            _stan("partial"),
            _partial_estimands,
            new_groups=_partial_new,
            extra="stan",
        ),
        Model(
            "mutant_unused_hyperparameter_stan",
            f"{MUTANTS['unused_hyperparameter']}, in Stan",
            _stan("mutant_unused_hyperparameter"),
            _partial_estimands,
            mutant=True,
            extra="stan",
        ),
    ),
    likelihood=Likelihood(_loglik, groups=_groups, sample=_sample, mean=_mean, response="height"),
    test_quantities=_spread,
    data_statistics=(
        DataStatistic(
            "between_within",
            "sd of the country sample means over the sd within-country noise alone gives them "
            "(about 1: the data call for strong pooling; large: for little)",
            _between_within,
        ),
    ),
    reference_model="partial",
)
