"""Detection power: whether SBC flags the planted bugs ("mutants"), and from how many runs.

``sbc mutants SCENARIO`` runs the scenario's correct ``partial`` model and every model marked
``mutant=True`` on the same simulated data sets, then reports for each model whether it is
flagged (the verdict of :func:`sbc.calibration.model_table`: a Holm-adjusted simultaneous
``pot_c`` test over all estimands and test quantities at level :data:`sbc.calibration.ALPHA`),
which quantities revealed it, and the smallest number of simulations at which it is flagged
(checked on the first 10, 20, 30, ... simulations: the smallest N from which on it stays
flagged). The correct model must not be flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sbc.calibration import ALPHA, ok_fits
from sbc.stats.uniformity import holm, uniformity_pvalue

CORRECT = "partial"
"""The model every scenario's mutants are variants of."""


def holm_pvalues(results: pd.DataFrame) -> pd.Series:
    """Holm-adjusted uniformity p-value (``pot_c``, as the verdict) of every quantity."""
    ok = ok_fits(results)
    names = list(dict.fromkeys(ok["estimand"]))
    raw = np.array(
        [uniformity_pvalue(ok.loc[ok["estimand"] == n, "pit"].to_numpy(float)) for n in names]
    )
    return pd.Series(holm(raw), index=names)


def detection_table(results: pd.DataFrame, models: list[str], step: int = 10) -> pd.DataFrame:
    """Per model: flagged or not, the quantities that revealed it, the first N that flags it.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table holding every model in ``models`` on the same simulations.
    models : list of str
        The correct model first, then the mutants.
    step : int
        The simulation counts checked are ``step, 2 step, ...`` up to all of them.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``mutant``, ``simulations``, ``flagged``, ``revealed_by`` (the
        quantities with adjusted p below :data:`ALPHA`, smallest first), ``min_p_holm`` and
        ``first_flagged_at`` (smallest checked N from which on the model is flagged at every
        larger checked N, so a chance early flag does not count; NA if not flagged at the end).
    """
    rows = []
    total = int(results["simulation"].nunique())
    for i, model in enumerate(models):
        mine = results[results["model"] == model]
        p = holm_pvalues(mine).sort_values()
        checks = sorted({min(n, total) for n in range(step, total + step, step)})
        flags = [holm_pvalues(mine[mine["simulation"] < n]).min() < ALPHA for n in checks]
        first = pd.NA  # smallest checked N from which the model stays flagged
        for n, flag in zip(reversed(checks), reversed(flags), strict=True):
            if not flag:
                break
            first = n
        revealed = p[p < ALPHA]
        rows.append(
            {
                "model": model,
                "mutant": i > 0,
                "simulations": total,
                "flagged": bool(p.min() < ALPHA),
                "revealed_by": ", ".join(f"{n} (p={v:.2g})" for n, v in revealed.head(6).items())
                + (f" and {len(revealed) - 6} more" if len(revealed) > 6 else ""),
                "min_p_holm": float(p.min()),
                "first_flagged_at": first,
            }
        )
    return pd.DataFrame(rows)
