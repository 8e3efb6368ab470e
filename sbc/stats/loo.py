"""Leave-one-out cross-validation by Pareto-smoothed importance sampling, on arrays.

Thin wrappers of arviz-stats' array functions (``arviz_stats.base.array_stats``: ``loo``,
``loo_summary``, ``ess``) for a log-likelihood array ``(chain, draw, n)``, plus the paired
comparison of models (Vehtari, Gelman & Gabry 2017), for the real-data fits of ``sbc fit``
(relative efficiency from the draws, as arviz-stats' ``loo``; the per-fit PSIS-LOO of a run
is :func:`sbc.stats.predictive.psis_loo`, batched). Pure functions: no I/O, no tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sbc.stats.predictive import KHAT_THRESHOLD, group_sums, total_se

__all__ = ["KHAT_MAX", "Loo", "compare", "group_sums", "psis_loo", "relative_ess"]

KHAT_MAX = KHAT_THRESHOLD
"""An observation (or group) whose Pareto k-hat is larger makes the PSIS estimate unreliable."""


@dataclass(frozen=True)
class Loo:
    """PSIS-LOO of one model.

    Attributes
    ----------
    elpd : float
        Expected log pointwise predictive density, summed over observations.
    se : float
        Its standard error.
    p_loo : float
        Effective number of parameters.
    elpd_i : ndarray of shape (n,)
        Pointwise elpd.
    pareto_k : ndarray of shape (n,)
        Pointwise Pareto k-hat.
    """

    elpd: float
    se: float
    p_loo: float
    elpd_i: np.ndarray
    pareto_k: np.ndarray

    @property
    def high_k(self) -> int:
        """Number of observations with k-hat above :data:`KHAT_MAX`."""
        return int(np.sum(self.pareto_k > KHAT_MAX))


def relative_ess(loglik: np.ndarray) -> float:
    """Mean over observations of the relative ESS of the likelihood draws (``r_eff``).

    Parameters
    ----------
    loglik : ndarray of shape (chain, draw, n)
        Pointwise log-likelihood at every posterior draw.
    """
    from arviz_stats.base import array_stats

    chains, draws = loglik.shape[:2]
    if chains < 2 or draws < 4:
        return 1.0
    scaled = np.exp(loglik - loglik.max(axis=(0, 1), keepdims=True))
    ess = array_stats.ess(np.moveaxis(scaled, (0, 1), (-2, -1)), chain_axis=-2, draw_axis=-1)
    ess = np.asarray(ess, dtype=float)
    ess = ess[np.isfinite(ess)]
    return float(np.mean(ess) / (chains * draws)) if ess.size else 1.0


def psis_loo(loglik: np.ndarray, r_eff: float | None = None) -> Loo:
    """PSIS-LOO of a log-likelihood array.

    Parameters
    ----------
    loglik : ndarray of shape (chain, draw, n)
        Pointwise log-likelihood (of observations, or of groups for leave-one-group-out).
    r_eff : float, optional
        Relative effective sample size (default: :func:`relative_ess`).

    Returns
    -------
    Loo
    """
    from arviz_stats.base import array_stats

    loglik = np.asarray(loglik, dtype=float)
    if loglik.ndim != 3:
        raise ValueError(f"loglik needs shape (chain, draw, n), got {loglik.shape}")
    # an observation whose log-likelihood is the same at every draw needs no weights (PSIS
    # cannot fit a tail to equal values): its elpd is that value, p_loo 0, k-hat 0
    flat = loglik.reshape(-1, loglik.shape[-1])
    varies = np.ptp(flat, axis=0) > 0
    elpd_i, pareto_k, p_loo_i = flat[0].copy(), np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
    if varies.any():
        r_eff = relative_ess(loglik[..., varies]) if r_eff is None else r_eff
        found = array_stats.loo(
            np.moveaxis(loglik[..., varies], (0, 1), (-2, -1)),
            chain_axis=-2,
            draw_axis=-1,
            r_eff=r_eff,
        )
        elpd_i[varies], pareto_k[varies], p_loo_i[varies] = found
    elpd, se, p_loo, _ = array_stats.loo_summary(elpd_i, p_loo_i)
    return Loo(
        float(elpd),
        float(se),
        float(p_loo),
        np.asarray(elpd_i, dtype=float),
        np.asarray(pareto_k, dtype=float),
    )


def compare(loos: Mapping[str, Loo]) -> dict[str, tuple[float, float]]:
    """Each model's elpd difference to the best model, and the difference's standard error.

    The standard error is paired: ``sqrt(n var(elpd_i(model) - elpd_i(best)))``, as
    ``arviz_stats.compare`` computes it.

    Returns
    -------
    dict of str to (float, float)
        Model -> ``(elpd_diff, se_diff)``; ``(0, 0)`` for the best model (highest elpd).
    """
    if not loos:
        return {}
    best = max(loos, key=lambda m: loos[m].elpd)
    out = {}
    for name, loo in loos.items():
        if name == best:
            out[name] = (0.0, 0.0)
            continue
        diff = loo.elpd_i - loos[best].elpd_i
        diff = diff[np.isfinite(diff)]
        out[name] = (float(diff.sum()), total_se(diff))
    return out
