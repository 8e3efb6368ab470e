"""An exact backend: independent draws from the analytic posterior of a conjugate model.

The model is ``theta ~ Normal(prior_mean, prior_sd)``, ``y_i ~ Normal(theta, sigma)`` with
``sigma`` known. Its posterior is normal with precision ``1/prior_sd**2 + n/sigma**2``, so
draws are exact and independent: SBC ranks from it are exactly uniform. ``bias`` and
``scale`` distort the posterior on purpose (shift its mean by ``bias`` posterior sds,
multiply its sd by ``scale``) to check that miscalibration is caught. It takes
milliseconds, which makes it the backend for end-to-end tests of the machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sbc.backends import Posterior, Sampling


def normal_posterior(
    y: np.ndarray, prior_mean: float, prior_sd: float, sigma: float
) -> tuple[float, float]:
    """Mean and sd of the posterior of a normal mean with known ``sigma``.

    Parameters
    ----------
    y : ndarray
        Observations.
    prior_mean, prior_sd : float
        Normal prior of the mean.
    sigma : float
        Known observation sd.

    Returns
    -------
    mean, sd : float
    """
    precision = 1.0 / prior_sd**2 + y.size / sigma**2
    mean = (prior_mean / prior_sd**2 + y.sum() / sigma**2) / precision
    return float(mean), float(np.sqrt(1.0 / precision))


@dataclass(frozen=True)
class ExactNormal:
    """Backend and fitter in one: compiling only reads the conjugate model off the design.

    Parameters
    ----------
    prior_mean, prior_sd, sigma : float or None
        The conjugate model; ``None`` takes the value of that key from the design.
    response : str
        Key of the observations in the simulated data.
    bias, scale : float
        Deliberate distortion of the posterior (0 and 1 leave it exact).
    fail_when : float or None
        Raise instead of fitting when the data mean exceeds this (to test error capture).
    ignore_data : bool
        Return the prior instead of the posterior: a model whose likelihood was dropped.
        Its parameter ranks are exactly uniform, so only a data-dependent test quantity
        (the log-likelihood) can reveal it.
    """

    prior_mean: float | None = None
    prior_sd: float | None = None
    sigma: float | None = None
    response: str = "y"
    bias: float = 0.0
    scale: float = 1.0
    fail_when: float | None = None
    ignore_data: bool = False

    def compile(self, design: Mapping[str, Any], example: Mapping[str, np.ndarray]) -> ExactNormal:
        """Return a copy with every unset prior value taken from ``design``."""
        keys = ("prior_mean", "prior_sd", "sigma")
        return replace(self, **{k: float(design[k]) for k in keys if getattr(self, k) is None})

    def fit(self, data: Mapping[str, np.ndarray], seed: int, sampling: Sampling) -> Posterior:
        """Return ``sampling.chains x sampling.draws`` independent posterior draws."""
        sampling = sampling.resolve()
        y = np.asarray(data[self.response], dtype=float)
        if self.fail_when is not None and y.mean() > self.fail_when:
            raise RuntimeError(f"deliberate failure: mean(y)={y.mean():.3f} > {self.fail_when}")
        mean, sd = normal_posterior(
            y[:0] if self.ignore_data else y, self.prior_mean, self.prior_sd, self.sigma
        )
        rng = np.random.default_rng(seed)
        shape = (sampling.chains, sampling.draws)
        theta = rng.normal(mean + self.bias * sd, sd * self.scale, shape)
        return Posterior(draws={"theta": theta}, divergences=0)
