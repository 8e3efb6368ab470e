"""The run workflow: check, run, and write every file of a run folder.

``sbc run``, each cell of a sweep, ``sbc mutants`` and ``sbc.testing``'s checks all call
:func:`run_sbc`, so every run folder holds the same files by construction:
``results.parquet`` and ``run.json`` (written by the engine as the run goes),
``summary.csv`` (per quantity), ``strata.csv`` (by data stratum) and ``report.html``.
:func:`finish` rewrites the last three from a folder's stored results (``sbc report``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sbc import registry
from sbc.engine import runner
from sbc.engine.preflight import check_scenario
from sbc.engine.runner import Parameters
from sbc.engine.spec import Execution, RunSpec
from sbc.errors import SettingError
from sbc.report import html
from sbc.results.calibration import estimand_table, model_table
from sbc.results.prediction import comparison_table, prediction_table
from sbc.results.store import RunStore
from sbc.results.strata import strata_table
from sbc.stats.strata import STRATA


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its folder and the tables written there.

    Attributes
    ----------
    out : Path
        The run folder.
    results : pandas.DataFrame
        ``results.parquet``: one row per (simulation, model, quantity).
    quantities : pandas.DataFrame
        ``summary.csv``: calibration statistics per (model, quantity).
    models : pandas.DataFrame
        The verdict table: one row per model (:func:`sbc.results.calibration.model_table`).
    strata : pandas.DataFrame
        ``strata.csv``: calibration per data stratum.
    report : Path
        ``report.html``.
    """

    out: Path
    results: pd.DataFrame
    quantities: pd.DataFrame
    models: pd.DataFrame
    strata: pd.DataFrame
    report: Path


def check(spec: RunSpec) -> None:
    """Everything that can be checked before a run: the scenario and the models named.

    Raises
    ------
    sbc.errors.SettingError
        One line naming the scenario (and model) and the problem.
    """
    from sbc.mutate import MutationError, check_generated

    check_scenario(spec.scenario, spec.settings, spec.models)
    try:
        # a generated mutant fitted by an approximate method is checked as the mutant
        models = [registry.split_method(m)[0] for m in spec.models]
        check_generated(spec.scenario, spec.settings, models)
    except MutationError as exc:
        raise SettingError(f"scenario {spec.name}: {exc}") from None


def run_sbc(
    spec: RunSpec,
    out: str | os.PathLike[str],
    execution: Execution | None = None,
    *,
    overwrite: bool = False,
    strata: int | None = None,
    parameters: Parameters | None = None,
    report_models: Sequence[str] | None = None,
) -> RunOutcome:
    """Check, run (or resume) and write a run folder.

    Parameters
    ----------
    spec : RunSpec
        What to compute.
    out : path
        The run folder.
    execution : Execution, optional
        Where and how (default: in this process).
    overwrite : bool
        Start the folder afresh.
    strata : int, optional
        Equal-count strata of each data statistic (default: tertiles).
    parameters : Parameters, optional
        Posterior SBC's parameter source (:func:`sbc.workflows.posterior.parameters`).
    report_models : sequence of str, optional
        Models the report's figures show (default: all; ``sbc mutants`` leaves out its
        many generated mutants). The tables cover every model.

    Returns
    -------
    RunOutcome
    """
    check(spec)
    results = runner.run(spec, out, execution, overwrite=overwrite, parameters=parameters)
    return finish(out, results, strata=strata, report_models=report_models)


def finish(
    out: str | os.PathLike[str],
    results: pd.DataFrame | None = None,
    *,
    strata: int | None = None,
    report_models: Sequence[str] | None = None,
) -> RunOutcome:
    """Write ``summary.csv``, ``strata.csv`` and ``report.html`` from a run's results.

    Parameters
    ----------
    out : path
        The run folder.
    results : pandas.DataFrame, optional
        Its results (read from the folder when not given).
    strata : int, optional
        Equal-count strata of each data statistic (default: the run's own, else tertiles);
        recorded in ``run.json`` so later rewrites use it too.
    report_models : sequence of str, optional
        Models the report's figures show (default: all).

    Raises
    ------
    sbc.results.store.StoreError
        If the folder holds no readable run.
    """
    out = Path(out)
    store = RunStore(out)
    if results is None:
        results = store.results()
    record = store.record()
    k = strata or int(record.get("strata", STRATA))
    quantities = estimand_table(results)
    quantities.to_csv(out / "summary.csv", index=False)
    by_stratum = strata_table(results, k)
    by_stratum.to_csv(out / "strata.csv", index=False)
    _write_prediction(out, results)
    store.annotate("strata", k)
    shown = results if report_models is None else results[results["model"].isin(report_models)]
    report = html.write_report(
        out,
        k,
        results=shown,
        estimands=quantities if report_models is None else None,
        strata_table=by_stratum if report_models is None else None,
    )
    return RunOutcome(
        out, results, quantities, model_table(results, quantities), by_stratum, report
    )


def _write_prediction(out: Path, results: pd.DataFrame) -> None:
    """Write ``prediction.csv`` (per model) and ``comparison.csv`` (per pair of models).

    Only for runs with prediction columns (a scenario with a likelihood, prior SBC).
    """
    table = prediction_table(results)
    if table.empty:
        return
    table.to_csv(out / "prediction.csv", index=False)
    pairs = comparison_table(results)
    if not pairs.empty:
        pairs.to_csv(out / "comparison.csv", index=False)
