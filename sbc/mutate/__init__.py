"""Automatic mutants: planted bugs generated from any PyMC or Bambi model's graph.

A mutant is the correct model with one deliberate mistake. Instead of writing each one by
hand, this package rewrites the model's PyMC graph (:mod:`sbc.mutate.graph`) with a set of
mutation operators (:mod:`sbc.mutate.operators`, distribution rules in
:mod:`sbc.mutate.families`): prior scales doubled and halved, prior locations moved, the
likelihood dropped or counted twice, a likelihood scale squared, a group index shifted,
Beta shapes swapped. :func:`enumerate_mutants` lists every mutant of a model and marks
those the graph shows to be equivalent (:mod:`sbc.mutate.equivalence`).

A generated mutant is an ordinary model named ``operator:variable``
(:mod:`sbc.mutate.backend`); :meth:`sbc.scenario.Scenario.model` resolves such names in
any process through :func:`generated_model`, and its backend rewrites the correct model's
graph before :func:`sbc.backends.nutpie.compile_graph` compiles it.
"""

from sbc.mutate.backend import (
    MutantBackend,
    MutationError,
    default_base,
    generated_model,
    graph_models,
    is_generated,
    mutant_name,
    mutate_graph,
    parse_name,
    token,
)
from sbc.mutate.enumeration import Enumeration, Mutant, check_generated, enumerate_mutants
from sbc.mutate.operators import OPERATORS

__all__ = [
    "OPERATORS",
    "Enumeration",
    "Mutant",
    "MutantBackend",
    "MutationError",
    "check_generated",
    "default_base",
    "enumerate_mutants",
    "generated_model",
    "graph_models",
    "is_generated",
    "mutant_name",
    "mutate_graph",
    "parse_name",
    "token",
]
