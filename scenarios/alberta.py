"""Alberta diploma exams: school means on the real design (the seed's last example).

Only school aggregates are public: for school i, the number of writers ``n_i`` and the exam
average. As in the seed, the likelihood is for the school mean::

    school_mean_i ~ Normal(mu_i, sqrt(sigma2_i / n_i)),
    sigma2_i = mu_i (1 - mu_i) / (nu + 1)      # variance of Beta(mu_i nu, (1 - mu_i) nu)

The design is real: the schools of one course and year with at least ``min_students``
writers (Mathematics 30-1, 2016, 30 writers: 141 schools in 56 authorities), their sizes and
their authorities, read from the extract shipped with the package
(``scenarios/data/alberta-mathematics-30-1-2016.csv``) or from an official xlsx of any
edition passed with ``--data FILE``. SBC then simulates scores on exactly that structure.

Generative process (``partial`` shares exactly these priors)::

    pop_mean ~ Beta(pop_mean_a, pop_mean_b)                   # mean of school means
    kappa    ~ LogNormal(log kappa_median, kappa_log_sd)      # concentration of school means
    mu_i     ~ Beta(pop_mean kappa, (1 - pop_mean) kappa)
    nu       ~ LogNormal(log nu_median, nu_log_sd)            # concentration of student scores
    school_mean_i ~ Normal(mu_i, sqrt(mu_i (1 - mu_i) / (nu + 1) / n_i))

One student concentration ``nu`` is shared by all schools: with only school means observed,
a separate ``nu_i`` per school (as in the seed) is informed by nothing but its prior.

Estimands: ``pop_mean``, ``nu`` and ``school_mean[CODE]`` for every school (its ``mu_i``).
Test quantity: the log-likelihood of the school means (its ``sample`` draws replicated
means for the posterior predictive checks of ``sbc fit``). Data statistics: ``school_spread``
(the sd of the school means over the largest sd student-level noise could give them) and
``authority_spread`` (the sd of authority averages over the sd the spread of schools within
authorities alone gives them).

Posterior SBC (``sbc run alberta --posterior``) draws the parameters from ``partial``'s
posterior given the real school means, simulates one more mean per school from them, and
refits every model on the real plus the simulated means: the design then maps each of the
282 observed means to its school (:func:`augment`), which the models index through
``design.school`` (the identity otherwise, so prior SBC and ``sbc fit`` are unchanged).

Models (PyMC):

* ``none``: independent ``mu_i ~ Beta(3, 1)`` (the seed's unpooled prior); its
  ``pop_mean`` is the average of the school means. An approximation.
* ``partial``: exactly the generative process; calibrated.
* ``partial_authority``: schools pooled within authorities: authority means
  ``Beta(pop_mean kappa, (1 - pop_mean) kappa)``, school means
  ``Beta(a_j kappa_school, (1 - a_j) kappa_school)``. A richer model, not the generative one.
* ``mutant_swapped_ab`` (planted bug, the seed's authority model): the two shape parameters of
  the school-mean prior swapped. ``mutant_variance_as_sd``: ``sigma2_i / n_i`` used as the sd.

Stan twins (``scenarios/stan/alberta_*.stan``, the ``stan`` extra), run when named:
``none_stan``, ``partial_stan``, ``partial_authority_stan`` and the seed's slip
``mutant_swapped_ab_stan``, each with its PyMC twin's priors and sampler settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
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
    at_least_one,
    positive,
)
from sbc.stats.pooling import group_means, means_spread_ratio, spread_ratio
from scenarios.alberta_data import EXTRACT_COURSE, EXTRACT_YEAR, DataError, load, select

SETTINGS = (
    Setting(
        "data",
        "",
        "official diploma results xlsx or extract CSV (default: the shipped Math 30-1 2016)",
    ),
    Setting("course", "Mathematics 30-1", "diploma course"),
    Setting("year", 2016, "school year (its ending year)"),
    Setting(
        "min_students",
        30,
        "drop schools with fewer writers",
        at_least_one,
    ),
    Setting("pop_mean_a", 13.0, "Beta prior of the population mean: alpha", positive),
    Setting("pop_mean_b", 7.0, "Beta prior of the population mean: beta", positive),
    Setting("kappa_median", 40.0, "median concentration of school means", positive),
    Setting("kappa_log_sd", 0.5, "log-sd of that concentration", positive),
    Setting("nu_median", 5.0, "median concentration of student scores", positive),
    Setting("nu_log_sd", 0.3, "log-sd of that concentration", positive),
)


@dataclass(frozen=True)
class Design:
    """The real schools: codes, names, writers and authorities, plus the prior settings.

    ``school`` maps each observed mean to its school: one per school in SBC and ``sbc fit``
    (the identity), each school twice for posterior SBC (:func:`augment`: the real means,
    then a simulated block).
    """

    codes: tuple[str, ...]
    names: tuple[str, ...]
    writers: np.ndarray
    observed: np.ndarray
    authority: np.ndarray
    authorities: tuple[str, ...]
    pop_mean_a: float
    pop_mean_b: float
    kappa_median: float
    kappa_log_sd: float
    nu_median: float
    nu_log_sd: float
    school: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.school is None:
            object.__setattr__(self, "school", np.arange(len(self.codes)))

    @property
    def n(self) -> int:
        """Number of schools."""
        return len(self.codes)

    @property
    def obs_writers(self) -> np.ndarray:
        """Writers behind each observed mean."""
        return self.writers[self.school]


def augment(design: Design) -> Design:
    """The real school means followed by one more mean per school (posterior SBC)."""
    return replace(design, school=np.concatenate([design.school, np.arange(design.n)]))


def _schools(settings: Mapping[str, Any]) -> Any:
    """The selected schools' rows (a DataFrame)."""
    return select(
        load(settings["data"]), settings["course"], settings["year"], settings["min_students"]
    )


