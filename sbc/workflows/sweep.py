"""Sweeps: one SBC run per cell of a grid of scenario settings, and a report across cells.

A sweep specification is a TOML file::

    scenario = "heights"                 # name, file path (relative to this file) or module:OBJECT
    models = ["complete", "none", "partial"]   # optional: the scenario's default models
    inference = ["nuts", "advi"]         # optional: each model fitted by each method
    simulations = 100
    seed = 0                             # optional (default 0), the same for every cell
    thin = "ess"                         # optional: "ess" or a whole number
    test_quantities = true               # optional
    prediction = true                    # optional: held-out elpd and PSIS-LOO per fit
    x = "n_per_group"                    # optional: setting on the x axis (default: first key)

    [settings]                           # optional: fixed settings for every cell
    n_groups = 4

    [sampling]                           # optional: chains, tune, draws, target_accept
    draws = 1000

    [grid]                               # every combination is one cell (one run)
    n_per_group = [2, 5, 20, 100]

``inference`` may also be given in ``[grid]``: the methods are not cells of their own but
models of every cell (``partial`` and ``partial+advi``, fitted to the same simulated data
sets), so the sweep page draws one line per model and method across the grid.

Cell ``n_groups=4,n_per_group=2`` is stored in ``OUT/n_groups=4,n_per_group=2/`` with its
own ``report.html``; ``OUT/sweep.csv`` and ``OUT/index.html`` compare the cells. Every cell
resumes like a run, so re-running an interrupted sweep computes only what is missing. All
cells share the run seed: cell ``k`` simulation ``i`` draws its parameters from the same
stream in every cell (common random numbers), which sharpens comparisons across cells.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sbc import registry
from sbc.backends import Sampling
from sbc.engine.spec import Execution, RunSpec
from sbc.errors import SettingError
from sbc.scenario import Scenario

if TYPE_CHECKING:
    from sbc.report.sweep_html import SweepPage

TOP_KEYS = (
    "scenario",
    "models",
    "inference",
    "simulations",
    "seed",
    "thin",
    "test_quantities",
    "prediction",
    "x",
)
TABLES = ("settings", "sampling", "grid")


class SpecError(SettingError):
    """A sweep specification is unreadable or invalid (reported in one line, exit 2)."""


@dataclass(frozen=True)
class Spec:
    """A parsed and validated sweep specification.

    ``run`` is the run every cell makes, with the fixed settings only; a cell's run is
    ``run`` with its grid values set (:meth:`cell_spec`).
    """

    path: Path
    run: RunSpec
    grid: dict[str, list[Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    x: str = ""

    @property
    def scenario(self) -> Scenario:
        """The swept scenario."""
        return self.run.scenario

    @property
    def models(self) -> tuple[str, ...]:
        """The models every cell runs."""
        return self.run.models

    @property
    def simulations(self) -> int:
        """Simulations per cell."""
        return self.run.simulations

    @property
    def seed(self) -> int:
        """The run seed of every cell."""
        return self.run.seed

    @property
    def other_keys(self) -> list[str]:
        """Grid keys besides the x-axis setting (one line per combination of their values)."""
        return [k for k in self.grid if k != self.x]

    def cells(self) -> list[dict[str, Any]]:
        """Grid values of every cell, in grid order (last key fastest)."""
        keys = list(self.grid)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]

    def cell_spec(self, cell: Mapping[str, Any]) -> RunSpec:
        """The run of one cell (its settings resolved and checked)."""
        settings = registry.resolve_settings(self.scenario, self.settings | dict(cell))
        return replace(self.run, settings=settings)


def cell_name(cell: Mapping[str, Any]) -> str:
    """Folder name of a cell: ``key=value`` pairs joined by commas."""
    return ",".join(f"{k}={v}" for k, v in cell.items())


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate a sweep specification.

    Raises
    ------
    SpecError
        One line naming the file and the problem: unreadable file, invalid TOML, unknown
        or missing keys, wrong types, unknown scenario, model or setting, impossible values.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"cannot read sweep spec {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None

    def fail(problem: str) -> SpecError:
        return SpecError(f"{path}: {problem}")

    unknown = [k for k in raw if k not in TOP_KEYS and k not in TABLES]
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS + TABLES)})")
    for key in ("scenario", "simulations", "grid"):
        if key not in raw:
            raise fail(f"missing key {key!r}")
    ref = raw["scenario"]
    if not isinstance(ref, str) or not ref:
        raise fail(f"scenario must be a name, file path or module:OBJECT, got {ref!r}")
    if not registry.is_registered(ref) and (ref.endswith(".py") or "/" in ref.split(":")[0]):
        if not Path(ref).is_absolute():
            ref = str(path.parent / ref)
    thin = raw.get("thin", "ess")
    if thin != "ess" and (not _whole(thin) or thin < 1):
        raise fail(f"thin must be 'ess' or a whole number of at least 1, got {thin!r}")
    tables = {}
    for key in TABLES:
        table = raw.get(key, {})
        if not isinstance(table, dict):
            raise fail(f"{key} must be a table ([{key}]), got {table!r}")
        tables[key] = table
    grid = dict(tables["grid"])
    inference = raw.get("inference")
    if "inference" in grid:
        if inference is not None:
            raise fail("inference is given both at the top level and in [grid]")
        inference = grid.pop("inference")
    if inference is not None and (
        not isinstance(inference, list)
        or not inference
        or not all(isinstance(m, str) for m in inference)
    ):
        raise fail(f"inference must be a non-empty list of method names, got {inference!r}")
    if not grid:
        raise fail("grid needs at least one setting with a list of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values or not all(_number(v) for v in values):
            raise fail(f"grid.{key} must be a non-empty list of numbers, got {values!r}")
        if len(set(values)) < len(values):
            raise fail(f"grid.{key} repeats a value: {values!r}")
        if key in tables["settings"]:
            raise fail(f"setting {key!r} is both fixed ([settings]) and swept ([grid])")
    fixed = tables["settings"]
    for key, value in fixed.items():
        if not _number(value):
            raise fail(f"settings.{key} must be a number, got {value!r}")
    x = raw.get("x", next(iter(grid)))
    if x not in grid:
        raise fail(f"x must be one of the grid keys ({', '.join(grid)}), got {x!r}")
    models = raw.get("models")
    if models is not None and (not isinstance(models, list) or not models):
        raise fail(f"models must be a non-empty list of model names, got {models!r}")
    try:  # the same checks as the command line's and check_calibration's
        run = RunSpec.build(
            ref,
            settings=fixed,
            models=models,
            simulations=raw["simulations"],
            seed=raw.get("seed", 0),
            sampling=Sampling.from_mapping(tables["sampling"]),
            thin=None if thin == "ess" else thin,
            test_quantities=raw.get("test_quantities", True),
            inference=inference,
            prediction=raw.get("prediction", True),
        )
        spec = Spec(path=path, run=run, grid=grid, settings=fixed, x=x)
        for cell in spec.cells():
            spec.cell_spec(cell)
    except SettingError as exc:
        raise fail(str(exc)) from None
    return spec


def run_sweep(spec: Spec, out: str | os.PathLike[str], execution: Execution | None = None) -> Path:
    """Run (or resume) every cell of a sweep, then write ``sweep.csv`` and ``index.html``.

    Every cell is a run of :func:`sbc.workflows.run.run_sbc`, so its folder holds what any
    run folder holds (``summary.csv``, ``strata.csv``, ``report.html`` ...).

    Parameters
    ----------
    spec : Spec
        The sweep (see :func:`load_spec`).
    out : path
        Sweep folder; cell ``c`` goes to ``out/cell_name(c)``.
    execution : Execution, optional
        Where and how every cell runs.

    Returns
    -------
    Path
        The sweep report ``out/index.html``.
    """
    from sbc.report.sweep_html import write_sweep_report
    from sbc.workflows.run import check, run_sbc

    out = Path(out)
    cells = spec.cells()
    runs = [spec.cell_spec(cell) for cell in cells]
    for run in runs:
        check(run)
    rows = []
    for cell, run in zip(cells, runs, strict=True):
        outcome = run_sbc(run, out / cell_name(cell), execution)
        table = _with_prediction(outcome.models, outcome.results)
        for key, value in reversed(cell.items()):
            table.insert(0, key, value)
        table.insert(0, "cell", cell_name(cell))
        rows.append(table)
    summary = pd.concat(rows, ignore_index=True)
    summary.to_csv(out / "sweep.csv", index=False)
    return write_sweep_report(_page(spec), summary, out)


def _with_prediction(models: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The verdict table of a cell with each model's prediction figures beside it."""
    from sbc.results.prediction import prediction_table

    prediction = prediction_table(results)
    if prediction.empty:
        return models
    keep = ["model", "elpd_in", "elpd_heldout", "elpd_heldout_groups", "elpd_loo"]
    keep += [c for c in prediction if c.endswith("_vs_best")]
    keep += ["loo_pick_share", "best_heldout_share"]
    return models.merge(prediction[keep], on="model", how="left")


def _page(spec: Spec) -> SweepPage:
    from sbc.report.sweep_html import SweepPage

    return SweepPage(
        name=spec.run.name,
        reference=spec.scenario.name,
        grid=spec.grid,
        x=spec.x,
        settings=spec.settings,
        models=spec.models,
        simulations=spec.simulations,
        seed=spec.seed,
    )
