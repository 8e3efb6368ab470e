"""Detection power of a mutants run: which planted bugs SBC flags, and with how many simulations.

The pandas layer over a mutants run's results (no I/O, no plotting; the run itself is
:mod:`sbc.workflows.mutants`):

* :func:`analyse` gives each model's verdict (the one of
  :func:`sbc.results.calibration.model_table`: Holm over the ``pot_c`` p-values of every
  estimand and test quantity, family-wise :data:`sbc.results.calibration.ALPHA`), the
  verdict with estimands alone, which quantities revealed it, its detection power against
  the number of simulations (subsampled within the run, projected beyond it:
  :mod:`sbc.stats.power`) and the number of simulations it would need;
* :func:`scores` and :func:`score_curve` give the mutation score (share of non-equivalent
  mutants flagged) at the run's size and against the number of simulations.

The sentences printed and shown from this are in :mod:`sbc.report.mutants_text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sbc import seeding
from sbc.results.calibration import ALPHA, estimand_group
from sbc.stats.power import (
    bounded_effects,
    effect_power,
    first_reaching,
    holm_min,
    paired_effects,
    power_interval,
    pvalues,
    required_simulations,
    subsample_power,
    visible,
)
from sbc.stats.uniformity import holm

ROLES: tuple[str, ...] = ("correct", "hand-written", "generated")
"""What a model of a mutants run is: a correct model, or a mutant written or generated."""

POWER = 0.8
"""Detection probability the recommended number of simulations aims for."""

PROJECTED_UP_TO = 32
"""Projections stop at this many times the run's simulations (``inf`` beyond)."""


@dataclass(frozen=True)
class Plan:
    """The models of a mutants run and what each one is.

    Parameters
    ----------
    models : list of str
        Correct models first, then the hand-written mutants, then the generated ones.
    catalogue : pandas.DataFrame
        One row per model: ``model``, ``role`` (see :data:`ROLES`), ``base`` (the correct
        model a mutant comes from), ``operator``, ``target``, ``description`` and
        ``equivalent`` (why the mutant changes nothing observable, or empty).
    skipped : mapping
        Per correct model, what was not mutated: free variables no prior operator applies
        to (name -> distribution) and mutants whose rewrite failed (name -> error).
    reasons : mapping
        Per correct model, why it is the one mutated (see
        :func:`sbc.mutate.choice.choose_base`).
    """

    models: list[str]
    catalogue: pd.DataFrame
    skipped: Mapping[str, Mapping[str, str]]
    reasons: Mapping[str, str]


@dataclass(frozen=True)
class Analysis:
    """Everything the mutants report shows.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per model (see :func:`analyse`).
    power : pandas.DataFrame
        Detection power per model and number of simulations: ``model``, ``simulations``,
        ``power``, ``lower``, ``upper`` and ``method`` (``subsample`` within the run,
        ``projected`` for escapes from the run's size on).
    reveals : pandas.DataFrame
        Smallest Holm-adjusted p-value per model (rows) and group of quantities (columns).
    simulations : int
        Simulations in the run.
    """

    table: pd.DataFrame
    power: pd.DataFrame
    reveals: pd.DataFrame
    simulations: int


def pit_matrix(results: pd.DataFrame, model: str) -> tuple[list[str], list[str], np.ndarray]:
    """Quantity names, their kinds and the ``(simulation, quantity)`` PIT matrix of a model.

    Failed fits leave NaN, which the uniformity tests skip (as :func:`ok_fits` does).
    """
    rows = results[results["model"] == model]
    names = list(dict.fromkeys(rows["estimand"]))
    kinds = rows.drop_duplicates("estimand").set_index("estimand")["kind"].reindex(names)
    table = rows.pivot(index="simulation", columns="estimand", values="pit")
    table = table.reindex(index=sorted(results["simulation"].unique()), columns=names)
    return names, [str(k) for k in kinds], table.to_numpy(float)


