"""How each distribution's parameters are scaled, shifted, squared and swapped.

The operators of :mod:`sbc.mutate.operators` change a random variable by rewriting the
parameters of its node (``rng, size, *params`` of a PyTensor ``RandomVariable``). What
"scale", "location" and "prior sd" mean differs between distributions; this table says it
for the distributions PyMC models use. A distribution missing here gets no prior operator
(the enumeration lists it as skipped), never a guessed one.

* ``scale(params, c)``: the prior scale multiplied by ``c`` (2 or 1/2). For a location-scale
  or positive scale family the scale parameter times ``c`` (``LogNormal``: the log-scale
  sigma); for ``Beta`` and ``Dirichlet``, which have none, the concentration divided by
  ``c**2`` with the mean kept (about ``c`` times the sd for concentrated priors);
  ``Uniform``: the interval widened ``c`` times about its centre; ``MvNormal``: the
  covariance times ``c**2``.
* ``shift(params)``: the location moved by one prior sd (the scale where the sd is
  infinite, as for Cauchy), for families with a location parameter (``LogNormal``: on the
  log scale; ``Beta``: the mean moved by one sd towards 1/2, concentration kept).
* ``sd(params)``: the prior sd of a positive family without a location parameter; such a
  variable is shifted by adding it (its support moves from 0 to the sd), see
  :func:`sbc.mutate.operators.prior_shift`.
* ``noise``: position of the likelihood's scale parameter, squared by ``variance_as_sd``.
* ``shapes``: positions of the two shape parameters a ``beta_swap`` exchanges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Params = Sequence[Any]
"""Distribution parameters as PyTensor variables, in the order of the node's inputs."""


@dataclass(frozen=True)
class Family:
    """The rewrite rules of one distribution (see the module docstring).

    Parameters
    ----------
    label : str
        Name shown in descriptions (``Normal``).
    scale : callable, optional
        ``scale(params, c) -> params``.
    shift : callable, optional
        ``shift(params) -> params``: location moved by one prior sd.
    sd : callable, optional
        ``sd(params) -> variable``: prior sd of a positive family without a location.
    noise : int, optional
        Index of the scale parameter in ``params``, for a likelihood.
    shapes : tuple of int, optional
        Indices of the two shape parameters to swap.
    """

    label: str
    scale: Callable[[Params, float], list[Any]] | None = None
    shift: Callable[[Params], list[Any]] | None = None
    sd: Callable[[Params], Any] | None = None
    noise: int | None = None
    shapes: tuple[int, int] | None = None


def _times(index: int) -> Callable[[Params, float], list[Any]]:
    """Scale rule multiplying parameter ``index`` by ``c``."""

    def rule(params: Params, c: float) -> list[Any]:
        out = list(params)
        out[index] = out[index] * c
        return out

    return rule


def _plus(loc: int, sd: Callable[[Params], Any]) -> Callable[[Params], list[Any]]:
    """Shift rule adding ``sd(params)`` to parameter ``loc``."""

    def rule(params: Params) -> list[Any]:
        out = list(params)
        out[loc] = out[loc] + sd(params)
        return out

    return rule


def _param(index: int, factor: float = 1.0) -> Callable[[Params], Any]:
    return lambda p: p[index] * factor if factor != 1.0 else p[index]


def _student_sd(params: Params) -> Any:
    """Student-t sd ``sigma sqrt(nu / (nu - 2))``; the scale ``sigma`` when nu <= 2."""
    import pytensor.tensor as pt

    nu, _, sigma = params
    return pt.switch(nu > 2, sigma * pt.sqrt(nu / pt.maximum(nu - 2, 1e-12)), sigma)


def _invgamma_sd(params: Params) -> Any:
    import pytensor.tensor as pt

    alpha, beta = params
    safe = pt.maximum(alpha - 2, 1e-12)
    return pt.switch(alpha > 2, beta / ((alpha - 1) * pt.sqrt(safe)), beta)


def _weibull_sd(params: Params) -> Any:
    import pytensor.tensor as pt

    alpha, beta = params
    return beta * pt.sqrt(pt.gamma(1 + 2 / alpha) - pt.gamma(1 + 1 / alpha) ** 2)


