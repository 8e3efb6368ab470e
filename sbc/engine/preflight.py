"""Check a scenario before a run: catch its mistakes in one line, before any work starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sbc import registry, seeding
from sbc.errors import SettingError, one_line
from sbc.scenario import Process, Scenario


class ScenarioCheckError(SettingError):
    """A scenario fails its pre-run check (one simulated data set from the example stream)."""


def check_scenario(scenario: Scenario, settings: Mapping[str, Any], models: Sequence[str]) -> None:
    """Check a scenario before a run by simulating data sets from fixed streams.

    Catches what is detectable without fitting: a design, estimand list or simulator that
    raises, a truth without some estimand (or not a finite number), data that is not a
    mapping of numeric arrays, data whose shapes change between simulations, and a model
    whose data containers or response are missing from the data, and a process's
    ``new_groups`` that raises or changes the data's shapes. Problems a fit reveals
    (a model without draws of some estimand) become that fit's ``error``.

    Raises
    ------
    ScenarioCheckError
        One line naming the scenario (and the model) and the problem.
    """
    label = f"scenario {display(scenario)}"

    def fail(problem: str, model: str | None = None) -> None:
        where = f"{label}, model {model}" if model else label
        raise ScenarioCheckError(f"{where}: {problem}")

    for name in models:
        registry.model(scenario, name)
    try:
        design = scenario.design(dict(settings))
        estimands = tuple(scenario.estimands(design))
    except Exception as exc:
        fail(f"building the design raised {one_line(exc)}")
    if not estimands or not all(isinstance(e, str) for e in estimands):
        fail(f"estimands(design) must give a non-empty tuple of names, got {estimands!r}")
    shapes = None
    for rng in (seeding.example_rng(), seeding.data_rng(0, 0)):
        try:
            simulation = scenario.simulate(design, rng)
            truth, data = simulation.truth, simulation.data
        except Exception as exc:
            fail(f"simulate raised {one_line(exc)}")
        missing = [e for e in estimands if e not in truth]
        if missing:
            fail(f"simulated truth lacks estimand {', '.join(missing)}")
        for e in estimands:
            value = truth[e]
            if np.ndim(value) != 0 or not np.isfinite(_float(value)):
                fail(f"true {e} must be one finite number, got {value!r}")
        if not isinstance(data, Mapping) or not data:
            fail(f"simulated data must be a non-empty mapping of arrays, got {type(data).__name__}")
        found = {}
        for key, values in data.items():
            array = np.asarray(values)
            if array.dtype.kind not in "biuf":
                fail(f"data {key!r} must be numeric, got dtype {array.dtype}")
            if not np.isfinite(array).all():
                fail(f"data {key!r} has non-finite values")
            found[key] = array.shape
        if shapes is not None and found != shapes:
            changed = sorted(
                k for k in found.keys() | shapes.keys() if found.get(k) != shapes.get(k)
            )
            fail(
                f"data shape changes between simulations ({', '.join(changed)}: "
                f"{[shapes.get(k) for k in changed]} then {[found.get(k) for k in changed]}); "
                "a model is compiled once for one shape"
            )
        shapes = found
    process = scenario.simulate
    if isinstance(process, Process) and process.new_groups is not None:
        rng = seeding.example_rng()
        try:
            params = process.new_groups(design, process.prior(design, rng), rng)
            fresh = process.generate(design, params, rng).data
        except Exception as exc:
            fail(f"new_groups (held-out new groups) raised {one_line(exc)}")
        found = {k: np.shape(v) for k, v in fresh.items()}
        if found != shapes:
            fail(f"data of new groups has shapes {found}, the data {shapes}")
    for name in models:
        backend = registry.model(scenario, name).backend
        keys = tuple(getattr(backend, "data", ())) + (
            (backend.response,) if isinstance(getattr(backend, "response", None), str) else ()
        )
        absent = [k for k in keys if k not in shapes]
        if absent:
            fail(f"data has no {', '.join(map(repr, absent))} (has {', '.join(shapes)})", name)
        applicable = getattr(backend, "check", None)  # optional: Backend.check
        if callable(applicable):
            try:
                applicable(design, data)
            except ValueError as exc:
                fail(str(exc), name)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def display(scenario: Scenario) -> str:
    """The scenario's name as users wrote it (registered name, file or module:object)."""
    return registry.display_name(scenario)
