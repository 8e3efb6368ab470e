"""Validate a scenario's models against its real data (``sbc fit``).

After fitting every model to ``scenario.real_data`` (:func:`sbc.workflows.realfit.fit_models`)
this computes what the validation page shows:

1. the prior predictive check: data sets simulated from the scenario at the real design,
   each data statistic of the real data against its replicated distribution;
2. each model's posterior predictive check on the same statistics, from data sets drawn at
   posterior draws (``Likelihood.sample``, else the simulator's ``Process.generate``);
3. PSIS-LOO of every model from the scenario's likelihood (by observation, and by group
   where ``Likelihood.groups`` is declared);
4. the SBC verdict and sampler health of each model on this design, from a stored run or a
   small new one;
5. a recommendation in words.

Whatever a scenario lacks, the section says so in one line naming the field that would add it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sbc import registry
from sbc.errors import SettingError
from sbc.scenario import Process, Scenario
from sbc.seeding import example_rng, validation_rng
from sbc.stats.checks import array_summaries, flagged, predictive_pvalue, thinned_index
from sbc.stats.loo import Loo, compare, group_sums, psis_loo
from sbc.workflows.realfit import RealFit

REPLICATES = 500
"""Replicated data sets per predictive check (prior, and each model's posterior)."""

SE_FACTOR = 2.0
"""An elpd difference within this many standard errors does not single out a model."""

SMALL_DIFF = 4.0
"""An elpd difference below this is small whatever its SE, and its SE is then unreliable
(Sivula, Magnusson, Matamoros & Vehtari 2022; ``arviz_stats.compare`` flags it too)."""


LOO_COLUMNS = (
    "level", "model", "elpd", "se", "p_loo", "elpd_diff", "se_diff", "khat_high", "points",
)  # fmt: skip
"""Columns of the LOO table (``loo.csv``)."""


@dataclass(frozen=True)
class Check:
    """A predictive check: the real data's statistics and their replicated values.

    Attributes
    ----------
    kind : str
        ``prior`` or ``posterior``.
    model : str
        The model (empty for the prior predictive check).
    observed : dict of str to float
        Each statistic of the real data.
    replicates : dict of str to ndarray
        Each statistic of every replicated data set.
    """

    kind: str
    model: str
    observed: dict[str, float]
    replicates: dict[str, np.ndarray]

    def table(self) -> pd.DataFrame:
        """One row per statistic: observed value, p-value, flag, replicates' summary."""
        rows = []
        for name, value in self.observed.items():
            reps = np.asarray(self.replicates[name], dtype=float)
            finite = reps[np.isfinite(reps)]
            p = predictive_pvalue(reps, value)
            rows.append(
                {
                    "check": self.kind,
                    "model": self.model,
                    "statistic": name,
                    "observed": value,
                    "p_value": p,
                    "flagged": flagged(p),
                    "replicates": int(finite.size),
                    "rep_mean": float(finite.mean()) if finite.size else np.nan,
                    "rep_q5": float(np.quantile(finite, 0.05)) if finite.size else np.nan,
                    "rep_q95": float(np.quantile(finite, 0.95)) if finite.size else np.nan,
                }
            )
        return pd.DataFrame(rows)


@dataclass
class Validation:
    """Everything the validation page shows; ``notes`` hold one line per missing part.

    Attributes
    ----------
    fits : list of RealFit
        Each model's fit to the real data.
    checks : list of Check
        The prior predictive check, then each model's posterior predictive check.
    loo : pandas.DataFrame
        One row per (level, model): ``elpd``, ``se``, ``p_loo``, ``elpd_diff`` (model minus
        the best, so 0 for the best and negative otherwise), ``se_diff``, ``khat_high``
        (points with Pareto k-hat above 0.7), ``points`` (observations or groups).
    sbc : pandas.DataFrame or None
        One row per model: ``verdict``, ``calibrated``, ``healthy_share``, ``fits``.
    sbc_source : str
        Where the SBC verdicts come from (a folder's name, or a new run's size).
    notes : dict of str to list of str
        Section (``prior``, ``posterior``, ``loo``, ``shrinkage``, ``sbc``) -> lines saying
        what the scenario lacks there and which field would add it.
    """

    fits: list[RealFit]
    checks: list[Check] = field(default_factory=list)
    loo: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LOO_COLUMNS))
    sbc: pd.DataFrame | None = None
    sbc_source: str = ""
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, section: str, line: str) -> None:
        """Add a line to a section's notes."""
        self.notes.setdefault(section, []).append(line)

    def check_table(self) -> pd.DataFrame:
        """Every check's rows (``checks.csv``)."""
        tables = [c.table() for c in self.checks]
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def statistics(scenario: Scenario, data: Mapping[str, np.ndarray], design: Any) -> dict[str, float]:
    """The scenario's data statistics, then mean, sd, min and max of every data array."""
    return {**scenario.statistics(data, design), **array_summaries(data)}