def sizes_within(n: int, smallest: int = 25) -> np.ndarray:
    """Simulation counts checked within a run of ``n``: 25, 50, 100, ... below ``n``, and ``n``."""
    sizes = [m for m in (smallest * 2**i for i in range(20)) if m < n]
    return np.array([*sizes, n])


def sizes_beyond(n: int, steps: int = 4) -> np.ndarray:
    """Simulation counts projected beyond a run of ``n``: 2n, 4n, ..."""
    return np.array([n * 2**i for i in range(1, steps + 1)])


def analyse(
    results: pd.DataFrame, catalogue: pd.DataFrame, seed: int = 0, subsets: int = 200
) -> Analysis:
    """Verdicts, detection power and the simulations needed, for every model of a run.

    Parameters
    ----------
    results : pandas.DataFrame
        The run's results, every model on the same simulations.
    catalogue : pandas.DataFrame
        :attr:`Plan.catalogue` (models absent from it count as hand-written mutants).
    seed : int
        Run seed: the subsets of the power curve come from its ``analysis`` stream.
    subsets : int
        Random subsets per simulation count.

    Returns
    -------
    Analysis
        ``table`` has the catalogue's columns and ``simulations``, ``fits_ok``, ``k``
        (quantities in the Holm family), ``flagged``, ``flagged_estimands_only``,
        ``min_p_holm``, ``min_p_holm_estimands``, ``revealed_by`` (groups of quantities
        with an adjusted p below :data:`ALPHA`), ``status`` (``flagged``, ``escaped``,
        ``equivalent``, ``failed`` for a mutant; ``calibrated`` or ``FLAGGED`` for a correct
        model), ``departure`` (for an escape: its rank departure measured against its correct
        model on the same data, :func:`sbc.stats.power.paired_effects`, and whether it is
        visible), ``needed``, ``needed_low``, ``needed_high`` (simulations to flag it with
        probability :data:`POWER`: for a flagged mutant read off its subsampled power curve;
        for an escape projected from its paired departure,
        :func:`sbc.stats.power.required_simulations`, with a 90% interval) and
        ``first_flagged_at`` (smallest checked count from which on the model stays
        flagged, counts of :func:`sizes_within`).
    """
    n = int(results["simulation"].nunique())
    within = sizes_within(n)
    catalogue = catalogue.set_index("model")
    matrices = {m: pit_matrix(results, m) for m in dict.fromkeys(results["model"])}
    rows, curves, reveals = [], [], {}
    for model, (names, kinds, pit) in matrices.items():
        info = _info(catalogue, model)
        row, reveals[model] = _verdict(names, kinds, pit)
        status = _status(info, row["flagged"], row["k"])
        rng = seeding.analysis_rng(seed, f"power:{model}")
        power = (
            subsample_power(pit, within, rng, subsets, ALPHA)
            if row["k"]
            else np.full(len(within), np.nan)
        )
        low, high = power_interval(power, n, within)
        curves += _curve(model, "subsample", within, power, low, high)
        projection = {"departure": "", "needed": np.nan, "needed_low": np.nan}
        projection["needed_high"] = np.nan
        if status == "flagged":
            projection["needed"] = first_reaching(power, within, POWER)
        base = matrices.get(info["base"])
        if status == "escaped" and base is not None:
            control = _aligned(base, names)
            projection, beyond = _project(pit, control, names, n, row["k"], seed, model)
            curves += beyond
        rows.append(
            {
                "model": model,
                **info,
                "simulations": n,
                "fits_ok": int(np.isfinite(pit).any(axis=1).sum()),
                **row,
                "status": status,
                **projection,
                "first_flagged_at": _first_flagged(pit, within),
            }
        )
    table = pd.DataFrame(rows)
    reveal = pd.DataFrame.from_dict(reveals, orient="index")
    reveal.index.name = "model"
    return Analysis(table, pd.DataFrame(curves), reveal, n)


