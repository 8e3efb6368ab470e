"""Sweeps: one SBC run per cell of a grid of scenario settings, and a report across cells.

A sweep specification is a TOML file::

    scenario = "heights"                 # name, file path (relative to this file) or module:OBJECT
    models = ["complete", "none", "partial"]   # optional: the scenario's default models
    simulations = 100
    seed = 0                             # optional (default 0), the same for every cell
    thin = "ess"                         # optional: "ess" or a whole number
    test_quantities = true               # optional
    x = "n_per_group"                    # optional: setting on the x axis (default: first key)

    [settings]                           # optional: fixed settings for every cell
    n_groups = 4

    [sampling]                           # optional: chains, tune, draws, target_accept
    draws = 1000

    [grid]                               # every combination is one cell (one run)
    n_per_group = [2, 5, 20, 100]

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import scenarios
from sbc.backends import ADAPTATIONS, Sampling
from sbc.scenario import Scenario, SettingError

TOP_KEYS = ("scenario", "models", "simulations", "seed", "thin", "test_quantities", "x")
TABLES = ("settings", "sampling", "grid")
SAMPLING_KEYS = {
    "chains": int,
    "tune": int,
    "draws": int,
    "target_accept": float,
    "adaptation": str,
}


class SpecError(ValueError):
    """A sweep specification is unreadable or invalid (reported in one line, exit 2)."""


@dataclass(frozen=True)
class Spec:
    """A parsed and validated sweep specification."""

    path: Path
    scenario: Scenario
    models: tuple[str, ...]
    simulations: int
    grid: dict[str, list[Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    sampling: Sampling = field(default_factory=Sampling)
    thin: int | None = None
    test_quantities: bool = True
    x: str = ""

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
    if not scenarios.is_registered(ref) and (ref.endswith(".py") or "/" in ref.split(":")[0]):
        if not Path(ref).is_absolute():
            ref = str(path.parent / ref)
    try:
        scenario = scenarios.get(ref)
    except SettingError as exc:
        raise fail(str(exc)) from None
    models = raw.get("models", scenario.default_models)
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise fail(f"models must be a non-empty list of model names, got {models!r}")
    if len(set(models)) < len(models):
        raise fail(f"models names a model twice: {models!r}")
    simulations = raw["simulations"]
    if not _whole(simulations) or simulations < 1:
        raise fail(f"simulations must be a whole number of at least 1, got {simulations!r}")
    seed = raw.get("seed", 0)
    if not _whole(seed) or seed < 0:
        raise fail(f"seed must be a whole number of at least 0, got {seed!r}")
    thin = raw.get("thin", "ess")
    if thin != "ess" and (not _whole(thin) or thin < 1):
        raise fail(f"thin must be 'ess' or a whole number of at least 1, got {thin!r}")
    test_quantities = raw.get("test_quantities", True)
    if not isinstance(test_quantities, bool):
        raise fail(f"test_quantities must be true or false, got {test_quantities!r}")
    tables = {}
    for key in TABLES:
        table = raw.get(key, {})
        if not isinstance(table, dict):
            raise fail(f"{key} must be a table ([{key}]), got {table!r}")
        tables[key] = table
    sampling = _sampling(tables["sampling"], fail)
    grid = tables["grid"]
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
    spec = Spec(
        path=path,
        scenario=scenario,
        models=tuple(models),
        simulations=simulations,
        grid=grid,
        settings=fixed,
        seed=seed,
        sampling=sampling,
        thin=None if thin == "ess" else thin,
        test_quantities=test_quantities,
        x=x,
    )
    try:
        for name in spec.models:
            scenario.model(name)
        for cell in spec.cells():
            scenarios.resolve_settings(scenario, fixed | cell)
    except SettingError as exc:
        raise fail(str(exc)) from None
    return spec


def _sampling(table: Mapping[str, Any], fail: Any) -> Sampling:
    values = {}
    for key, value in table.items():
        if key not in SAMPLING_KEYS:
            raise fail(f"unknown key sampling.{key} (known: {', '.join(SAMPLING_KEYS)})")
        if SAMPLING_KEYS[key] is int:
            if not _whole(value) or value < (0 if key == "tune" else 1):
                raise fail(f"sampling.{key} must be a whole number, got {value!r}")
        elif SAMPLING_KEYS[key] is str:
            if value not in ADAPTATIONS:
                raise fail(f"sampling.{key} must be one of {', '.join(ADAPTATIONS)}, got {value!r}")
        elif not _number(value) or not 0 < value < 1:
            raise fail(f"sampling.{key} must lie in (0, 1), got {value!r}")
        values[key] = value
    return Sampling(**values)


def run_sweep(
    spec: Spec,
    out: str | os.PathLike[str],
    *,
    jobs: int = 1,
    progress: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Path:
    """Run (or resume) every cell of a sweep, then write ``sweep.csv`` and ``index.html``.

    Parameters
    ----------
    spec : Spec
        The sweep (see :func:`load_spec`).
    out : path
        Sweep folder; cell ``c`` goes to ``out/cell_name(c)``.
    jobs, progress, backend, scheduler
        As for :func:`sbc.runner.run`.

    Returns
    -------
    Path
        The sweep report ``out/index.html``.
    """
    from sbc.calibration import estimand_table, model_table
    from sbc.checks import check_scenario
    from sbc.report.html import write_report
    from sbc.report.sweep_html import write_sweep_report
    from sbc.runner import run
    from sbc.store import RunStore

    out = Path(out)
    scenario = spec.scenario
    cells = spec.cells()
    resolved = [scenarios.resolve_settings(scenario, spec.settings | cell) for cell in cells]
    for settings in resolved:
        check_scenario(scenario, settings, spec.models)
    rows = []
    for cell, settings in zip(cells, resolved, strict=True):
        folder = out / cell_name(cell)
        before = len(RunStore(folder).finished()) if (folder / "run.json").exists() else -1
        results = run(
            scenario,
            settings,
            spec.models,
            spec.simulations,
            folder,
            seed=spec.seed,
            sampling=spec.sampling,
            thin=spec.thin,
            jobs=jobs,
            progress=progress,
            test_quantities=spec.test_quantities,
            backend=backend,
            scheduler=scheduler,
        )
        estimands = estimand_table(results)
        if before < spec.simulations or not (folder / "report.html").exists():
            estimands.to_csv(folder / "summary.csv", index=False)
            write_report(folder)
        table = model_table(results, estimands)
        for key, value in reversed(cell.items()):
            table.insert(0, key, value)
        table.insert(0, "cell", cell_name(cell))
        rows.append(table)
    summary = pd.concat(rows, ignore_index=True)
    summary.to_csv(out / "sweep.csv", index=False)
    return write_sweep_report(spec, summary, out)