def _collect(
    scenario: Scenario,
    design: Any,
    real: Mapping[str, np.ndarray],
    datasets: Callable[[], Any],
    what: str,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The real data's statistics and those of every data set ``datasets()`` yields."""
    observed = statistics(scenario, real, design)
    values: dict[str, list[float]] = {k: [] for k in observed}
    try:
        for data in datasets():
            found = statistics(scenario, {k: data[k] for k in real if k in data}, design)
            for k in observed:
                values[k].append(found.get(k, np.nan))
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise SettingError(
            f"scenario {registry.display_name(scenario)}: {what} raised "
            f"{type(exc).__name__}: {message}"
        ) from None
    return observed, {k: np.asarray(v, dtype=float) for k, v in values.items()}


def prior_predictive(
    scenario: Scenario, design: Any, real: Mapping[str, np.ndarray], count: int, seed: int = 0
) -> Check:
    """``count`` data sets from the scenario's simulator at the real design."""
    rng = validation_rng(seed, "prior predictive")

    def datasets():
        for _ in range(count):
            yield scenario.simulate(design, rng).data

    observed, replicates = _collect(scenario, design, real, datasets, "the simulator")
    return Check("prior", "", observed, replicates)


def _flat(draws: np.ndarray, sample_dims: int = 2) -> np.ndarray:
    """Draws ``(chain, draw, *shape)`` as ``(chain * draw, *shape)``."""
    draws = np.asarray(draws)
    return draws.reshape(-1, *draws.shape[sample_dims:])


def posterior_predictive(
    scenario: Scenario,
    design: Any,
    real: Mapping[str, np.ndarray],
    fit: RealFit,
    count: int,
    seed: int = 0,
) -> Check | str:
    """A model's posterior predictive check, or one line saying why it has none.

    Data sets are drawn at ``count`` posterior draws thinned evenly from the fit: by
    ``Likelihood.sample`` at the estimand draws (any model), else by the simulator's
    ``Process.generate`` at the model's own draws when they carry every parameter
    ``Process.prior`` names.
    """
    rng = validation_rng(seed, f"posterior predictive {fit.model}")
    estimands = {e: _flat(v) for e, v in fit.estimands.items()}
    index = thinned_index(len(next(iter(estimands.values()))), count)
    sample = scenario.likelihood.sample if scenario.likelihood is not None else None
    if sample is not None:

        def datasets():
            drawn = sample({e: v[index] for e, v in estimands.items()}, design, rng)
            for i in range(len(index)):
                yield {k: np.asarray(v)[i] for k, v in drawn.items()}

        what = "Likelihood.sample"
    elif isinstance(scenario.simulate, Process):
        names = list(scenario.simulate.prior(design, example_rng()))
        missing = [n for n in names if n not in fit.draws]
        if missing:
            return (
                f"{fit.model}: no posterior predictive check: its draws lack "
                f"{', '.join(missing)} (of the parameters Process.prior returns); a "
                "Likelihood.sample in the scenario would check every model"
            )
        own = {n: _flat(fit.draws[n]) for n in names}
        generate = scenario.simulate.generate

        def datasets():
            for i in index:
                yield generate(design, {n: v[i] for n, v in own.items()}, rng).data

        what = "Process.generate"
    else:
        return (
            f"{fit.model}: no posterior predictive check: the scenario's likelihood has no "
            "sample (Likelihood(..., sample=...)) and its simulator is not a "
            "sbc.scenario.Process"
        )
    observed, replicates = _collect(scenario, design, real, datasets, what)
    return Check("posterior", fit.model, observed, replicates)


def loo_table(
    scenario: Scenario, design: Any, real: Mapping[str, np.ndarray], fits: Sequence[RealFit]
) -> tuple[pd.DataFrame, list[str]]:
    """PSIS-LOO of every model by observation (and by group), and notes on what is missing."""
    notes: list[str] = []
    likelihood = scenario.likelihood
    if likelihood is None:
        return pd.DataFrame(columns=LOO_COLUMNS), [
            "No LOO comparison: the scenario declares no likelihood (Scenario.likelihood, a "
            "sbc.scenario.Likelihood whose pointwise gives each observation's log density)."
        ]
    levels: dict[str, dict[str, Loo]] = {"observation": {}, "group": {}}
    groups = likelihood.groups(design) if likelihood.groups is not None else None
    if groups is None:
        notes.append(
            "No leave-one-group-out: the likelihood declares no groups (Likelihood.groups)."
        )
    for fit in fits:
        try:
            loglik = np.asarray(likelihood.pointwise(fit.estimands, real, design), dtype=float)
        except Exception as exc:  # a user's likelihood: the page is still written
            message = " ".join(str(exc).split())
            notes.append(
                f"{fit.model}: no LOO: Likelihood.pointwise raised {type(exc).__name__}: {message}"
            )
            continue
        if loglik.ndim != 3:
            notes.append(
                f"{fit.model}: no LOO: Likelihood.pointwise gave shape {loglik.shape}, not "
                "(chain, draw, observations)."
            )
            continue
        if not np.isfinite(loglik).all():
            notes.append(f"{fit.model}: no LOO: its pointwise log-likelihood is not finite.")
            continue
        levels["observation"][fit.model] = psis_loo(loglik)
        if groups is not None:
            labels, index = groups
            levels["group"][fit.model] = psis_loo(group_sums(loglik, index, len(labels)))
    rows = []
    for level, loos in levels.items():
        diffs = compare(loos)
        for model, loo in sorted(loos.items(), key=lambda item: -item[1].elpd):
            rows.append(
                {
                    "level": level,
                    "model": model,
                    "elpd": loo.elpd,
                    "se": loo.se,
                    "p_loo": loo.p_loo,
                    "elpd_diff": diffs[model][0],
                    "se_diff": diffs[model][1],
                    "khat_high": loo.high_k,
                    "points": loo.elpd_i.size,
                }
            )
    return pd.DataFrame(rows, columns=LOO_COLUMNS), notes


def check_stored_run(run: Any, scenario: Scenario, settings: Mapping[str, Any]) -> None:
    """Refuse a stored SBC run of another scenario or other settings (one line).

    Parameters
    ----------
    run : sbc.workflows.loaded.Run
        The stored run.
    scenario : Scenario
        The scenario being validated.
    settings : mapping
        Its resolved settings.
    """
    identity = run.record.get("identity", {})
    name = registry.display_name(scenario)
    if identity.get("scenario") != scenario.name:
        raise SettingError(
            f"--sbc-run {Path(run.out).name} holds a run of scenario {run.scenario}, not {name}"
        )
    stored = identity.get("settings", {})
    wanted = json.loads(json.dumps(dict(settings)))
    changed = sorted(k for k in stored.keys() | wanted.keys() if stored.get(k) != wanted.get(k))
    if changed:
        shown = ", ".join(f"{k}={stored.get(k)!r} (here {wanted.get(k)!r})" for k in changed)
        raise SettingError(
            f"--sbc-run {Path(run.out).name} holds a run of {name} with other settings: {shown}"
        )


def sbc_table(verdicts: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """The SBC verdict and healthy share of each fitted model (NaN where the run lacks it)."""
    columns = ["model", "verdict", "calibrated", "healthy_share", "fits"]
    found = verdicts[columns].set_index("model") if len(verdicts) else None
    rows = []
    for model in models:
        if found is not None and model in found.index:
            rows.append({"model": model, **found.loc[model].to_dict()})
        else:
            rows.append(
                {
                    "model": model,
                    "verdict": "not in the SBC run",
                    "calibrated": np.nan,
                    "healthy_share": np.nan,
                    "fits": 0,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def stored_sbc(
    folder: str | os.PathLike[str],
    scenario: Scenario,
    settings: Mapping[str, Any],
    models: Sequence[str],
) -> tuple[pd.DataFrame, str]:
    """The SBC verdicts of ``models`` from a stored run of this scenario and settings.

    Returns
    -------
    table, source : pandas.DataFrame, str
        :func:`sbc_table`, and a line naming the run (its folder's name, not its path).

    Raises
    ------
    sbc.errors.SettingError
        If the run is of another scenario or other settings.
    sbc.results.store.StoreError
        If the folder holds no readable run.
    """
    from sbc.workflows.loaded import load

    run = load(folder)
    check_stored_run(run, scenario, settings)
    source = f"the stored {run.mode} SBC run {Path(folder).name} ({run.simulations} simulations)"
    return sbc_table(run.verdicts, models), source


def new_sbc(
    scenario: Scenario,
    settings: Mapping[str, Any],
    models: Sequence[str],
    simulations: int,
    out: str | os.PathLike[str],
    execution: Any = None,
    sampling: Any = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, str]:
    """A new prior SBC run of ``models`` at the real design, in ``out`` (resumed if there).

    Returns
    -------
    table, source : pandas.DataFrame, str
        :func:`sbc_table`, and a line naming the run.
    """
    from sbc.backends import Sampling
    from sbc.engine.spec import RunSpec
    from sbc.workflows.run import run_sbc

    spec = RunSpec(
        scenario=scenario,
        settings=dict(settings),
        models=tuple(models),
        simulations=simulations,
        seed=seed,
        sampling=sampling if sampling is not None else Sampling(),
    )
    outcome = run_sbc(spec, out, execution)
    source = f"a new prior SBC run of {simulations} simulations (folder {Path(out).name})"
    return sbc_table(outcome.models, models), source


def validate(
    scenario: Scenario,
    settings: Mapping[str, Any],
    fits: Sequence[RealFit],
    replicates: int = REPLICATES,
    seed: int = 0,
    sbc: tuple[pd.DataFrame, str] | None = None,
) -> Validation:
    """The predictive checks, the LOO comparison and the SBC verdicts of fitted models.

    Parameters
    ----------
    scenario : Scenario
        A scenario with real data.
    settings : mapping
        Its resolved settings.
    fits : sequence of RealFit
        The models fitted to the real data (:func:`sbc.workflows.realfit.fit_models`).
    replicates : int
        Replicated data sets per predictive check.
    seed : int
        Seed of the replicates' streams.
    sbc : (pandas.DataFrame, str), optional
        The SBC verdicts and their source (:func:`stored_sbc` or :func:`new_sbc`).
    """
    design = scenario.design(settings)
    real = scenario.real_data(design)
    out = Validation(list(fits))
    if not scenario.data_statistics:
        out.note(
            "prior",
            "The scenario declares no data statistics (Scenario.data_statistics): only the "
            "mean, sd, min and max of each data array are checked.",
        )
    out.checks.append(prior_predictive(scenario, design, real, replicates, seed))
    for fit in fits:
        found = posterior_predictive(scenario, design, real, fit, replicates, seed)
        if isinstance(found, str):
            out.note("posterior", found)
        else:
            out.checks.append(found)
    out.loo, notes = loo_table(scenario, design, real, fits)
    for line in notes:
        out.note("loo", line)
    if scenario.observed is None:
        out.note(
            "shrinkage",
            "No shrinkage figure: the scenario declares no raw group estimates "
            "(Scenario.observed, a table of estimand, label, observed, weight).",
        )
    if sbc is None:
        out.note(
            "sbc",
            "No SBC verdict on this design: give a stored run of this scenario and settings "
            "with --sbc-run FOLDER, or run a small one with --sbc N (N simulations).",
        )
    else:
        out.sbc, out.sbc_source = sbc
    return out


def _share(value: float) -> str:
    return f"{100 * value:.0f}%" if np.isfinite(value) else "n/a"


def recommendation(validation: Validation) -> list[str]:
    """A few sentences drawn from the checks, the LOO table and the SBC verdicts."""
    lines = []
    loo = validation.loo
    if len(loo):
        for level, rows in loo.groupby("level", sort=False):
            rows = rows.sort_values("elpd", ascending=False)
            best = rows.iloc[0]
            what = "predicts new observations" if level == "observation" else "predicts new groups"
            if len(rows) == 1:
                lines.append(
                    f"Only {best.model} has a LOO estimate ({level}s): nothing to compare."
                )
                continue
            second = rows.iloc[1]
            close = [
                r.model for r in rows.iloc[1:].itertuples()
                if -r.elpd_diff <= SE_FACTOR * r.se_diff
            ]  # fmt: skip
            if close:
                lines.append(
                    f"By LOO ({level}s), {best.model} {what} best, but not distinguishably from "
                    f"{', '.join(close)} (elpd difference within {SE_FACTOR:g} SE): prefer the "
                    "simpler model or the one whose checks pass."
                )
            elif -second.elpd_diff < SMALL_DIFF:
                lines.append(
                    f"By LOO ({level}s), {best.model} {what} best; the next, {second.model}, is "
                    f"{-second.elpd_diff:.1f} lower (SE {second.se_diff:.1f}): more than "
                    f"{SE_FACTOR:g} SE, but a difference below {SMALL_DIFF:g} is small and its "
                    "SE unreliable, so the two predict about equally well."
                )
            else:
                lines.append(
                    f"By LOO ({level}s), {best.model} {what} best; the next, {second.model}, is "
                    f"{-second.elpd_diff:.1f} lower (SE {second.se_diff:.1f}), a clear difference."
                )
            warned = rows[rows["khat_high"] > 0]
            if len(warned):
                counts = ", ".join(
                    f"{r.model} {r.khat_high} of {r.points}" for r in warned.itertuples()
                )
                many = (warned["khat_high"] > 0.1 * warned["points"]).any()
                lines.append(
                    f"Pareto k-hat above 0.7 ({level}s): {counts}. PSIS cannot approximate "
                    "leaving those out"
                    + (
                        ", so the LOO ranking above is not to be trusted (typical when each "
                        "observation is the only data on its own group's parameter); compare "
                        "by K-fold cross-validation instead."
                        if many
                        else "; their elpd is uncertain (refit without them to check)."
                    )
                )
    checks = validation.check_table()
    if len(checks):
        prior = checks[(checks["check"] == "prior") & checks["flagged"]]
        if len(prior):
            stats = ", ".join(f"{r.statistic} (p={r.p_value:.3f})" for r in prior.itertuples())
            lines.append(
                f"The prior predictive check flags {stats}: the real data are unusual under "
                "the prior; check the priors' scales."
            )
        else:
            lines.append("The real data look typical under the prior (no prior check flagged).")
        posterior = checks[checks["check"] == "posterior"]
        for model, rows in posterior.groupby("model", sort=False):
            bad = rows[rows["flagged"]]
            if len(bad):
                stats = ", ".join(f"{r.statistic} (p={r.p_value:.3f})" for r in bad.itertuples())
                lines.append(f"{model}'s posterior predictive check fails on {stats}.")
            else:
                lines.append(f"{model}'s posterior predictive checks pass.")
    if validation.sbc is not None:
        for r in validation.sbc.itertuples():
            if r.verdict == "not in the SBC run":
                lines.append(f"{r.model} has no SBC verdict (not in the SBC run).")
                continue
            word = "calibrated" if r.calibrated else "flagged"
            detail = "" if r.verdict == word else f"{r.verdict}; "
            lines.append(
                f"SBC on this design: {r.model} is {word} "
                f"({detail}{_share(r.healthy_share)} of its fits healthy)."
            )
    return lines


def write_validation(
    out: str | os.PathLike[str],
    scenario: Scenario,
    settings: Mapping[str, Any],
    validation: Validation,
    options: Sequence[tuple[str, Any, Any]] = (),
) -> Path:
    """Write ``fit.csv``, ``checks.csv``, ``loo.csv`` (and ``sbc.csv``) and ``fit.html``.

    Parameters
    ----------
    out : path
        Output folder (created if missing).
    scenario, settings
        The scenario and its resolved settings.
    validation : Validation
        What :func:`validate` computed (with the SBC table added).
    options : sequence of (name, value, default)
        The command's own settings, shown beneath the scenario's.

    Returns
    -------
    Path
        The page.
    """
    from sbc.report.validate_html import render_validation

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.concat([f.table for f in validation.fits], ignore_index=True)
    table.to_csv(out / "fit.csv", index=False)
    validation.check_table().to_csv(out / "checks.csv", index=False)
    validation.loo.to_csv(out / "loo.csv", index=False)
    if validation.sbc is not None:
        validation.sbc.to_csv(out / "sbc.csv", index=False)
    design = scenario.design(settings)
    observed = scenario.observed(design) if scenario.observed is not None else None
    rows = [(s.name, settings[s.name], s.default) for s in scenario.settings]
    path = out / "fit.html"
    text = render_validation(
        registry.display_name(scenario),
        table,
        observed,
        validation,
        recommendation(validation),
        [*rows, *options],
    )
    path.write_text(text, encoding="utf-8")
    return path