def _verdict(
    names: list[str], kinds: list[str], pit: np.ndarray
) -> tuple[dict[str, Any], dict[str, float]]:
    """A model's verdict columns, and its smallest adjusted p-value per group of quantities."""
    p = pvalues(pit.T)
    k = int(np.isfinite(p).sum())
    adjusted = holm(p)
    is_estimand = np.array([kind == "estimand" for kind in kinds])
    p_est = float(holm_min(np.where(is_estimand, p, np.nan)))
    groups: dict[str, float] = {}
    for name, value in zip(names, adjusted, strict=True):
        group = estimand_group(name)
        groups[group] = float(np.fmin(groups.get(group, np.nan), value))
    revealed = sorted(((g, v) for g, v in groups.items() if v < ALPHA), key=lambda gv: gv[1])
    smallest = float(holm_min(p)) if k else np.nan
    row = {
        "k": k,
        "flagged": bool(k and smallest < ALPHA),
        "flagged_estimands_only": bool(np.isfinite(p_est) and p_est < ALPHA),
        "min_p_holm": smallest,
        "min_p_holm_estimands": p_est,
        "revealed_by": ", ".join(f"{g} (p={v:.2g})" for g, v in revealed),
    }
    return row, groups


def _aligned(base: tuple[list[str], list[str], np.ndarray], names: list[str]) -> np.ndarray:
    """The base model's PIT columns in the order of ``names`` (NaN where it lacks one)."""
    base_names, _, base_pit = base
    index = {name: i for i, name in enumerate(base_names)}
    columns = [
        base_pit[:, index[n]] if n in index else np.full(base_pit.shape[0], np.nan) for n in names
    ]
    return np.column_stack(columns)


