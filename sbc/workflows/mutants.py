"""Planted-bug detection (``sbc mutants``): plan the models, run them, analyse, report.

``sbc mutants SCENARIO`` runs a correct model, the scenario's hand-written mutants and the
mutants generated from the correct model's graph (:mod:`sbc.mutate`) on the same simulated
data sets (one run of :mod:`sbc.workflows.run`). :func:`plan` lists the models to run and a
catalogue of what each one is; :func:`run_mutants` runs them and analyses the run
(:mod:`sbc.results.detection`: verdicts, detection power against N, mutation score) and
writes the detection report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from sbc import registry
from sbc.engine.spec import Execution, RunSpec
from sbc.errors import SettingError
from sbc.mutate import MutationError, default_base, enumerate_mutants
from sbc.mutate.backend import graph_models
from sbc.mutate.choice import choose_base
from sbc.results.detection import Analysis, Plan, analyse
from sbc.scenario import Scenario
from sbc.workflows.run import RunOutcome, run_sbc


def plan(
    scenario: Scenario,
    settings: Mapping[str, Any],
    bases: Sequence[str] | None = None,
    operators: Sequence[str] | None = None,
    generated: bool = True,
) -> Plan:
    """The correct models, hand-written and generated mutants of a mutants run.

    Parameters
    ----------
    scenario : Scenario
        The scenario.
    settings : mapping
        Its resolved settings (the graph is built for this design).
    bases : sequence of str, optional
        Correct models to mutate; default :func:`sbc.mutate.choice.choose_base`
        (``partial``, the only PyMC or Bambi model, or the one whose prior matches the
        simulator best). The hand-written mutants run with the chosen model, or with
        ``bases`` that include :func:`sbc.mutate.default_base` (``partial``).
    operators : sequence of str, optional
        Mutation operators to apply (default: all).
    generated : bool
        Generate mutants at all (``False``: hand-written mutants only).

    Raises
    ------
    sbc.errors.SettingError
        For a model that cannot be mutated or an unknown operator (one line).
    """
    try:
        return _plan(scenario, settings, bases, operators, generated)
    except MutationError as exc:
        raise SettingError(f"scenario {registry.display_name(scenario)}: {exc}") from None


def with_inference(chosen: Plan, inference: Sequence[str] | None) -> Plan:
    """The plan's models fitted by each inference method (:func:`sbc.registry.with_inference`).

    Every model, correct or mutant, becomes ``MODEL+METHOD`` for each approximate method
    (``nuts`` keeps the name), and each mutant's base the correct model fitted by the same
    method, so a mutant is judged against its own method's false-alarm rate: does SBC still
    catch the planted bug through an approximation?
    """
    if not inference:
        return chosen
    parts = []
    for method in inference:
        part = chosen.catalogue.copy()
        part["model"] = registry.with_inference(list(part["model"]), [method])
        part["base"] = [b and registry.with_inference([b], [method])[0] for b in part["base"]]
        parts.append(part)
    catalogue = pd.concat(parts, ignore_index=True)
    return replace(chosen, models=list(catalogue["model"]), catalogue=catalogue)


def _plan(
    scenario: Scenario,
    settings: Mapping[str, Any],
    bases: Sequence[str] | None,
    operators: Sequence[str] | None,
    generated: bool,
) -> Plan:
    default = default_base(scenario)
    if bases:
        bases, reasons = list(bases), dict.fromkeys(bases, "chosen with --model")
        hand_base = default if default in bases else None
    else:
        base, why = choose_base(scenario, settings)
        bases, reasons = ([base], {base: why}) if base else ([], {})
        hand_base = base
    rows = [_row(b, "correct", b, "", "", scenario.model(b).description) for b in bases]
    # hand-written mutants are variants of the scenario's correct model
    rows += [
        _row(m, "hand-written", hand_base, "", "", scenario.model(m).description)
        for m in (scenario.mutants if hand_base else [])
    ]
    skipped = {}
    for base in bases if generated else []:
        found = enumerate_mutants(scenario, settings, base, operators)
        skipped[base] = dict(found.skipped) | {
            name: f"rewrite failed: {error}" for name, error in found.broken.items()
        }
        rows += [
            _row(m.name, "generated", base, m.operator, m.target, m.description, m.equivalent)
            for m in found.mutants
        ]
    catalogue = pd.DataFrame(rows, columns=list(_row("", "", "", "", "", "")))
    return Plan(list(catalogue["model"]) if len(catalogue) else [], catalogue, skipped, reasons)


def _why(scenario: Scenario) -> str:
    """Why a scenario without PyMC or Bambi models has no mutants, and what runs instead."""
    if graph_models(scenario):
        return ""
    named = [m.name for m in scenario.models if m.mutant]
    declared = [m.name for m in scenario.models if not m.mutant]
    preferred = [scenario.reference_model, *(n for n in declared if n.startswith("partial"))]
    correct = [next((n for n in preferred if n in declared), declared[0])] if declared else []
    hint = (
        f"; hand-written mutants run when named: sbc run {registry.reference(scenario)} "
        f"--models {','.join(correct + named)}"
        if named
        else ""
    )
    return f": generated mutants need a PyMC or Bambi model (it has none){hint}"


def _row(
    model: str,
    role: str,
    base: str,
    operator: str,
    target: str,
    description: str,
    equivalent: str | None = None,
) -> dict[str, str]:
    return {
        "model": model,
        "role": role,
        "base": base,
        "operator": operator,
        "target": target,
        "description": description,
        "equivalent": equivalent or "",
    }


@dataclass(frozen=True)
class MutantsOutcome:
    """A finished mutants run: the run, its plan, the analysis and the detection report."""

    run: RunOutcome
    plan: Plan
    analysis: Analysis
    notes: list[str]
    report: Path


def run_mutants(
    spec: RunSpec,
    chosen: Plan,
    out: str | os.PathLike[str],
    execution: Execution | None = None,
) -> MutantsOutcome:
    """Run the models of ``chosen`` on the same data sets, analyse and report detection.

    Parameters
    ----------
    spec : RunSpec
        The run (scenario, settings, simulations, seed, sampler); its models are replaced
        by the plan's.
    chosen : Plan
        The models to run (:func:`plan`).
    out : path
        The run folder (it also gets ``mutants.html`` and its tables).
    execution : Execution, optional
        Where and how.

    Raises
    ------
    sbc.errors.SettingError
        If the plan holds no mutant.
    """
    from sbc.report.mutants_html import write_detection_report

    catalogue = chosen.catalogue
    if not len(catalogue) or (catalogue["role"] == "correct").all():
        raise SettingError(f"scenario {spec.name} has no mutants to run{_why(spec.scenario)}")
    spec = replace(spec, models=tuple(chosen.models))
    drawn = list(catalogue.loc[catalogue["role"] != "generated", "model"])
    outcome = run_sbc(spec, out, execution, report_models=drawn)
    analysis = analyse(outcome.results, catalogue, seed=spec.seed)
    notes = [f"mutated: {base}, as {why}" for base, why in chosen.reasons.items()]
    notes += [f"settings: {dict(spec.settings)}", f"seed {spec.seed}", f"sampler: {spec.sampling}"]
    path = write_detection_report(out, analysis, chosen.skipped, spec.name, notes)
    return MutantsOutcome(outcome, chosen, analysis, notes, path)
