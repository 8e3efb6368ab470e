"""A PyMC model as a rewritable graph: PyMC's ``FunctionGraph`` form with named lookups.

:func:`pymc.model.fgraph.fgraph_from_model` turns a model into a PyTensor
``FunctionGraph`` in which every model variable is wrapped in a dummy ``ModelVar`` node
(``ModelFreeRV``, ``ModelObservedRV``, ``ModelDeterministic``, ``ModelNamed`` for data)
carrying its name, dims and transform; :func:`pymc.model.fgraph.model_from_fgraph` turns
such a graph back into a model. Views are inlined, so downstream nodes consume the
``ModelVar`` outputs and a variable's name is one lookup away. The operators of
:mod:`sbc.mutate.operators` edit this graph in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ModelView:
    """A model's graph, rewritable in place, and how to turn it back into a model.

    Parameters
    ----------
    fgraph : pytensor.graph.FunctionGraph
        The model in PyMC's ``FunctionGraph`` form (inlined views).
    """

    fgraph: Any

    @classmethod
    def of(cls, model: Any) -> ModelView:
        """The graph of a ``pymc.Model`` (the model itself is left untouched)."""
        from pymc.model.fgraph import fgraph_from_model

        fgraph, _ = fgraph_from_model(model, inlined_views=True)
        return cls(fgraph)

    def model(self) -> Any:
        """The (rewritten) graph as a new ``pymc.Model``."""
        from pymc.model.fgraph import model_from_fgraph

        return model_from_fgraph(self.fgraph, mutate_fgraph=False)

    def nodes(self, kind: type) -> Iterator[Any]:
        """``ModelVar`` nodes of one kind (``ModelFreeRV`` ...), in topological order."""
        for node in self.fgraph.toposort():
            if isinstance(node.op, kind):
                yield node

    def free(self) -> list[Any]:
        """``ModelFreeRV`` nodes."""
        from pymc.model.fgraph import ModelFreeRV

        return list(self.nodes(ModelFreeRV))

    def observed(self) -> list[Any]:
        """``ModelObservedRV`` nodes."""
        from pymc.model.fgraph import ModelObservedRV

        return list(self.nodes(ModelObservedRV))

    def likelihood_potentials(self) -> list[Any]:
        """``ModelPotential`` nodes whose term reads data: likelihoods written as potentials.

        A collapsed or hand-written likelihood (``pm.Potential("obs", logp(data))``) is one;
        a potential of parameters alone (a soft constraint, a prior term) is not.
        """
        from pymc.model.fgraph import ModelPotential
        from pytensor.compile import SharedVariable
        from pytensor.graph.traversal import ancestors
        from pytensor.tensor import TensorType

        def reads_data(var: Any) -> bool:  # a data container: shared, a tensor (not an rng)
            return isinstance(var, SharedVariable) and isinstance(var.type, TensorType)

        return [
            node
            for node in self.nodes(ModelPotential)
            if any(reads_data(v) for v in ancestors([node.inputs[0]]))
        ]

    def likelihood_terms(self) -> list[Any]:
        """Observed variables and data-reading potentials: every term of the likelihood."""
        return [*self.observed(), *self.likelihood_potentials()]

    def named(self, name: str, kind: type | None = None) -> Any:
        """The ``ModelVar`` node called ``name`` (of ``kind``, if given)."""
        from pymc.model.fgraph import ModelVar

        for node in self.nodes(kind or ModelVar):
            if node.op.name == name:
                return node
        raise KeyError(name)

    def replace(self, old: Any, new: Any) -> None:
        """Make every consumer of ``old`` use ``new`` (converted to ``old``'s type if needed)."""
        if new.type != old.type:
            new = old.type.filter_variable(new, allow_convert=True)
        self.fgraph.replace(old, new, import_missing=True)


def name_of(var: Any) -> str | None:
    """The model name of ``var`` when it is a ``ModelVar`` output, else ``None``."""
    from pymc.model.fgraph import ModelVar

    owner = var.owner
    return owner.op.name if owner is not None and isinstance(owner.op, ModelVar) else None


def strip(var: Any) -> Any:
    """``var`` without its ``ModelVar`` wrappers: the underlying expression or data."""
    from pymc.model.fgraph import ModelVar

    while var.owner is not None and isinstance(var.owner.op, ModelVar):
        var = var.owner.inputs[0]
    return var


def constant_value(var: Any) -> np.ndarray | None:
    """The value of ``var`` when it depends on constants only, else ``None``."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    roots = [a for a in ancestors([var]) if a.owner is None]
    if not all(isinstance(r, Constant) for r in roots):
        return None
    try:
        return np.asarray(var.eval())
    except Exception:  # a graph that cannot be evaluated on its own
        return None


def rewrite_params(view: ModelView, node: Any, params: list[Any]) -> None:
    """Give the random variable wrapped by ``ModelVar`` ``node`` new distribution parameters."""
    rv = node.inputs[0]
    rv_node = rv.owner
    rng, size = rv_node.inputs[:2]
    new = rv_node.op.make_node(rng, size, *params)
    view.replace(rv, new.outputs[rv_node.outputs.index(rv)])


def params_of(node: Any) -> list[Any]:
    """Distribution parameters of the random variable wrapped by ``ModelVar`` ``node``."""
    rv_node = node.inputs[0].owner
    return list(rv_node.op.dist_params(rv_node))
