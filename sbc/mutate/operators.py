"""Mutation operators: where each one applies in a model's graph, and the rewrite it makes.

Each :class:`Operator` lists its :class:`Site` s in a :class:`~sbc.mutate.graph.ModelView`
(one per variable it can change, named by that variable) and each site knows how to edit
the graph. Operators (see :data:`OPERATORS`):

* ``prior_scale_x2`` / ``prior_scale_half``: a free variable's prior scale times 2 or 1/2;
* ``prior_shift``: a free variable's prior location moved by one prior sd;
* ``drop_likelihood``: an observed variable (or a potential that reads data: a likelihood
  written as ``pm.Potential``) removed (the model samples its prior);
* ``double_likelihood``: an observed variable's log-likelihood (or such a potential)
  counted twice;
* ``variance_as_sd``: the scale parameter of a likelihood squared (a variance used as sd);
* ``index_shift``: a vector indexed by a data or constant integer array read one position
  further (``x[(idx + 1) % len(x)]``: an off-by-one group index);
* ``beta_swap``: the two shape parameters of a Beta (or Kumaraswamy) swapped.

What "scale" and "location" mean for each distribution is in :mod:`sbc.mutate.families`.
A site whose rewrite visibly changes nothing (a unit scale squared, a Beta with equal
shapes swapped, an index into a vector of length one) carries the reason in ``noop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sbc.mutate.families import Family, family
from sbc.mutate.graph import (
    ModelView,
    constant_value,
    name_of,
    params_of,
    rewrite_params,
    strip,
)


@dataclass(frozen=True)
class Site:
    """One place an operator can rewrite.

    Parameters
    ----------
    operator : str
        The operator's name.
    target : str
        The model variable it changes (for ``index_shift``: the indexed vector).
    description : str
        What the rewrite does, in one line.
    edit : callable
        ``edit(view)`` makes the rewrite in the view this site was found in.
    touched : tuple
        Graph variables whose values or densities the rewrite changes (in that view).
    noop : str or None
        Why the rewrite changes nothing, when the graph shows it.
    """

    operator: str
    target: str
    description: str
    edit: Callable[[ModelView], None] = field(compare=False, repr=False)
    touched: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    noop: str | None = None


@dataclass(frozen=True)
class Operator:
    """A mutation operator: ``sites(view)`` lists where it applies."""

    name: str
    summary: str
    sites: Callable[[ModelView], list[Site]]


def _rules(node: Any) -> Family | None:
    return family(node.inputs[0].owner.op)


def _prior_scale(factor: float, name: str) -> Callable[[ModelView], list[Site]]:
    def sites(view: ModelView) -> list[Site]:
        out = []
        for node in view.free():
            rules = _rules(node)
            if rules is None or rules.scale is None:
                continue

            def edit(v: ModelView, node: Any = node, rules: Family = rules) -> None:
                rewrite_params(v, node, rules.scale(params_of(node), factor))

            text = f"prior scale of {node.op.name} ({rules.label}) times {factor:g}"
            out.append(Site(name, node.op.name, text, edit, (node.outputs[0],)))
        return out

    return sites


def _prior_shift(view: ModelView) -> list[Site]:
    out = []
    for node in view.free():
        rules = _rules(node)
        if rules is None or (rules.shift is None and rules.sd is None):
            continue
        if rules.shift is not None:

            def edit(v: ModelView, node: Any = node, rules: Family = rules) -> None:
                rewrite_params(v, node, rules.shift(params_of(node)))

            text = f"prior location of {node.op.name} ({rules.label}) moved by one prior sd"
        else:

            def edit(v: ModelView, node: Any = node, rules: Family = rules) -> None:
                _add_to_free(v, node, rules.sd(params_of(node)))

            text = f"{node.op.name} ({rules.label}) moved by one prior sd (support from the sd)"
        out.append(Site("prior_shift", node.op.name, text, edit, (node.outputs[0],)))
    return out


def _add_to_free(view: ModelView, node: Any, shift: Any) -> None:
    """Make free variable ``X`` a deterministic ``X = X__unshifted + shift``.

    ``X__unshifted`` keeps the original prior (and transform), so ``X``'s prior is the
    original one moved by ``shift``; the model's draws still hold ``X`` under its name.
    """
    from pymc.model.fgraph import model_deterministic, model_free_rv
    from pymc.util import get_transformed_name

    rv, value = node.inputs
    op = node.op
    base_name = f"{op.name}__unshifted"
    new_value = value.type()
    new_value.name = (
        get_transformed_name(base_name, op.transform) if op.transform is not None else base_name
    )
    base = model_free_rv(rv, new_value, op.transform, base_name, *op.dims)
    moved = model_deterministic(base + shift, op.name, *op.dims)
    view.replace(node.outputs[0], moved)


def _drop_likelihood(view: ModelView) -> list[Site]:
    out = []
    for node in view.likelihood_terms():
        var = node.outputs[0]
        if any(client != "output" for client, _ in _clients(view, var)):
            continue  # another variable reads the observations: not a leaf to remove

        def edit(v: ModelView, var: Any = var) -> None:
            v.fgraph.remove_output(v.fgraph.outputs.index(var))

        text = f"likelihood of {node.op.name} removed (the posterior is the prior)"
        out.append(Site("drop_likelihood", node.op.name, text, edit, (var,)))
    return out


def _clients(view: ModelView, var: Any) -> list[tuple[Any, int]]:
    return [(c if not _is_output(c) else "output", i) for c, i in view.fgraph.clients[var]]


def _is_output(node: Any) -> bool:
    from pytensor.graph.fg import Output

    return isinstance(getattr(node, "op", None), Output)


def _double_likelihood(view: ModelView) -> list[Site]:
    from pymc.model.fgraph import ModelPotential

    out = []
    for node in view.likelihood_terms():

        def edit(v: ModelView, node: Any = node) -> None:
            import pymc as pm
            from pymc.model.fgraph import model_potential

            if isinstance(node.op, ModelPotential):
                term = node.inputs[0].copy(name=None)  # a potential's term, again (unnamed)
            else:
                rv, value = node.inputs
                term = pm.logp(rv, value).sum()
            again = model_potential(term, f"{node.op.name}__again")
            v.fgraph.add_output(again, import_missing=True)

        text = f"log-likelihood of {node.op.name} counted twice"
        out.append(Site("double_likelihood", node.op.name, text, edit, (node.outputs[0],)))
    return out


def _variance_as_sd(view: ModelView) -> list[Site]:
    out = []
    for node in view.observed():
        rules = _rules(node)
        if rules is None or rules.noise is None:
            continue
        params = params_of(node)
        scale = params[rules.noise]

        def edit(v: ModelView, node: Any = node, i: int = rules.noise) -> None:
            new = params_of(node)
            new[i] = new[i] ** 2
            rewrite_params(v, node, new)

        value = constant_value(scale)
        noop = (
            "the scale is the constant 1, so squaring it changes nothing"
            if value is not None and np.all(value == 1)
            else None
        )
        text = f"scale of the {rules.label} likelihood of {node.op.name} squared"
        out.append(Site("variance_as_sd", node.op.name, text, edit, (node.outputs[0],), noop))
    return out


def _beta_swap(view: ModelView) -> list[Site]:
    out = []
    for node in [*view.free(), *view.observed()]:
        rules = _rules(node)
        if rules is None or rules.shapes is None:
            continue
        i, j = rules.shapes
        params = params_of(node)

        def edit(v: ModelView, node: Any = node, i: int = i, j: int = j) -> None:
            new = params_of(node)
            new[i], new[j] = new[j], new[i]
            rewrite_params(v, node, new)

        a, b = constant_value(params[i]), constant_value(params[j])
        same = params[i] is params[j] or (
            a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)
        )
        noop = "its two shape parameters are the same" if same else None
        text = f"the two shape parameters of {rules.label} {node.op.name} swapped"
        out.append(Site("beta_swap", node.op.name, text, edit, (node.outputs[0],), noop))
    return out


@dataclass(frozen=True)
class Indexing:
    """One ``x[..., idx, ...]`` node whose integer index ``idx`` is data or a constant."""

    node: Any
    position: int
    axis: int


def indexings(view: ModelView) -> dict[str, list[Indexing]]:
    """Index nodes by the name of the vector they index (``index1``, ... when unnamed)."""
    from pytensor.compile import SharedVariable
    from pytensor.tensor.subtensor import AdvancedSubtensor

    found: dict[str, list[Indexing]] = {}
    unnamed = 0
    for node in view.fgraph.toposort():
        if not isinstance(node.op, AdvancedSubtensor):
            continue
        slots = [
            (1 + entry, axis)
            for axis, entry in enumerate(node.op.idx_list)
            if isinstance(entry, int)
        ]
        for position, axis in slots:
            idx = node.inputs[position]
            if idx.type.dtype[:3] not in ("int", "uin") or idx.type.ndim == 0:
                continue
            base = strip(idx)
            if not isinstance(base, SharedVariable) and constant_value(idx) is None:
                continue
            name = _vector_name(node.inputs[0]) or name_of(idx)
            if name is None:
                unnamed += 1
                name = f"index{unnamed}"
            found.setdefault(name, []).append(Indexing(node, position, axis))
    return found


def _vector_name(x: Any) -> str | None:
    """The name of ``x``, or of the nearest named non-scalar variable it is computed from.

    ``(sigma * z)[group]`` is named after ``z``: the vector whose entries the index picks.
    """
    frontier, seen = [x], set()
    while frontier:
        var = frontier.pop(0)
        if var in seen:
            continue
        seen.add(var)
        name = name_of(var)
        if name is not None and var.type.ndim > 0:
            return name
        if var.owner is not None and name is None:
            frontier.extend(var.owner.inputs)
    return None


def _index_shift(view: ModelView) -> list[Site]:
    out = []
    for name, uses in indexings(view).items():

        def edit(v: ModelView, uses: list[Indexing] = uses) -> None:
            for use in uses:
                x = use.node.inputs[0]
                inputs = list(use.node.inputs)
                inputs[use.position] = (inputs[use.position] + 1) % x.shape[use.axis]
                new = use.node.clone_with_new_inputs(inputs, strict=False)
                v.replace(use.node.outputs[0], new.outputs[0])

        lengths = {use.node.inputs[0].type.shape[use.axis] for use in uses}
        noop = "the indexed vector has length one" if lengths == {1} else None
        what = name if name_of(uses[0].node.inputs[0]) == name else f"the vector made from {name}"
        text = f"{what} read one position further along its index (off-by-one group index)"
        touched = tuple(use.node.outputs[0] for use in uses)
        out.append(Site("index_shift", name, text, edit, touched, noop))
    return out


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("prior_scale_x2", "prior scale times 2", _prior_scale(2.0, "prior_scale_x2")),
        Operator(
            "prior_scale_half", "prior scale times 1/2", _prior_scale(0.5, "prior_scale_half")
        ),
        Operator("prior_shift", "prior location moved by one prior sd", _prior_shift),
        Operator("drop_likelihood", "likelihood dropped (prior only)", _drop_likelihood),
        Operator("double_likelihood", "likelihood counted twice", _double_likelihood),
        Operator("variance_as_sd", "likelihood scale squared", _variance_as_sd),
        Operator("index_shift", "group index shifted by one", _index_shift),
        Operator("beta_swap", "Beta shape parameters swapped", _beta_swap),
    )
}
"""Every operator, by name, in the order mutants are listed."""


def sites(view: ModelView, operators: list[str] | None = None) -> list[Site]:
    """Every site of the named operators (default: all) in ``view``, in operator order."""
    chosen = [op for name, op in OPERATORS.items() if operators is None or name in operators]
    return [site for op in chosen for site in op.sites(view)]


def skipped(view: ModelView) -> dict[str, str]:
    """Free variables no prior operator applies to, with their distribution's op name."""
    out = {}
    for node in view.free():
        rules = _rules(node)
        if rules is None or rules.scale is None:
            out[node.op.name] = (
                getattr(node.inputs[0].owner.op, "name", None)
                or type(node.inputs[0].owner.op).__name__
            )
    return out
