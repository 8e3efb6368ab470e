"""Equivalent mutants: rewrites that change nothing SBC can observe, shown by the graph.

SBC observes a model through the likelihood of the data and through the estimands it
reads off the draws (test quantities are functions of both). A mutant is *equivalent*,
and left out of the mutation score, when the graph shows that neither changes:

* the rewrite is a no-op (a unit scale squared, a Beta with equal shapes swapped, see
  :class:`sbc.mutate.operators.Site`);
* **unobservable**: nothing the likelihood or the estimands depend on depends on the
  rewritten variable (a declared hyperparameter nothing uses, a variable the estimands do
  not read and no observation depends on). Changing the prior of such a variable leaves the
  joint distribution of everything else unchanged, since it integrates out;
* **relabelling**: an ``index_shift`` on a vector whose prior is exchangeable along the
  indexed axis (i.i.d. given scalar parents, combined elementwise), used nowhere else
  position by position, and whose positions the estimands do not tell apart: reading
  position ``j + 1`` for group ``j`` then only renames the groups.

Which stored variables the estimands read is found by a probe: the estimand function is
called on prior draws of every stored variable, then again with one variable's draws
replaced by other prior draws or changed affinely (or with a relabelling applied); what
changes the output is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sbc.mutate.graph import ModelView, constant_value, name_of
from sbc.mutate.operators import Indexing, Site, indexings

PROBE_DRAWS = 4
"""Prior draws per stored variable in the estimand probe."""


@dataclass(frozen=True)
class Probe:
    """The estimand function evaluated on prior draws of a model's stored variables.

    Parameters
    ----------
    estimands : callable
        ``estimands(draws, design)`` of the model.
    design : object
        The scenario's design.
    first, second : mapping of str to ndarray
        Two independent sets of prior draws, ``(1, PROBE_DRAWS, *shape)`` each.
    """

    estimands: Callable[[Mapping[str, np.ndarray], Any], Mapping[str, np.ndarray]]
    design: Any
    first: Mapping[str, np.ndarray]
    second: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, model: Any, stored: list[str], estimands: Any, design: Any) -> Probe:
        """Draw the stored variables of ``model`` from its prior (fixed seeds)."""
        import pymc as pm

        variables = [model[name] for name in stored]
        sets = []
        for seed in (0, 1):
            values = pm.draw(variables, draws=PROBE_DRAWS, random_seed=seed)
            sets.append({n: np.asarray(v)[None] for n, v in zip(stored, values, strict=True)})
        return cls(estimands, design, sets[0], sets[1])

    def _outputs(self, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        try:
            return {
                k: np.asarray(v, dtype=float) for k, v in self.estimands(draws, self.design).items()
            }
        except Exception:  # the estimand function cannot take these draws
            return None

    def same(self, draws: Mapping[str, np.ndarray]) -> bool:
        """Whether the estimands at ``draws`` equal those at the first set of draws."""
        base, other = self._outputs(self.first), self._outputs(draws)
        if base is None or other is None or base.keys() != other.keys():
            return False
        return all(np.array_equal(base[k], other[k], equal_nan=True) for k in base)

    def reads(self) -> set[str]:
        """Stored variables whose draws the estimands depend on (all, if the probe fails)."""
        if self._outputs(self.first) is None:
            return set(self.first)
        read = set()
        for name in self.first:
            # other prior draws, and an affine change (so a sign or a rounding cannot hide it)
            for other in (self.second[name], self.first[name] * 1.5 + 0.5):
                if not self.same({**self.first, name: other}):
                    read.add(name)
                    break
        return read


def observable(view: ModelView, reads: set[str]) -> set[Any]:
    """Graph variables the likelihood or the read estimand variables depend on."""
    from pymc.model.fgraph import ModelVar
    from pytensor.graph.traversal import ancestors

    ends = [node.outputs[0] for node in view.likelihood_terms()]
    ends += [node.outputs[0] for node in view.nodes(ModelVar) if node.op.name in reads]
    return set(ancestors(ends))


def equivalence(view: ModelView, site: Site, seen: set[Any], probe: Probe | None) -> str | None:
    """Why ``site``'s mutant is equivalent, or ``None``.

    Parameters
    ----------
    view : ModelView
        The unmutated model the site was found in.
    site : Site
        The rewrite.
    seen : set
        :func:`observable` of the view.
    probe : Probe or None
        The estimand probe (``None``: relabellings are not checked).
    """
    if site.noop is not None:
        return site.noop
    if not any(var in seen for var in site.touched):
        return (
            f"nothing the likelihood or the estimands use depends on {site.target}, "
            "so the rewrite changes nothing observable"
        )
    if site.operator == "index_shift" and probe is not None:
        uses = indexings(view).get(site.target, [])
        if uses and relabelling(view, uses, probe):
            return (
                f"{site.target} is exchangeable a priori and the estimands do not tell its "
                "positions apart: the shifted index only renames the groups"
            )
    return None


def relabelling(view: ModelView, uses: list[Indexing], probe: Probe) -> bool:
    """Whether shifting these indices only relabels an exchangeable vector's positions."""
    from pymc.model.fgraph import ModelVar

    chain: dict[Any, int] = {}
    for use in uses:
        if not _exchangeable(use.node.inputs[0], use.axis, chain):
            return False
    allowed = {var.owner for var in chain} | {use.node for use in uses}
    for var in chain:
        for client, _ in view.fgraph.clients[var]:
            op = getattr(client, "op", None)
            if type(op).__name__ == "Output" or client in allowed:
                continue
            if isinstance(op, ModelVar) and client.outputs[0] in chain:
                continue
            return False  # the vector is also used position by position elsewhere
    rolled = {}
    for var, axis in chain.items():
        name = name_of(var)
        if name in probe.first:
            values = probe.first[name]
            rolled[name] = np.roll(values, 1, axis=2 + axis)  # draws are (1, draw, *shape)
    return not rolled or probe.same({**probe.first, **rolled})


def _exchangeable(var: Any, axis: int, chain: dict[Any, int]) -> bool:
    """Whether ``var``'s prior is invariant to permuting its entries along ``axis``.

    Records the variables it walks through (with the axis in each) in ``chain``.
    """
    from pymc.model.fgraph import ModelDeterministic, ModelFreeRV
    from pytensor.tensor.elemwise import DimShuffle, Elemwise
    from pytensor.tensor.random.op import RandomVariable

    if axis < 0 or var.type.broadcastable[axis]:
        return True  # constant along the axis
    if var in chain:
        return chain[var] == axis
    owner = var.owner
    if owner is None:
        value = constant_value(var)
        return value is not None and bool(np.all(value == np.take(value, [0], axis=axis)))
    op = owner.op
    chain[var] = axis
    if isinstance(op, ModelDeterministic):
        return _exchangeable(owner.inputs[0], axis, chain)
    if isinstance(op, ModelFreeRV):
        rv = owner.inputs[0]
        rv_op = rv.owner.op
        if not isinstance(rv_op, RandomVariable) or rv_op.ndim_supp > 0:
            return False
        chain[rv] = axis
        return all(
            _exchangeable(p, axis - (rv.type.ndim - p.type.ndim), chain)
            for p in rv_op.dist_params(rv.owner)
        )
    if isinstance(op, Elemwise):
        return all(
            _exchangeable(i, axis - (var.type.ndim - i.type.ndim), chain) for i in owner.inputs
        )
    if isinstance(op, DimShuffle):
        source = op.new_order[axis]
        return source == "x" or _exchangeable(owner.inputs[0], source, chain)
    return False
