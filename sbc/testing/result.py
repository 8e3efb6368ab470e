"""The outcome of a calibration check, and how it reads in an assertion message."""

from __future__ import annotations

import dataclasses
import shlex
import site
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sbc import registry
from sbc.backends import Sampling
from sbc.results.calibration import VERDICT_TEST, estimand_group

DEFAULT_SAMPLING = Sampling()


@dataclass(frozen=True)
class CalibrationResult:
    """The outcome of one calibration check of one model.

    Attributes
    ----------
    scenario : str
        The scenario's declared name.
    reference : str
        Its reference (registered name, file path or ``module:OBJECT``).
    model : str
        The model checked.
    settings : dict
        The resolved scenario settings.
    defaults : dict
        The scenario's default settings (to show what differs).
    simulations, seed : int
        Simulation count and run seed.
    sampling : Sampling
        Sampler settings.
    alpha : float
        Family-wise level of the verdict (Holm over the model's quantities).
    out : Path
        The run folder (``results.parquet``, ``run.json``; ``report.html`` once written).
    results : pandas.DataFrame
        The results table (:data:`sbc.results.schema.COLUMNS`).
    quantities : pandas.DataFrame
        :func:`sbc.results.calibration.estimand_table` of the results: one row per quantity.
    summary : dict
        The model's row of :func:`sbc.results.calibration.model_table` (coverage, health ...).
    temporary : bool
        ``out`` was chosen by the check (removed after a passing assertion).
    thin : int or None
        Fixed thinning, or ``None`` (from the ESS).
    test_quantities : bool
        Whether test quantities were ranked.
    """

    scenario: str
    reference: str
    model: str
    settings: dict[str, Any]
    defaults: dict[str, Any]
    simulations: int
    seed: int
    sampling: Sampling
    alpha: float
    out: Path
    results: pd.DataFrame
    quantities: pd.DataFrame
    summary: dict[str, Any]
    temporary: bool = False
    thin: int | None = None
    test_quantities: bool = True

    def __repr__(self) -> str:
        verdict = "calibrated" if self.calibrated else "NOT calibrated"
        if not self.tested:
            verdict = "untested (no fit succeeded)"
        return f"<CalibrationResult {self.context()}: {verdict}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict row and the ECDF-difference figures of the model."""
        import json

        from sbc.report.notebook import inline_html

        path = self.out / "run.json"
        if path.exists():  # a passing check's temporary folder is removed
            record = json.loads(path.read_text(encoding="utf-8"))
        else:
            identity = {"scenario": self.reference, "models": [self.model], "seed": self.seed}
            record = {"name": self.scenario, "identity": identity}
        return inline_html(self.results, record, self.quantities)

    @property
    def tested(self) -> bool:
        """Whether any quantity has a p-value (some fits succeeded)."""
        return bool(self.quantities["p_holm"].notna().any()) if len(self.quantities) else False

    @property
    def failed(self) -> pd.DataFrame:
        """Quantities whose Holm-adjusted p-value is below :attr:`alpha`, smallest first."""
        table = self.quantities
        return table[table["p_holm"] < self.alpha].sort_values("p_holm")

    @property
    def calibrated(self) -> bool:
        """No quantity's ranks depart from uniform at family-wise level :attr:`alpha`."""
        return self.tested and self.failed.empty

    @property
    def error_share(self) -> float:
        """Share of fits that raised."""
        return float(self.summary.get("error_share", 0.0))

    @property
    def changed_settings(self) -> dict[str, Any]:
        """Settings that differ from the scenario's defaults."""
        return {k: v for k, v in self.settings.items() if self.defaults.get(k) != v}

    def flagged(self, names: Iterable[str]) -> dict[str, bool]:
        """For each quantity or group name (``tau``, ``country_mean``): is any member flagged."""
        failed = set(self.failed["estimand"])
        groups = {estimand_group(e) for e in failed}
        return {name: name in failed or name in groups for name in names}

    def write_report(self) -> Path:
        """The run folder's HTML report (written with the run); rewritten if it was removed."""
        path = self.out / "report.html"
        if path.is_file():
            return path
        from sbc.workflows.run import finish

        return finish(self.out, self.results).report

    def command(self) -> str | None:
        """The ``sbc run`` command that reproduces this check.

        ``None`` for a scenario object built in this process, which no command can name.
        """
        if not registry.is_portable(self.reference):
            return None
        parts = ["sbc run", _quote(self.reference), "--models", _quote(self.model)]
        parts += ["--simulations", str(self.simulations), "--seed", str(self.seed)]
        for key, value in self.changed_settings.items():
            parts += ["--set", _quote(f"{key}={value}")]
        for key, value in dataclasses.asdict(self.sampling).items():
            if value != getattr(DEFAULT_SAMPLING, key):
                parts += [f"--{key.replace('_', '-')}", str(value)]
        if self.thin is not None:
            parts += ["--thin", str(self.thin)]
        if not self.test_quantities:
            parts.append("--no-test-quantities")
        root = _import_root(self.reference)
        prefix = f"PYTHONPATH={_quote(str(root))} " if root is not None else ""
        return prefix + " ".join(parts)

    def describe(self, rows: int = 10) -> str:
        """Several lines on the check, for a person to act on.

        The failing quantities (if none, the least uniform) with their p-values, coverage
        and z-scores; then coverage, sampler health, the first error and the rerun command.
        """
        table = self.failed if not self.failed.empty else self.quantities.nsmallest(5, "p_holm")
        shown = table.head(rows)
        columns = ["estimand", "p_holm", VERDICT_TEST, "p_ecdf", "coverage90", "z_mean", "z_sd"]
        lines = [_table(shown[columns].rename(columns={"estimand": "quantity"}))]
        if len(table) > rows:
            lines.append(f"  ... and {len(table) - rows} more")
        s = self.summary
        khat = s.get("khat_share", float("nan"))  # an approximate fit's k-hat above 0.7
        lines.append(
            f"90% coverage over estimands: mean {s['coverage90']:.2f}, worst "
            f"{s['coverage90_min']:.2f} (nominal 0.90); RMSE / prior sd {s['rel_rmse']:.2f}"
        )
        lines.append(
            f"fits: {s['fits']}, raised {percent(s['error_share'])}, divergent "
            f"{percent(s['divergent_share'])}, R-hat > 1.01 {percent(s['rhat_share'])}"
            + (f", k-hat > 0.7 {percent(khat)}" if khat == khat else "")  # NaN for NUTS
        )
        errors = self.results["error"].dropna()
        if len(errors):
            lines.append(f"first error: {errors.iloc[0].splitlines()[-1]}")
        if (command := self.command()) is not None:
            lines.append(f"rerun: {command}")
        return "\n".join(lines)

    def context(self) -> str:
        """One line: scenario/model, simulations, seed and the settings that differ."""
        changed = ", ".join(f"{k}={v}" for k, v in self.changed_settings.items()) or "defaults"
        return (
            f"{self.scenario}/{self.model} ({self.simulations} simulations, seed {self.seed}, "
            f"settings: {changed})"
        )


def percent(share: float) -> str:
    """A share as a percentage with one decimal (``n/a`` for NaN)."""
    return "n/a" if share != share else f"{100 * share:.1f}%"


def _import_root(reference: str) -> Path | None:
    """The folder ``sbc run`` needs on ``PYTHONPATH`` to import a ``module:OBJECT`` reference.

    ``None`` for files, registered names and modules of installed packages.
    """
    module_name, sep, _ = reference.rpartition(":")
    module = sys.modules.get(module_name) if sep else None
    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        return None
    path = Path(file).resolve()
    depth = module_name.count(".") + (path.name == "__init__.py")
    root = path.parents[depth]
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return None if root in installed else root


def _quote(text: str) -> str:
    return shlex.quote(text)


def _table(frame: pd.DataFrame) -> str:
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        text = frame.to_string(index=False, float_format=lambda v: f"{v:.3g}")
    return "\n".join(f"  {line}" for line in text.splitlines())
