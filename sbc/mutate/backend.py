"""Generated mutants as models: their names, and a backend that rewrites before compiling.

A generated mutant is named ``operator:variable`` (``prior_scale_x2:between_sd``) when it
mutates the scenario's default correct model (:func:`default_base`), and
``operator:variable@model`` when it mutates another model. Variable names are reduced to
letters, digits, ``_``, ``.`` and ``-`` (Bambi's ``1|country_sigma`` becomes
``1_country_sigma``), so a name never holds a comma (it fits ``--models a,b``) nor a path
separator. A name alone determines the model, so every process (a loky worker, a Dask
worker) resolves it again with :meth:`sbc.scenario.Scenario.model`, which calls
:func:`generated_model`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from sbc.backends.nutpie import Graph, NutpieFitter, compile_graph
from sbc.mutate.graph import ModelView
from sbc.mutate.operators import OPERATORS, Site, sites

if TYPE_CHECKING:
    from sbc.scenario import Model, Scenario

PREFERRED_BASE = "partial"
"""The model mutated by default when a scenario has it (the generative process)."""


class MutationError(ValueError):
    """A generated mutant's name does not resolve, or its rewrite does not apply."""


def token(variable: str) -> str:
    """A model variable's name as it appears in mutant names."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", variable)


def mutant_name(operator: str, target: str, base: str, default: str | None) -> str:
    """``operator:variable``, with ``@base`` unless ``base`` is the default correct model."""
    name = f"{operator}:{token(target)}"
    return name if base == default else f"{name}@{base}"


def parse_name(name: str) -> tuple[str, str, str | None]:
    """``(operator, variable token, base model or None)`` of a generated mutant's name."""
    operator, sep, rest = name.partition(":")
    target, _, base = rest.partition("@")
    if not sep or not target or operator not in OPERATORS:
        known = ", ".join(OPERATORS)
        raise MutationError(
            f"{name!r} is not a generated mutant name (operator:variable[@model], "
            f"operators: {known})"
        )
    return operator, target, base or None


def is_generated(name: str) -> bool:
    """Whether ``name`` has the form of a generated mutant's name."""
    return ":" in name


def graph_models(scenario: Scenario) -> list[str]:
    """Declared, non-mutant models whose backend builds a PyMC graph (PyMC or Bambi)."""
    return [
        m.name
        for m in scenario.models
        if not m.mutant and callable(getattr(m.backend, "graph", None))
    ]


def default_base(scenario: Scenario) -> str | None:
    """The model mutated by default.

    ``partial`` if the scenario has it (the generative process in every shipped scenario),
    else the first declared non-mutant PyMC or Bambi model; ``None`` when there is none.
    """
    candidates = graph_models(scenario)
    if PREFERRED_BASE in candidates:
        return PREFERRED_BASE
    return candidates[0] if candidates else None


def find_site(view: ModelView, operator: str, target: str) -> Site:
    """The site of ``operator`` on the variable whose :func:`token` is ``target``."""
    found = [s for s in sites(view, [operator]) if token(s.target) == target]
    if not found:
        known = sorted({token(s.target) for s in sites(view, [operator])})
        raise MutationError(
            f"operator {operator} does not apply to {target!r} "
            f"(applies to: {', '.join(known) or 'nothing in this model'})"
        )
    return found[0]


def mutate_graph(graph: Graph, operator: str, target: str) -> Graph:
    """A copy of ``graph`` with one operator applied to one variable.

    The draws keep every stored variable that still exists (a shifted positive variable
    becomes a deterministic of the same name, its unshifted copy is stored beside it);
    data containers the rewritten model no longer reads (a dropped likelihood's data)
    are left out, since the compiled model cannot take them.
    """
    view = ModelView.of(graph.model)
    find_site(view, operator, target).edit(view)
    model = view.model()
    stored = [n for n in graph.stored if n in model.named_vars]
    stored += [rv.name for rv in model.free_RVs if rv.name not in stored]
    used = _used_shared(model)
    containers = {k: v for k, v in graph.containers.items() if v in used}
    return dataclasses.replace(graph, model=model, stored=stored, containers=containers)


def _used_shared(model: Any) -> set[str]:
    """Names of the shared variables (data containers) the model's density reads."""
    from pytensor.compile import SharedVariable
    from pytensor.graph.traversal import ancestors

    roots = [
        *model.free_RVs,
        *model.observed_RVs,
        *(model.rvs_to_values[rv] for rv in model.observed_RVs),
        *model.potentials,
        *model.deterministics,
    ]
    return {v.name for v in ancestors(roots) if isinstance(v, SharedVariable) and v.name}


@dataclasses.dataclass(frozen=True)
class MutantBackend:
    """A PyMC or Bambi backend with one mutation operator applied to its graph.

    Parameters
    ----------
    base : PyMCModel or BambiModel
        The correct model's backend (anything with ``graph(design, example)``).
    operator : str
        A name in :data:`sbc.mutate.operators.OPERATORS`.
    target : str
        The :func:`token` of the variable it rewrites.
    """

    base: Any
    operator: str
    target: str

    @property
    def data(self) -> tuple[str, ...]:
        """The base model's data keys (checked before a run)."""
        return tuple(getattr(self.base, "data", ()))

    @property
    def response(self) -> str | None:
        """The base model's response key, for a Bambi model."""
        return getattr(self.base, "response", None)

    def graph(self, design: Any, example: Mapping[str, np.ndarray]) -> Graph:
        """The base model's graph, rewritten."""
        return mutate_graph(self.base.graph(design, example), self.operator, self.target)

    def compile(self, design: Any, example: Mapping[str, np.ndarray]) -> NutpieFitter:
        """Rewrite the base model's graph and compile it with nutpie."""
        return compile_graph(self.graph(design, example))


def generated_model(scenario: Scenario, name: str) -> Model:
    """The generated mutant called ``name`` (its rewrite is checked when it is compiled).

    Raises
    ------
    MutationError
        For a malformed name, an unknown operator, or a base model that is not a declared
        PyMC or Bambi model.
    """
    operator, target, base_name = parse_name(name)
    base_name = base_name or default_base(scenario)
    if base_name is None or base_name not in graph_models(scenario):
        choices = ", ".join(graph_models(scenario)) or "none"
        raise MutationError(
            f"mutant {name!r}: no PyMC or Bambi model {base_name!r} to mutate "
            f"(mutable models: {choices})"
        )
    base = scenario.model(base_name)
    return dataclasses.replace(
        base,
        name=name,
        description=f"{OPERATORS[operator].summary}: {target} (generated from {base_name})",
        backend=MutantBackend(base.backend, operator, target),
        mutant=True,
    )