def check_settings(settings: Mapping[str, Any]) -> str | None:
    """Refuse a missing or unreadable data file, or a selection with no school."""
    try:
        _schools(settings)
    except DataError as exc:
        if settings["data"]:
            return str(exc)
        return (
            f"{exc}; the shipped extract holds {EXTRACT_COURSE} {EXTRACT_YEAR} only: "
            "give the official diploma results xlsx with --data FILE"
        )
    return None


def design(settings: Mapping[str, Any]) -> Design:
    """Read the selected schools (from the cached extract)."""
    rows = _schools(settings)
    codes = rows["authority_code"].astype(str)
    authorities = tuple(dict.fromkeys(codes))
    return Design(
        codes=tuple(rows["school_code"].astype(str)),
        names=tuple(rows["school_name"].astype(str)),
        writers=rows["writers"].to_numpy(float),
        observed=rows["exam_mean"].to_numpy(float) / 100,
        authority=np.array([authorities.index(c) for c in codes]),
        authorities=authorities,
        **{
            k: float(settings[k])
            for k in (
                "pop_mean_a",
                "pop_mean_b",
                "kappa_median",
                "kappa_log_sd",
                "nu_median",
                "nu_log_sd",
            )
        },
    )


def estimands(design: Design) -> tuple[str, ...]:
    """Population mean, student concentration, and every school's mean."""
    return ("pop_mean", "nu", *(f"school_mean[{c}]" for c in design.codes))


def _sd(mu: np.ndarray, nu: np.ndarray, writers: np.ndarray) -> np.ndarray:
    return np.sqrt(mu * (1 - mu) / (nu + 1) / writers)


def prior(design: Design, rng: np.random.Generator) -> dict[str, Any]:
    """Draw the population and school parameters (named as in the ``partial`` model)."""
    pop_mean = rng.beta(design.pop_mean_a, design.pop_mean_b)
    kappa = rng.lognormal(np.log(design.kappa_median), design.kappa_log_sd)
    mu = np.clip(rng.beta(pop_mean * kappa, (1 - pop_mean) * kappa, size=design.n), 1e-9, 1 - 1e-9)
    nu = rng.lognormal(np.log(design.nu_median), design.nu_log_sd)
    return {"pop_mean": pop_mean, "kappa": kappa, "mu": mu, "nu": nu}


