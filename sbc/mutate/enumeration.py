"""Every generated mutant of a scenario's model, with its equivalence verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sbc import seeding
from sbc.mutate.backend import (
    MutationError,
    default_base,
    find_site,
    graph_models,
    is_generated,
    mutant_name,
    mutate_graph,
    parse_name,
    token,
)
from sbc.mutate.equivalence import Probe, equivalence, observable
from sbc.mutate.graph import ModelView
from sbc.mutate.operators import OPERATORS, sites, skipped

if TYPE_CHECKING:
    from sbc.scenario import Scenario


@dataclass(frozen=True)
class Mutant:
    """A generated mutant of one model.

    Parameters
    ----------
    name : str
        Its model name (``operator:variable`` or ``operator:variable@model``).
    operator : str
        The mutation operator.
    target : str
        The model variable it rewrites.
    base : str
        The correct model it is a mutant of.
    description : str
        What the rewrite does.
    equivalent : str or None
        Why it changes nothing observable (see :mod:`sbc.mutate.equivalence`), or ``None``.
    """

    name: str
    operator: str
    target: str
    base: str
    description: str
    equivalent: str | None = None


@dataclass(frozen=True)
class Enumeration:
    """The generated mutants of one model and what could not be mutated.

    Parameters
    ----------
    base : str
        The mutated model.
    mutants : tuple of Mutant
        Its generated mutants.
    skipped : mapping of str to str
        Free variables no prior operator applies to, with their distribution.
    broken : mapping of str to str
        Mutants whose rewrite PyMC rejected, with the error (left out of ``mutants``).
    """

    base: str
    mutants: tuple[Mutant, ...]
    skipped: Mapping[str, str]
    broken: Mapping[str, str] = field(default_factory=dict)


def enumerate_mutants(
    scenario: Scenario,
    settings: Mapping[str, Any],
    base: str | None = None,
    operators: Sequence[str] | None = None,
) -> Enumeration:
    """Every generated mutant of model ``base`` (default :func:`default_base`).

    The model is built for the scenario's design and its fixed example data set, exactly
    as a worker builds it before compiling.

    Raises
    ------
    MutationError
        When ``base`` is not a PyMC or Bambi model of the scenario, or an operator is
        unknown.
    """
    default = default_base(scenario)
    base = base or default
    if base is None or base not in graph_models(scenario):
        choices = ", ".join(graph_models(scenario)) or "none"
        raise MutationError(f"no PyMC or Bambi model {base!r} to mutate (mutable: {choices})")
    unknown = [op for op in operators or () if op not in OPERATORS]
    if unknown:
        raise MutationError(
            f"unknown operator {', '.join(unknown)} (known: {', '.join(OPERATORS)})"
        )
    model = scenario.model(base)
    design = scenario.design(dict(settings))
    example = scenario.simulate(design, seeding.example_rng()).data
    graph = model.backend.graph(design, example)
    try:
        view = ModelView.of(graph.model)
    except Exception as exc:  # e.g. initial values set by hand, which PyMC cannot rewrite
        raise MutationError(f"the graph of {base} cannot be rewritten ({exc})") from None
    try:
        probe = Probe.of(graph.model, graph.stored, model.estimands, design)
        reads = probe.reads()
    except Exception:  # no prior draws: assume the estimands read everything
        probe, reads = None, set(graph.stored)
    seen = observable(view, reads)
    mutants: dict[str, Mutant] = {}
    broken: dict[str, str] = {}
    for site in sites(view, list(operators) if operators else None):
        name = mutant_name(site.operator, site.target, base, default)
        if name in mutants:
            continue  # two variables whose names reduce to the same token: keep the first
        try:  # rewrite now, as a worker will: a rewrite PyMC rejects is left out here
            mutate_graph(graph, site.operator, token(site.target))
        except Exception as exc:
            broken[name] = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            continue
        mutants[name] = Mutant(
            name,
            site.operator,
            site.target,
            base,
            site.description,
            equivalence(view, site, seen, probe),
        )
    return Enumeration(base, tuple(mutants.values()), skipped(view), broken)


def check_generated(scenario: Scenario, settings: Mapping[str, Any], models: Sequence[str]) -> None:
    """Check that every generated mutant among ``models`` applies to its model's graph.

    Raises
    ------
    MutationError
        Naming the first mutant whose operator does not apply to the variable it names.
    """
    declared = {m.name for m in scenario.models}
    wanted = [m for m in models if m not in declared and is_generated(m)]
    views: dict[str, ModelView] = {}
    for name in wanted:
        operator, target, base = parse_name(name)
        base = base or default_base(scenario)
        if base not in views:
            design = scenario.design(dict(settings))
            example = scenario.simulate(design, seeding.example_rng()).data
            views[base] = ModelView.of(scenario.model(base).backend.graph(design, example).model)
        try:
            find_site(views[base], operator, target)
        except MutationError as exc:
            raise MutationError(f"mutant {name}: {exc}") from None
