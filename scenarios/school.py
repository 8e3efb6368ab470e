"""Test scores of the students of one school (the seed's second example, first step).

Scores are proportions in (0, 1), drawn from a Beta distribution in the mean / "sample
size" parameterisation ``Beta(mu * nu, (1 - mu) * nu)``: ``mu`` is the mean score and ``nu``
the concentration (larger ``nu``, less spread; it is *not* the number of students).

Generative process (the ``exact`` model shares exactly these priors)::

    mu        ~ Beta(mu_mean * mu_concentration, (1 - mu_mean) * mu_concentration)
    nu        ~ Gamma(mean nu_mean, sd nu_sd)         # shape (nu_mean / nu_sd)^2
    score[i]  ~ Beta(mu * nu, (1 - mu) * nu),  i = 1..n_students

Seed defaults: 20 students, ``mu ~ Beta(12, 4)`` (mean 0.75), ``nu`` around 10. The seed's
``nu ~ Normal(10, 1)`` is replaced by a Gamma prior (positive, away from zero) with sd 3,
wide enough that the data, not the prior, decide ``nu``. Simulated scores are clipped to
``[1e-6, 1 - 1e-6]`` so that they lie strictly inside (0, 1) (a Beta draw with a small
shape parameter can round to exactly 0 or 1); under the defaults this touches at least one
score in 0.3% of simulated data sets (mu in the prior's upper tail), a negligible
departure from the process.

Estimands: ``mu`` and ``nu``.

Models:

* ``exact`` (PyMC): exactly the generative process; calibrated.
* ``bambi`` (Bambi, ``score ~ 1``, ``family="beta"``): Bambi's beta family models
  ``logit(mu)`` as the linear predictor and ``nu`` as ``kappa``. Its ``kappa`` prior is the
  same Gamma, but the intercept's prior is a Normal on the logit scale with the mean and sd
  of ``logit(mu)`` under the Beta prior (digamma / trigamma moments): an approximation of the
  Beta prior on ``mu`` (logistic-normal instead of logistic-beta), close but not exact.
* ``exact_stan``: ``exact`` as a Stan program (``scenarios/stan/school_exact.stan``, the
  ``stan`` extra), run when named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, polygamma

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
    open_unit,
    positive,
)

SCORE_EPS = 1e-6
"""Simulated scores are clipped to ``[SCORE_EPS, 1 - SCORE_EPS]``."""


# ---- helpers shared by the beta scenarios (school, schools, districts) ----------------


def gamma_shape_rate(mean: float, sd: float) -> tuple[float, float]:
    """Shape and rate of the Gamma distribution with this mean and sd."""
    shape = (mean / sd) ** 2
    return shape, shape / mean


def check_gamma(values: Mapping[str, Any], *prefixes: str) -> str | None:
    """Refuse Gamma priors whose sd is not below their mean.

    With ``sd >= mean`` the shape is at most 1 and the density does not vanish at zero, so
    concentrations near zero (Beta shapes near zero, scores piling up at 0 and 1) become
    plausible; ``sd < mean`` keeps the prior's density zero at zero.
    """
    for prefix in prefixes:
        mean, sd = values[f"{prefix}_mean"], values[f"{prefix}_sd"]
        if sd >= mean:
            return (
                f"{prefix}_sd={sd} is not below {prefix}_mean={mean}: the Gamma prior "
                "would allow concentrations near zero; use a smaller sd"
            )
    return None


def logit_beta_moments(mean: float, concentration: float) -> tuple[float, float]:
    """Mean and sd of ``logit(x)`` for ``x ~ Beta(mean * concentration, (1-mean) * conc.)``."""
    a, b = mean * concentration, (1 - mean) * concentration
    return float(digamma(a) - digamma(b)), float(np.sqrt(polygamma(1, a) + polygamma(1, b)))


def logit_sd_gamma(
    mean_beta: tuple[float, float], concentration_gamma: tuple[float, float]
) -> tuple[float, float]:
    """Gamma (shape, rate) matching the logit-scale sd of group means under the Beta prior.

    Group means ``x ~ Beta(m * k, (1 - m) * k)`` with ``m ~ Beta(*mean_beta)`` and
    ``k ~ Gamma(*concentration_gamma)`` (shape, rate) have a logit-scale sd
    ``sqrt(trigamma(m k) + trigamma((1 - m) k))`` that is itself random; this returns the
    Gamma with its mean and sd (computed on a 100 x 100 quantile grid). Used as the prior of
    a Bambi group sd, it keeps that sd away from zero as the Gamma prior on ``k`` keeps the
    concentration finite, which is both closer to the generative process and free of the
    funnel neck a half-normal prior opens at zero.
    """
    from scipy import stats

    u = (np.arange(100) + 0.5) / 100
    m = stats.beta.ppf(u, *mean_beta)[:, None]
    shape, rate = concentration_gamma
    k = stats.gamma.ppf(u, shape, scale=1 / rate)[None, :]
    sd = np.sqrt(polygamma(1, m * k) + polygamma(1, (1 - m) * k))
    return tuple(float(v) for v in gamma_shape_rate(float(sd.mean()), float(sd.std())))


def pooled_concentration(*concentrations: float) -> float:
    """Concentration of the Beta matching the marginal of a chain of nested Beta levels.

    If ``x_0 ~ Beta(m, c_0)`` and each level ``x_l ~ Beta(mean x_(l-1), concentration c_l)``,
    then ``E[x_L] = m`` and ``E[x_L (1 - x_L)] = m (1 - m) P`` with ``P = prod c_l / (c_l + 1)``,
    so ``x_L`` has the mean and variance of ``Beta(m, P / (1 - P))``.
    """
    shrink = float(np.prod([c / (c + 1) for c in concentrations]))
    return shrink / (1 - shrink)


def draw_means(
    rng: np.random.Generator, mean: np.ndarray | float, concentration: float, size: Any = None
) -> np.ndarray:
    """Beta(mean * concentration, (1 - mean) * concentration) group means, clipped.

    Far in the prior's tails a Beta draw can round to exactly 0 or 1 in double precision
    (a district mean of 0.9999 with school concentration 40 gives school means within
    1e-16 of 1), which would make the next level's Beta parameters zero; such draws are
    clipped to ``[SCORE_EPS, 1 - SCORE_EPS]`` like the scores.
    """
    mean = np.asarray(mean, dtype=float)
    draw = rng.beta(mean * concentration, (1 - mean) * concentration, size=size)
    return np.clip(draw, SCORE_EPS, 1 - SCORE_EPS)


def draw_scores(rng: np.random.Generator, mean: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Beta(mean * nu, (1 - mean) * nu) scores, clipped strictly inside (0, 1)."""
    mean, nu = np.asarray(mean, dtype=float), np.asarray(nu, dtype=float)
    score = rng.beta(mean * nu, (1 - mean) * nu)
    return np.clip(score, SCORE_EPS, 1 - SCORE_EPS)