def generate(design: Design, params: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """Each observed school mean given the parameters, and the estimands' true values."""
    mu = np.asarray(params["mu"], dtype=float)
    nu = float(params["nu"])
    school_mean = rng.normal(mu[design.school], _sd(mu[design.school], nu, design.obs_writers))
    truth = {"pop_mean": float(params["pop_mean"]), "nu": nu} | {
        f"school_mean[{c}]": float(m) for c, m in zip(design.codes, mu, strict=True)
    }
    return Simulation(truth, {"school_mean": school_mean})


def new_schools(
    design: Design, params: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """The parameters with new schools' means from the same population (held-out schools)."""
    a, b = params["pop_mean"] * params["kappa"], (1 - params["pop_mean"]) * params["kappa"]
    return {**params, "mu": np.clip(rng.beta(a, b, size=design.n), 1e-9, 1 - 1e-9)}


simulate = Process(prior, generate, new_groups=new_schools)
"""Parameters from the prior, then the school means (one random stream)."""


def _school_spread(design: Design, data: Mapping[str, np.ndarray]) -> float:
    """Spread of school means against the most noise student scores could give them."""
    means, _ = group_means(data["school_mean"], design.school)
    writers = np.bincount(design.school, weights=design.obs_writers)
    level = float(np.mean(means))
    return means_spread_ratio(means, level * (1 - level) / writers)


def _authority_spread(design: Design, data: Mapping[str, np.ndarray]) -> float:
    means, _ = group_means(data["school_mean"], design.school)
    return spread_ratio(means, design.authority)


def real_data(design: Design) -> dict[str, np.ndarray]:
    """The real school means, as a data set the models can be fitted to."""
    return {"school_mean": design.observed}


def observed(design: Design) -> pd.DataFrame:
    """Each school's observed exam average (as a proportion), weighted by its writers."""
    return pd.DataFrame(
        {
            "estimand": [f"school_mean[{c}]" for c in design.codes],
            "label": [f"{n} ({c})" for n, c in zip(design.names, design.codes, strict=True)],
            "observed": design.observed,
            "weight": design.writers,
        }
    )


def _build(design: Design, example: Mapping[str, np.ndarray], kind: str) -> Any:
    import pymc as pm

    with pm.Model(
        coords={"school": list(design.codes), "authority": list(design.authorities)}
    ) as model:
        school_mean = pm.Data("school_mean", example["school_mean"])
        nu = pm.LogNormal("nu", np.log(design.nu_median), design.nu_log_sd)
        if kind == "none":
            mu = pm.Beta("mu", 3.0, 1.0, dims="school")
        else:
            pop_mean = pm.Beta("pop_mean", design.pop_mean_a, design.pop_mean_b)
            kappa = pm.LogNormal("kappa", np.log(design.kappa_median), design.kappa_log_sd)
            if kind == "partial_authority":
                kappa_school = pm.LogNormal(
                    "kappa_school", np.log(2 * design.kappa_median), design.kappa_log_sd
                )
                a = pm.Beta(
                    "authority_mean", pop_mean * kappa, (1 - pop_mean) * kappa, dims="authority"
                )
                centre = a[design.authority]
                mu = pm.Beta(
                    "mu", centre * kappa_school, (1 - centre) * kappa_school, dims="school"
                )
            elif kind == "mutant_swapped_ab":
                mu = pm.Beta("mu", (1 - pop_mean) * kappa, pop_mean * kappa, dims="school")
            else:
                mu = pm.Beta("mu", pop_mean * kappa, (1 - pop_mean) * kappa, dims="school")
        mean = mu[design.school]
        variance = mean * (1 - mean) / (nu + 1) / design.obs_writers
        sd = variance if kind == "mutant_variance_as_sd" else pm.math.sqrt(variance)
        pm.Normal("obs", mean, sd, observed=school_mean)
    return model


def _estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    mu = draws["mu"]
    out = {
        "pop_mean": draws["pop_mean"] if "pop_mean" in draws else mu.mean(axis=-1),
        "nu": draws["nu"],
    }
    return out | {f"school_mean[{c}]": mu[..., i] for i, c in enumerate(design.codes)}


def _loglik(
    params: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], design: Design
) -> np.ndarray:
    mu = np.stack([params[f"school_mean[{c}]"] for c in design.codes], axis=-1)[..., design.school]
    sd = _sd(mu, np.asarray(params["nu"])[..., None], design.obs_writers)
    z = (data["school_mean"] - mu) / sd
    return -0.5 * z**2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def _sample(
    params: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """School means drawn at each of a batch of parameter values: ``(n, observed means)``."""
    mu = np.stack([params[f"school_mean[{c}]"] for c in design.codes], axis=-1)[..., design.school]
    sd = _sd(mu, np.asarray(params["nu"], dtype=float)[..., None], design.obs_writers)
    return {"school_mean": rng.normal(mu, sd)}


def _beta(rng: np.random.Generator, mean: np.ndarray, concentration: np.ndarray) -> np.ndarray:
    """Beta draws of the given means and concentrations, kept off 0 and 1 as the simulator."""
    draws = rng.beta(mean * concentration, (1 - mean) * concentration)
    return np.clip(draws, 1e-9, 1 - 1e-9)


def _new_schools(
    draws: Mapping[str, np.ndarray], design: Design, rng: np.random.Generator, kind: str
) -> dict[str, np.ndarray]:
    """Estimand draws for new schools from the population each model believes in.

    ``none`` has no population: a new school's mean comes from its fixed ``Beta(3, 1)``
    prior; ``partial`` draws it from ``Beta(pop_mean kappa, (1 - pop_mean) kappa)``;
    ``partial_authority`` draws new authority means first, then the schools within them.
    """
    nu = np.asarray(draws["nu"])
    shape = (*nu.shape, design.n)
    if kind == "none":
        return _estimands({"mu": rng.beta(3.0, 1.0, size=shape), "nu": nu}, design)
    pop_mean, kappa = draws["pop_mean"][..., None], draws["kappa"][..., None]
    if kind == "partial_authority":
        centre = np.broadcast_to(pop_mean, (*nu.shape, len(design.authorities)))
        authority = _beta(rng, centre, kappa)[..., design.authority]
        mu = _beta(rng, authority, draws["kappa_school"][..., None])
    else:
        mu = _beta(rng, np.broadcast_to(pop_mean, shape), kappa)
    return _estimands({"mu": mu, "nu": nu, "pop_mean": draws["pop_mean"]}, design)


def _model(
    kind: str, description: str, mutant: bool = False, sampling: dict | None = None
) -> Model:
    return Model(
        kind,
        description,
        PyMCModel(partial(_build, kind=kind), data=("school_mean",)),
        _estimands,
        mutant,
        sampling=sampling or {},
        new_groups=None if mutant else partial(_new_schools, kind=kind),
    )


def _stan_data(design: Design, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The data block every Alberta Stan program reads (schools, authorities from 1)."""
    priors = ("pop_mean_a", "pop_mean_b", "kappa_median", "kappa_log_sd", "nu_median")
    return {
        "S": design.n,
        "A": len(design.authorities),
        "M": design.school.size,
        "school": design.school + 1,
        "authority": design.authority + 1,
        "school_mean": np.asarray(data["school_mean"], dtype=float),
        "writers": design.obs_writers,
        "nu_log_sd": design.nu_log_sd,
    } | {k: getattr(design, k) for k in priors}


def _stan_model(kind: str, description: str, mutant: bool = False, sampling: Any = None) -> Model:
    return Model(
        f"{kind}_stan",
        f"{description}, in Stan",
        StanModel(Path(__file__).with_name("stan") / f"alberta_{kind}.stan", _stan_data),
        _estimands,
        mutant,
        sampling=sampling or {},
        extra="stan",
        new_groups=None if mutant else partial(_new_schools, kind=kind),
    )


LONGER = {"draws": 2000}
"""The correct model's sampler settings: the student concentration ``nu`` mixes slowly (it
and the school-mean concentration trade off as sources of the schools' spread). At 2 x 1000
draws its bulk ESS was 170-310 in every fit (the other 142 estimands above 1400; 99.1% of
(fit, estimand) pairs healthy); at 2 x 2000, 420-600 and every pair healthy in 10 fits. The
low-rank mass matrix did not help (ESS 310)."""


SCENARIO = Scenario(
    name="alberta",
    description="Alberta diploma exam school means on the real design (Math 30-1, 2016 shipped)",
    settings=SETTINGS,
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        _model("none", "independent school means, Beta(3, 1) prior (the seed's unpooled model)"),
        _model(
            "partial", "school means from a shared, learned Beta prior (exact)", sampling=LONGER
        ),
        _model("partial_authority", "school means pooled within authorities (three levels)"),
        _model(
            "mutant_swapped_ab",
            "school-mean prior with alpha and beta swapped (the seed's slip)",
            True,
        ),
        _model("mutant_variance_as_sd", "sigma2 / n used as the sd of a school mean", True),
        _stan_model("none", "as none"),
        _stan_model("partial", "as partial", sampling=LONGER),
        _stan_model("partial_authority", "as partial_authority"),
        _stan_model("mutant_swapped_ab", "as mutant_swapped_ab (the seed's slip)", True),
    ),
    check_settings=check_settings,
    likelihood=Likelihood(_loglik, sample=_sample),
    real_data=real_data,
    observed=observed,
    data_statistics=(
        DataStatistic(
            "school_spread",
            "sd of the school means over the sd student-level noise could give them at most "
            "(variance p(1 - p) / writers; small: pool the schools strongly)",
            _school_spread,
        ),
        DataStatistic(
            "authority_spread",
            "sd of the authority averages of school means over the sd the spread of schools "
            "within authorities alone gives them (about 1: pool the authorities strongly)",
            _authority_spread,
        ),
    ),
    augment=augment,
    reference_model="partial",
)