def _beta_scale(params: Params, c: float) -> list[Any]:
    """Concentration divided by ``c**2``, mean kept."""
    alpha, beta = params
    return [alpha / c**2, beta / c**2]


def _beta_shift(params: Params) -> list[Any]:
    """Mean moved by one prior sd towards 1/2 (so it stays in (0, 1)), concentration kept."""
    import pytensor.tensor as pt

    alpha, beta = params
    kappa = alpha + beta
    mean = alpha / kappa
    sd = pt.sqrt(mean * (1 - mean) / (kappa + 1))
    moved = pt.switch(mean <= 0.5, mean + sd, mean - sd)
    return [moved * kappa, (1 - moved) * kappa]


def _uniform_scale(params: Params, c: float) -> list[Any]:
    lower, upper = params
    centre, half = (lower + upper) / 2, (upper - lower) / 2
    return [centre - c * half, centre + c * half]


def _uniform_shift(params: Params) -> list[Any]:
    lower, upper = params
    sd = (upper - lower) / math.sqrt(12)
    return [lower + sd, upper + sd]


def _mvnormal_shift(params: Params) -> list[Any]:
    import pytensor.tensor as pt

    mu, cov = params
    return [mu + pt.sqrt(pt.diagonal(cov, axis1=-2, axis2=-1)), cov]


def _mvnormal_scale(params: Params, c: float) -> list[Any]:
    mu, cov = params
    return [mu, cov * c**2]


FAMILIES: dict[str, Family] = {
    # location-scale families on the real line: (loc, scale)
    "normal": Family("Normal", _times(1), _plus(0, _param(1)), noise=1),
    "t": Family("StudentT", _times(2), _plus(1, _student_sd), noise=2),
    "cauchy": Family("Cauchy", _times(1), _plus(0, _param(1)), noise=1),
    "laplace": Family("Laplace", _times(1), _plus(0, _param(1, math.sqrt(2))), noise=1),
    "logistic": Family("Logistic", _times(1), _plus(0, _param(1, math.pi / math.sqrt(3))), noise=1),
    "gumbel": Family("Gumbel", _times(1), _plus(0, _param(1, math.pi / math.sqrt(6))), noise=1),
    "truncated_normal": Family("TruncatedNormal", _times(1), _plus(0, _param(1)), noise=1),
    "lognormal": Family("LogNormal", _times(1), _plus(0, _param(1)), noise=1),
    # positive scale families without a location: shifted by adding their sd
    "halfnormal": Family(
        "HalfNormal", _times(1), sd=_param(1, math.sqrt(1 - 2 / math.pi)), noise=1
    ),
    "halfcauchy": Family("HalfCauchy", _times(0), sd=_param(0)),
    "halfstudentt": Family("HalfStudentT", _times(1), sd=_param(1), noise=1),
    "exponential": Family("Exponential", _times(0), sd=_param(0)),
    "gamma": Family("Gamma", _times(1), sd=lambda p: p[1] * p[0] ** 0.5),
    "invgamma": Family("InverseGamma", _times(1), sd=_invgamma_sd),
    "weibull": Family("Weibull", _times(1), sd=_weibull_sd),
    "pareto": Family("Pareto", _times(1), sd=_param(1)),
    # bounded and multivariate families
    "beta": Family("Beta", _beta_scale, _beta_shift, shapes=(0, 1)),
    "kumaraswamy": Family("Kumaraswamy", shapes=(0, 1)),
    "uniform": Family("Uniform", _uniform_scale, _uniform_shift),
    "dirichlet": Family("Dirichlet", lambda p, c: [p[0] / c**2]),
    "multivariate_normal": Family("MvNormal", _mvnormal_scale, _mvnormal_shift),
}
"""Rules by the name of the PyTensor random variable op (``op.name``)."""


def family(op: Any) -> Family | None:
    """The rules for a random variable op, or ``None`` when it is not a plain one we know."""
    from pytensor.tensor.random.op import RandomVariable

    if not isinstance(op, RandomVariable):
        return None
    return FAMILIES.get(getattr(op, "name", ""))