def score_sums(design: Any, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sufficient statistics of Beta scores per school: ``sum log y`` and ``sum log(1 - y)``.

    A ``derive`` function (see :class:`sbc.backends.nutpie.PyMCModel`): the design's
    ``school`` index gives each score's school, ``n_schools`` their number (one school when
    the design has no index).
    """
    score = np.asarray(data["score"], dtype=float)
    school = getattr(design, "school", np.zeros(score.size, dtype=int))
    n = getattr(design, "n_schools", 1)
    sums = np.stack(
        [
            np.bincount(school, weights=np.log(score), minlength=n),
            np.bincount(school, weights=np.log1p(-score), minlength=n),
        ],
        axis=-1,
    )
    return {"score_sums": sums}


def _beta_sums_logp(value: Any, alpha: Any, beta: Any, n: Any) -> Any:
    import pytensor.tensor as pt

    betaln = pt.gammaln(alpha) + pt.gammaln(beta) - pt.gammaln(alpha + beta)
    return (alpha - 1) * value[..., 0] + (beta - 1) * value[..., 1] - n * betaln


def beta_scores(name: str, mean: Any, concentration: Any, design: Any, example: Any) -> Any:
    """Beta likelihood of every score, summed per school from :func:`score_sums`.

    Scores within a school share ``Beta(mean * concentration, (1 - mean) * concentration)``,
    so the log-likelihood of a school's ``n`` scores is ``(a - 1) sum log y + (b - 1)
    sum log(1 - y) - n betaln(a, b)``: one special-function evaluation per school instead of
    one per student (schools ``partial``: 0.56 s per fit with ``pm.Beta`` on every score).
    ``mean`` and ``concentration`` are per school. Must be called in a model context; the
    sums enter as the data container ``score_sums`` (the model's ``derive`` must be
    :func:`score_sums`) and form one observed variable ``name``.
    """
    import pymc as pm

    sums = pm.Data("score_sums", example["score_sums"])
    n_schools = getattr(design, "n_schools", 1)
    school = getattr(design, "school", np.zeros(np.shape(example["score"])[0], dtype=int))
    n = np.bincount(school, minlength=n_schools).astype(float)
    alpha, beta = mean * concentration, (1 - mean) * concentration
    return pm.CustomDist(
        name, alpha, beta, n, logp=_beta_sums_logp, signature="(),(),()->(2)", observed=sums
    )


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def logistic_normal_mean(loc: np.ndarray, sd: np.ndarray | float) -> np.ndarray:
    """``E[expit(loc + sd * Z)]``, ``Z ~ Normal(0, 1)``, by Gauss-Hermite quadrature.

    This turns a logit-scale location and group sd (Bambi's intercept and group sd) into the
    mean of the group means on the probability scale.
    """
    loc = np.asarray(loc, dtype=float)[..., None]
    sd = np.asarray(sd, dtype=float)[..., None]
    return (expit(loc + sd * _NODES) * _WEIGHTS).sum(axis=-1)


def group_labels(prefix: str, n: int) -> list[str]:
    """``n`` zero-padded labels (``s01 .. s12``) whose sorted order is their index order.

    Bambi sorts the levels of a grouping factor as strings, even for an ordered pandas
    categorical, so ``s10`` would otherwise come before ``s2`` and group effects would be
    read off for the wrong group.
    """
    width = len(str(n))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


# ---- scenario ------------------------------------------------------------------------

SETTINGS = (
    Setting("n_students", 20, "students in the school", at_least_one),
    Setting("mu_mean", 0.75, "prior mean of the school's mean score mu", open_unit),
    Setting("mu_concentration", 16.0, "prior concentration of mu (Beta(12, 4))", positive),
    Setting("nu_mean", 10.0, "prior mean of the score concentration nu", positive),
    Setting("nu_sd", 3.0, "prior sd of nu (Gamma)", positive),
)


@dataclass(frozen=True)
class Design:
    """Number of students and the generative hyperparameters."""

    n_students: int
    mu_mean: float
    mu_concentration: float
    nu_mean: float
    nu_sd: float

    @property
    def mu_beta(self) -> tuple[float, float]:
        """The Beta prior's (alpha, beta) for mu."""
        return self.mu_mean * self.mu_concentration, (1 - self.mu_mean) * self.mu_concentration

    @property
    def nu_gamma(self) -> tuple[float, float]:
        """The Gamma prior's (shape, rate) for nu."""
        return gamma_shape_rate(self.nu_mean, self.nu_sd)


def design(settings: Mapping[str, Any]) -> Design:
    """Build the design from resolved settings."""
    return Design(**settings)


def check_settings(values: Mapping[str, Any]) -> str | None:
    """Cross-setting rule: the Gamma prior on nu must keep nu away from zero."""
    return check_gamma(values, "nu")


def estimands(design: Design) -> tuple[str, ...]:
    """The school's mean score and concentration."""
    return ("mu", "nu")


def prior(design: Design, rng: np.random.Generator) -> dict[str, float]:
    """Draw mu and nu from the prior."""
    mu = rng.beta(*design.mu_beta)
    shape, rate = design.nu_gamma
    return {"mu": mu, "nu": rng.gamma(shape, 1 / rate)}


def generate(design: Design, params: Mapping[str, Any], rng: np.random.Generator) -> Simulation:
    """The scores given mu and nu."""
    mu, nu = float(params["mu"]), float(params["nu"])
    score = draw_scores(rng, np.full(design.n_students, mu), np.full(design.n_students, nu))
    return Simulation(truth={"mu": mu, "nu": nu}, data={"score": score})


simulate = Process(prior, generate)
"""mu and nu from the prior, then the scores."""


# ---- models ----------------------------------------------------------------------------


def _build_exact(design: Design, example: Mapping[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model() as model:
        a, b = design.mu_beta
        mu = pm.Beta("mu", a, b)
        shape, rate = design.nu_gamma
        nu = pm.Gamma("nu", alpha=shape, beta=rate)
        beta_scores("obs", mu, nu, design, example)
    return model


def _exact_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return {"mu": draws["mu"], "nu": draws["nu"]}


def _stan_data(design: Design, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The data block of ``school_exact.stan``."""
    score = np.asarray(data["score"], dtype=float)
    beta, gamma = np.asarray(design.mu_beta), np.asarray(design.nu_gamma)
    return {"N": score.size, "score": score, "mu_beta": beta, "nu_gamma": gamma}


def _frame(design: Design, data: Mapping[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({"score": np.asarray(data["score"], dtype=float)})


def _bambi_priors(d: Design) -> dict[str, Any]:
    loc, sd = logit_beta_moments(d.mu_mean, d.mu_concentration)
    shape, rate = d.nu_gamma
    return {
        "Intercept": ("Normal", {"mu": loc, "sigma": sd}),
        "kappa": ("Gamma", {"alpha": shape, "beta": rate}),
    }


def _bambi_estimands(draws: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    return {"mu": expit(draws["Intercept"]), "nu": draws["kappa"]}


SCENARIO = Scenario(
    name="school",
    description="test scores of one school (beta, one level)",
    settings=SETTINGS,
    design=design,
    simulate=simulate,
    estimands=estimands,
    models=(
        Model(
            "exact",
            "the generative process (PyMC: Beta mean/concentration)",
            PyMCModel(_build_exact, data=(), derive=score_sums),
            _exact_estimands,
        ),
        Model(
            "bambi",
            "logit-normal prior on mu (Bambi: score ~ 1, family beta)",
            BambiModel(
                formula="score ~ 1",
                frame=_frame,
                response="score",
                priors=_bambi_priors,
                family="beta",
            ),
            _bambi_estimands,
        ),
        Model(
            "exact_stan",
            "as exact, in Stan",
            StanModel(Path(__file__).with_name("stan") / "school_exact.stan", _stan_data),
            _exact_estimands,
            extra="stan",
        ),
    ),
    check_settings=check_settings,
    data_statistics=(
        DataStatistic(
            "mean_score",
            "the school's average score",
            lambda design, data: float(np.mean(data["score"])),
        ),
        DataStatistic(
            "sd_score",
            "the sd of the scores (small: a large concentration nu)",
            lambda design, data: float(np.std(data["score"], ddof=1)),
        ),
    ),
    reference_model="exact",
)
