"""A finished (or partly finished) run folder as one object: its tables, record and report.

:func:`load` reads a run folder as :class:`Run`; :func:`sbc.api.run` returns the same kind
of object for the run it made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from sbc.report.notebook import inline_html
from sbc.results.arviz import to_arviz
from sbc.results.calibration import estimand_table, model_table
from sbc.results.prediction import comparison_table, prediction_table
from sbc.results.store import RunStore
from sbc.results.strata import strata_table
from sbc.stats.strata import STRATA


@dataclass(frozen=True, eq=False)
class Run:
    """A run folder: results, per-quantity summary, verdicts, strata, record, report.

    Tables are read (or computed from the results) on first use and kept.

    Attributes
    ----------
    out : Path
        The run folder.
    """

    out: Path
    _store: RunStore = field(repr=False, compare=False)

    @cached_property
    def record(self) -> dict[str, Any]:
        """The run's ``run.json``: scenario, settings, models, seed, sampler settings ..."""
        return self._store.record()

    @cached_property
    def results(self) -> pd.DataFrame:
        """``results.parquet``: one row per (simulation, model, quantity)."""
        return self._store.results()

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Calibration statistics per (model, quantity) (``summary.csv``)."""
        return estimand_table(self.results)

    @cached_property
    def verdicts(self) -> pd.DataFrame:
        """One row per model: verdict, coverage, RMSE, sampler health and cost."""
        return model_table(self.results, self.summary)

    @cached_property
    def strata(self) -> pd.DataFrame:
        """Calibration per data stratum (``strata.csv``)."""
        return strata_table(self.results, int(self.record.get("strata", STRATA)))

    @cached_property
    def prediction(self) -> pd.DataFrame:
        """Predictive accuracy per model and PSIS-LOO against the truth (``prediction.csv``)."""
        return prediction_table(self.results)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """PSIS-LOO differences per pair of models against the truth (``comparison.csv``)."""
        return comparison_table(self.results)

    @property
    def scenario(self) -> str:
        """The scenario's name as the user wrote it."""
        name = self.record.get("name")
        return name if isinstance(name, str) and name else str(self.record["identity"]["scenario"])

    @property
    def models(self) -> list[str]:
        """The run's models."""
        return list(self.record["identity"]["models"])

    @property
    def simulations(self) -> int:
        """Finished simulations."""
        return int(self.results["simulation"].nunique()) if len(self.results) else 0

    @property
    def mode(self) -> str:
        """``prior`` or ``posterior`` SBC."""
        return "posterior" if self.record["identity"].get("mode") == "posterior" else "prior"

    def report(self, strata: int | None = None) -> Path:
        """Write (or rewrite) the folder's ``summary.csv``, ``strata.csv`` and ``report.html``.

        Returns
        -------
        Path
            The report file.
        """
        from sbc.workflows.run import finish

        return finish(self.out, self.results, strata=strata).report

    def to_arviz(self, model: str) -> Any:
        """One model's PIT values as an ArviZ ``DataTree`` (see :func:`sbc.results.arviz.to_arviz`).

        ``arviz_plots.plot_ecdf_pit(run.to_arviz("partial"))`` draws ArviZ's own SBC plot.
        """
        return to_arviz(self.results, model, self.record)

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict table and the ECDF-difference figures."""
        return inline_html(self.results, self.record, self.summary if len(self.results) else None)

    def __repr__(self) -> str:
        if self.results.empty:
            return f"<sbc.Run {self.scenario}: no results yet, {self.out}>"
        verdicts = self.verdicts
        calibrated = int(verdicts["calibrated"].sum()) if len(verdicts) else 0
        return (
            f"<sbc.Run {self.scenario}: {self.mode} SBC, {self.simulations} simulations, "
            f"{len(verdicts)} models ({calibrated} calibrated), {self.out}>"
        )


def load(out: str | os.PathLike[str]) -> Run:
    """The run in folder ``out``.

    Raises
    ------
    sbc.results.store.StoreError
        If the folder holds no run (the same words as the command line's).
    """
    store = RunStore(out)
    if not store.results_file.exists() and not store.finished():
        store.results()  # raises what `sbc summary` prints for a folder with no results
    store.record()  # a folder without a readable run.json is refused here
    if not store.results_file.exists():
        store.collect(max(store.finished()) + 1)
    return Run(Path(out), store)