def _project(
    pit: np.ndarray, control: np.ndarray, names: list[str], n: int, k: int, seed: int, model: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Simulations an escape needs, from its departure paired with its correct model's ranks.

    Returns the projection columns (``departure``: the strongest paired effect and whether
    it is visible; ``needed`` with a 90% interval) and the projected power curve beyond the
    run (its band: the effects at the ends of their 90% intervals).
    """
    effects = paired_effects(pit, control)
    weaker, stronger = bounded_effects(effects, -1.645), bounded_effects(effects, 1.645)
    rng = seeding.analysis_rng(seed, f"project:{model}")
    strength = np.nan_to_num(effects["shift"] ** 2 + effects["excess"] ** 2 / 2)
    q = int(np.argmax(strength))
    shown = (
        f"{'visible' if visible(effects) else 'not visible'}; strongest in {names[q]}: shift "
        f"{effects['shift'][q]:+.3f} (se {effects['shift_se'][q]:.3f}), excess "
        f"{effects['excess'][q]:+.3f} (se {effects['excess_se'][q]:.3f})"
    )
    needed = {
        "needed_low": required_simulations(stronger, n, k, rng, ALPHA, POWER, PROJECTED_UP_TO)
    }
    for key, variant in (("needed", effects), ("needed_high", weaker)):
        # a weaker departure never needs fewer simulations: skip the search once it is inf
        previous = needed["needed_low"] if key == "needed" else needed["needed"]
        found = np.isfinite(previous)
        needed[key] = (
            required_simulations(variant, n, k, rng, ALPHA, POWER, PROJECTED_UP_TO)
            if found
            else np.inf
        )
    projection = {"departure": shown, **needed}
    beyond = np.r_[n, sizes_beyond(n)]  # from the run's own size: the projection there
    curve = _curve(
        model,
        "projected",
        beyond,
        effect_power(effects, beyond, k, rng, ALPHA),
        effect_power(weaker, beyond, k, rng, ALPHA),
        effect_power(stronger, beyond, k, rng, ALPHA),
    )
    return projection, curve


def _curve(
    model: str,
    method: str,
    sizes: np.ndarray,
    power: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "simulations": int(m),
            "power": float(pw),
            "lower": float(lo),
            "upper": float(hi),
            "method": method,
        }
        for m, pw, lo, hi in zip(sizes, power, lower, upper, strict=True)
    ]


def _info(catalogue: pd.DataFrame, model: str) -> dict[str, str]:
    if model in catalogue.index:
        return {k: str(v) for k, v in catalogue.loc[model].items()}
    return {
        "role": "hand-written",
        "base": "",
        "operator": "",
        "target": "",
        "description": "",
        "equivalent": "",
    }


def _status(info: Mapping[str, str], flagged: bool, k: int) -> str:
    if info["role"] == "correct":
        return "FLAGGED" if flagged else "calibrated"
    if info["equivalent"]:
        return "equivalent"
    if not k:
        return "failed"
    return "flagged" if flagged else "escaped"


def _first_flagged(pit: np.ndarray, sizes: np.ndarray) -> Any:
    """Smallest checked count from which on the first simulations stay flagged (or NA)."""
    first = pd.NA
    for m in sizes[::-1]:
        if not holm_min(pvalues(pit[:m].T)) < ALPHA:
            break
        first = int(m)
    return first


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """Mutation score per role of mutant: flagged share of the non-equivalent mutants.

    Returns
    -------
    pandas.DataFrame
        One row per role present (``generated``, ``hand-written``) with ``mutants``,
        ``equivalent``, ``failed``, ``counted`` (neither), ``flagged``,
        ``flagged_estimands_only``, ``score`` and ``score_estimands_only``.
    """
    rows = []
    for role in ("generated", "hand-written"):
        mine = table[table["role"] == role]
        if mine.empty:
            continue
        counted = mine[mine["status"].isin(["flagged", "escaped"])]
        flagged = int(counted["flagged"].sum())
        by_estimands = int(counted["flagged_estimands_only"].sum())
        rows.append(
            {
                "role": role,
                "mutants": len(mine),
                "equivalent": int((mine["status"] == "equivalent").sum()),
                "failed": int((mine["status"] == "failed").sum()),
                "counted": len(counted),
                "flagged": flagged,
                "flagged_estimands_only": by_estimands,
                "score": flagged / len(counted) if len(counted) else np.nan,
                "score_estimands_only": by_estimands / len(counted) if len(counted) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def score_curve(analysis: Analysis, role: str = "generated") -> pd.DataFrame:
    """Expected mutation score against the number of simulations.

    The mean chance of a flag over the counted (non-equivalent, not failed) mutants of
    ``role``: subsampled within the run (the run's own verdicts at its size), and beyond it
    1 for a mutant already flagged and the projected power for an escape.

    Returns
    -------
    pandas.DataFrame
        Columns ``simulations`` and ``score``.
    """
    table = analysis.table
    counted = table[(table["role"] == role) & table["status"].isin(["flagged", "escaped"])]
    if counted.empty:
        return pd.DataFrame({"simulations": [], "score": []})
    power = analysis.power[analysis.power["model"].isin(counted["model"])]
    within = power[power["method"] == "subsample"].groupby("simulations")["power"].mean()
    projected = power[
        (power["method"] == "projected") & (power["simulations"] > analysis.simulations)
    ]
    sizes = sorted(projected["simulations"].unique())
    beyond = []
    for m in sizes:
        chance = projected[projected["simulations"] == m].set_index("model")["power"]
        beyond.append(
            np.mean(
                [
                    1.0 if f else chance.get(model, np.nan)
                    for model, f in zip(counted["model"], counted["flagged"], strict=True)
                ]
            )
        )
    return pd.DataFrame(
        {"simulations": [*within.index, *sizes], "score": [*within.to_numpy(), *beyond]}
    )


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
    checks = np.array(sorted({min(n, total) for n in range(step, total + step, step)}))
    for i, model in enumerate(models):
        names, _, pit = pit_matrix(results, model)
        p = pd.Series(holm(pvalues(pit.T)), index=names).sort_values()
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
                "first_flagged_at": _first_flagged(pit, checks),
            }
        )
    return pd.DataFrame(rows)
