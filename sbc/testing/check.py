"""Calibration checks for test suites: one SBC run of one model, and assertions on it.

:func:`check_calibration` runs the ordinary pipeline (:func:`sbc.engine.runner.run`, then
:mod:`sbc.results.calibration`) for one model of a scenario and returns a
:class:`~sbc.testing.result.CalibrationResult`; :func:`assert_calibrated` and
:func:`assert_miscalibrated` raise an :class:`AssertionError` whose message names the
quantities that failed, their p-values, coverage, sampler health, the report written for
the failing check and the ``sbc run`` command that reproduces it.

Compiled models are cached per process (:func:`sbc.engine.task.compiled`), so checks of the
same scenario, settings and model in one test session compile once with ``jobs=1``; with
``jobs > 1`` joblib reuses its loky worker processes, and their caches, between calls.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sbc import registry
from sbc.backends import Sampling
from sbc.engine.spec import Execution, RunSpec
from sbc.results.calibration import ALPHA
from sbc.scenario import Model, Scenario, SettingError
from sbc.testing import session
from sbc.testing.result import DEFAULT_SAMPLING, CalibrationResult, percent

ScenarioLike = str | Scenario | types.ModuleType
"""A scenario name, file path or ``module:OBJECT``; a ``Scenario``; or a module with one."""


def check_calibration(
    scenario: ScenarioLike,
    model: str | Model,
    *,
    simulations: int = 100,
    seed: int = 0,
    jobs: int = 1,
    settings: Mapping[str, Any] | None = None,
    sampling: Sampling | None = None,
    alpha: float = ALPHA,
    thin: int | None = None,
    test_quantities: bool = True,
    out: str | os.PathLike[str] | None = None,
    inference: str | None = None,
) -> CalibrationResult:
    """Run SBC for one model of a scenario and return its calibration statistics.

    Parameters
    ----------
    scenario : str, Scenario or module
        A registered name (``"heights"``), a scenario file or ``module:OBJECT``, a
        :class:`~sbc.scenario.Scenario` object (a user's own too), or a module defining
        ``SCENARIO``. A scenario object that no module defines at top level can only run
        with ``jobs=1``.
    model : str or Model
        A model of the scenario, by name; or a :class:`~sbc.scenario.Model` object, which
        is checked in place of the scenario's model of that name, or added (``jobs=1``).
    simulations : int
        Number of simulated data sets.
    seed : int
        Run seed: the same seed gives the same result, whatever ``jobs`` is.
    jobs : int
        Worker processes (1 runs in this process).
    settings : mapping, optional
        Scenario settings that differ from the defaults (values or text).
    sampling : Sampling, optional
        Sampler settings (default: :class:`sbc.backends.Sampling`'s defaults).
    alpha : float
        Family-wise level of the verdict: a quantity fails when its Holm-adjusted
        p-value (arviz-stats' ``pot_c`` test, Holm over the model's quantities) is below it.
    thin : int, optional
        Fixed thinning factor (default: from each fit's ESS).
    test_quantities : bool
        Also rank the scenario's test quantities (log-likelihood ...).
    out : path, optional
        Run folder. If it holds this same check already, the stored simulations are
        reused (the model's code is not compared: clear it after changing a model). By
        default a fresh folder under the session's reports folder.
    inference : str, optional
        Fit the model by this method (``"advi"``, ``"laplace"``, ``"pathfinder+psis"`` ...):
        the same as naming the model ``MODEL+METHOD``. ``None`` or ``"nuts"``: the model's
        own backend.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    sbc.scenario.SettingError
        An unknown scenario, model or setting, an impossible value, or a scenario that
        fails its pre-run check (one line naming the problem).
    """
    from sbc.workflows.run import run_sbc

    if not 0 < alpha < 1:
        raise SettingError(f"alpha must lie in (0, 1), got {alpha!r}")
    resolved, name = _with_model(registry.resolve(scenario), model)
    if inference is not None:
        name = registry.with_inference([name], [inference])[0]
    spec = RunSpec.build(
        resolved,
        settings=settings,
        models=[name],
        simulations=simulations,
        seed=seed,
        sampling=sampling if sampling is not None else DEFAULT_SAMPLING,
        thin=thin,
        test_quantities=test_quantities,
    )
    execution = Execution(jobs=jobs)
    if not execution.in_process and not registry.is_portable(resolved):
        raise SettingError(
            f"scenario {spec.name} is an object that no importable "
            "module or file defines at top level (a script's own objects do not count), so "
            "worker processes cannot load it: define it at module level, or use jobs=1"
        )
    folder = Path(out) if out is not None else session.new_folder(spec.name, name)
    outcome = run_sbc(spec, folder, execution)
    summary = outcome.models.iloc[0].to_dict()
    return CalibrationResult(
        scenario=spec.name,
        reference=resolved.name,
        model=name,
        settings=dict(spec.settings),
        defaults=resolved.defaults,
        simulations=simulations,
        seed=seed,
        sampling=spec.sampling,
        alpha=alpha,
        out=folder,
        results=outcome.results,
        quantities=outcome.quantities,
        summary=summary,
        temporary=out is None,
        thin=thin,
        test_quantities=test_quantities,
    )


def assert_calibrated(
    scenario: ScenarioLike | CalibrationResult,
    model: str | Model | None = None,
    *,
    max_error_share: float = 0.0,
    report: bool = True,
    **check: Any,
) -> CalibrationResult:
    """Assert that a model is calibrated: no quantity's ranks depart from uniform.

    Parameters
    ----------
    scenario : str, Scenario, module or CalibrationResult
        What :func:`check_calibration` takes, or a result it returned.
    model : str or Model
        The model (not needed with a result).
    max_error_share : float
        Largest share of fits allowed to raise (default: none).
    report : bool
        Write the HTML report of a failing check (its path is in the message).
    **check
        Passed to :func:`check_calibration` (``simulations``, ``seed``, ``settings`` ...).

    Returns
    -------
    CalibrationResult
        The result, if calibrated.

    Raises
    ------
    AssertionError
        Naming the quantities that failed, their p-values, coverage and sampler health,
        the report written, and the ``sbc run`` command that reproduces the check.
    """
    result = _result(scenario, model, check)
    problems = []
    if not result.tested:
        problems.append("no fit succeeded, so nothing could be tested")
    elif not result.calibrated:
        names = ", ".join(
            f"{e} (p={p:.2g})" for e, p in result.failed[["estimand", "p_holm"]].values
        )
        problems.append(f"ranks not uniform for {names}")
    if result.tested and result.error_share > max_error_share:
        problems.append(f"{percent(result.error_share)} of fits raised")
    if problems:
        _fail(result, f"{result.context()} is not calibrated: {'; '.join(problems)}", report)
    _tidy(result)
    return result


def assert_miscalibrated(
    scenario: ScenarioLike | CalibrationResult,
    model: str | Model | None = None,
    *,
    on: str | Iterable[str] | None = None,
    max_error_share: float = 0.0,
    report: bool = True,
    **check: Any,
) -> CalibrationResult:
    """Assert that SBC flags a model (a planted bug, a wrong prior): some quantity fails.

    Parameters
    ----------
    scenario, model, max_error_share, report, **check
        As for :func:`assert_calibrated`.
    on : str or iterable of str, optional
        Quantities (``tau``) or groups (``country_mean``) that must each be flagged.

    Returns
    -------
    CalibrationResult
        The result, if flagged as required.

    Raises
    ------
    AssertionError
        If no quantity (or not every quantity in ``on``) is flagged, or too many fits
        raised; with the smallest p-values, the report and the rerun command.
    """
    result = _result(scenario, model, check)
    wanted = [on] if isinstance(on, str) else list(on or ())
    problems = []
    if not result.tested:
        problems.append("no fit succeeded, so nothing could be tested")
    elif result.calibrated:
        best = result.quantities.nsmallest(1, "p_holm").iloc[0]
        problems.append(
            f"every quantity passed (smallest Holm p = {best['p_holm']:.2g}, {best['estimand']}); "
            "more simulations give more power"
        )
    else:
        missed = [n for n, hit in result.flagged(wanted).items() if not hit]
        if missed:
            flagged = ", ".join(result.failed["estimand"].head(5))
            problems.append(f"{', '.join(missed)} not flagged (flagged: {flagged})")
    if result.tested and result.error_share > max_error_share:
        problems.append(f"{percent(result.error_share)} of fits raised")
    if problems:
        _fail(
            result, f"{result.context()} was expected to be flagged: {'; '.join(problems)}", report
        )
    _tidy(result)
    return result


def bonferroni(alpha: float, tests: int) -> float:
    """Per-test level keeping the chance of any false alarm over ``tests`` checks <= ``alpha``.

    Use it as ``alpha=`` of every example of a property checked over many designs, with
    ``tests`` the number of examples that can run (``max_examples`` plus explicit ones).
    """
    if tests < 1:
        raise ValueError(f"tests must be at least 1, got {tests}")
    return alpha / tests


_AUGMENTED: dict[tuple[int, int], tuple[Scenario, Model, Scenario]] = {}
"""(id of scenario, id of model) -> (both, the scenario with that model), held so ids stay
unique and each pair is one scenario (one compile) however often it is checked."""


def _with_model(scenario: Scenario, model: str | Model) -> tuple[Scenario, str]:
    """The scenario holding ``model``, and its name."""
    if isinstance(model, str):
        registry.model(scenario, model)
        return scenario, model
    if not isinstance(model, Model):
        raise SettingError(f"model must be a model name or a sbc.scenario.Model, got {model!r}")
    if any(m is model for m in scenario.models):
        return scenario, model.name
    key = (id(scenario), id(model))
    if key not in _AUGMENTED:
        models = (*(m for m in scenario.models if m.name != model.name), model)
        declared = registry.display_name(scenario)
        augmented = dataclasses.replace(scenario, name=declared, models=models)
        _AUGMENTED[key] = (scenario, model, registry.resolve(augmented))
    return _AUGMENTED[key][2], model.name


def _result(
    scenario: ScenarioLike | CalibrationResult, model: str | Model | None, check: dict[str, Any]
) -> CalibrationResult:
    if isinstance(scenario, CalibrationResult):
        if model is not None or check:
            raise TypeError("give either a CalibrationResult, or a scenario, model and options")
        return scenario
    if model is None:
        raise TypeError("a model is needed (its name, or a sbc.scenario.Model)")
    return check_calibration(scenario, model, **check)


def _fail(result: CalibrationResult, headline: str, report: bool) -> None:
    path = None
    if report:
        try:
            path = result.write_report()
        except Exception as exc:  # a report that cannot be drawn must not hide the failure
            headline += f" (the report could not be written: {type(exc).__name__}: {exc})"
    where = f"report: {path}" if path is not None else f"results: {result.out}"
    message = f"{headline}\n{result.describe()}\n{where}"
    error = AssertionError(message)
    session.record(
        session.Failure(
            test=session.STATE.test,
            scenario=result.scenario,
            model=result.model,
            headline=headline,
            message=message,
            report=path,
            folder=result.out,
            error=error,
        )
    )
    raise error


def _tidy(result: CalibrationResult) -> None:
    """Remove a passing check's folder if the check chose it (results stay in memory)."""
    if result.temporary and not session.STATE.keep:
        shutil.rmtree(result.out, ignore_errors=True)
