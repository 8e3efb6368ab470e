"""Every array a Bambi model reads from its data frame, as containers refilled for each fit.

Bambi 0.21 builds its PyMC graph with the data as constants: the response, the trials of
a binomial response ``p(successes, trials)``, each component's common design matrix (with
the predictors centred when the component has an intercept and ``center_predictors`` is
on), every ``offset()`` and, per group-specific term, its predictor and each row's group
index. Bambi has no data containers of its own, so :func:`data_graph` makes each of those
constants that the simulated data feed a ``pytensor.shared`` container of the same dtype
(an integer response stays an integer, which discrete families need), and
:func:`data_arrays` computes, for any frame, what Bambi itself would put there: a fresh,
unbuilt :class:`bambi.Model` of that frame (design matrices only, about 4 ms of CPU; the
PyMC graph is not built again) read the way Bambi's backend reads it.

The rule: ``frame(design, data)`` is rebuilt from every simulated data set. A frame column
the simulated data feed (:func:`varying_columns`) is refilled, and so is every array
Bambi derives from it, exactly as a model freshly built on that frame would hold it
(stateful transforms such as ``scale(x)`` and Bambi's centring follow the new data). Every
other column is fixed by the design: its arrays stay constants of the compiled graph
(cheaper to sample), and a fit whose frame changes one of them raises. The compiled graph
also fixes the number of rows and the group levels.

Verified (``tests/test_bambi_families.py``): gaussian, t, beta, bernoulli, binomial,
poisson, negative binomial and gamma, with default and other links. Other univariate
families whose likelihood reads the response only through its observed value (and ``n``
for the binomial families) take the same path, untested. Refused when the model is built
(:class:`BambiDataError`): categorical, ordinal and multivariate families, censored,
truncated, constrained or weighted responses, HSGP terms and Bambi's sparse group design
(``SPARSE_DOT``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class BambiDataError(ValueError):
    """A Bambi model whose data sbc cannot refill for every fit."""


OBSERVED = "observed"
"""Role of the response's observed values."""

TRIALS = "trials"
"""Role of the number of trials of a binomial response ``p(successes, trials)``."""


def data_arrays(model: Any) -> dict[str, np.ndarray]:
    """Every array Bambi 0.21's PyMC backend reads from the data of ``model``, by role.

    Mirrors ``bambi.backend`` (``ResponseTerm.build`` and ``DistributionalComponent``):
    the roles are ``observed`` and ``trials`` (binomial families), and per distributional
    component ``c`` (``mu``, ``p``, ``sigma`` ...) ``c:common`` (the common design matrix,
    centred as Bambi centres it), ``c:offset:<term>``, ``c:predictor:<term>`` and
    ``c:group:<term>`` (each row's group index).

    Parameters
    ----------
    model : bambi.Model
        A Bambi model (it need not be built).

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    BambiDataError
        For a family, response or term kind listed as unsupported in the module docstring.
    """
    from bambi.config import config
    from bambi.families.multivariate import MultivariateFamily
    from bambi.families.univariate import (
        BinomialBaseFamily,
        Categorical,
        Cumulative,
        StoppingRatio,
    )

    family = model.family
    if isinstance(family, MultivariateFamily | Categorical | Cumulative | StoppingRatio):
        raise BambiDataError(
            f"Bambi family {family.name!r} is not supported: sbc refits univariate families"
        )
    response = model.response_term
    for kind in ("censored", "truncated", "constrained", "weighted"):
        if getattr(response, f"is_{kind}"):
            raise BambiDataError(f"a {kind} Bambi response is not supported")
    if config["SPARSE_DOT"]:
        raise BambiDataError("Bambi's sparse group design (SPARSE_DOT) is not supported")
    observed = np.squeeze(response.data)
    if isinstance(family, BinomialBaseFamily):
        arrays = {OBSERVED: observed[:, 0].squeeze(), TRIALS: observed[:, 1].squeeze()}
    else:
        arrays = {OBSERVED: observed}
    for name, component in model.conditional_parameters.items():
        if component.hsgp_terms:
            terms = ", ".join(component.hsgp_terms)
            raise BambiDataError(f"HSGP terms ({terms}) are not supported")
        for term_name, offset in component.offset_terms.items():
            arrays[f"{name}:offset:{term_name}"] = offset.data.squeeze()
        columns = [term.data for term in component.common_terms.values()]
        if columns:
            common = np.column_stack(columns)
            if component.intercept_term is not None and model.center_predictors:
                common = common - common.mean(0)
            arrays[f"{name}:common"] = common
        for term_name, term in component.group_specific_terms.items():
            arrays[f"{name}:predictor:{term_name}"] = term.predictor
            arrays[f"{name}:group:{term_name}"] = term.group_index
    return arrays


def role_columns(model: Any) -> dict[str, frozenset[str]]:
    """The frame columns each role of :func:`data_arrays` reads (formulae's ``var_names``)."""
    term = model.response_term.term
    response = frozenset(term.var_names)
    out = {OBSERVED: response, TRIALS: _argument_columns(term, 1, response)}
    for name, component in model.conditional_parameters.items():
        common: set[str] = set()
        for term_name, term in component.terms.items():
            kind = type(term).__name__
            if kind == "OffsetTerm":
                out[f"{name}:offset:{term_name}"] = frozenset(term.term.var_names)
            elif kind == "GroupSpecificTerm":
                out[f"{name}:predictor:{term_name}"] = frozenset(term.term.expr.var_names)
                out[f"{name}:group:{term_name}"] = frozenset(term.term.factor.var_names)
            else:
                common |= set(term.term.var_names)
        out[f"{name}:common"] = frozenset(common)
    return out


def _argument_columns(term: Any, position: int, default: frozenset[str]) -> frozenset[str]:
    """Columns read by argument ``position`` of a response call such as ``p(y, n)``.

    ``default`` (every column of the response) when the term is not such a call.
    """
    from formulae.terms.call_utils import CallVarsExtractor

    try:
        (call,) = term.components
        argument = call.call.args[position]
        names = argument.accept(CallVarsExtractor(argument))
    except (AttributeError, IndexError, TypeError, ValueError):
        return default
    return frozenset(_flatten(names))


def _flatten(names: Any) -> list[str]:
    if isinstance(names, str):
        return [names] if names else []
    return [n for item in names for n in _flatten(item)]


def varying_columns(
    frame: Callable[[Any, Mapping[str, np.ndarray]], Any],
    design: Any,
    example: Mapping[str, np.ndarray],
) -> frozenset[str]:
    """The columns of ``frame(design, data)`` that the simulated data feed.

    Probes ``frame`` with the example data set changed in two ways that alter every value
    (``v + 1`` and ``1 - v``; ``not v`` for booleans): a column that changes under either
    is refilled for every fit, every other column is fixed by the design. If the frame
    cannot be built from a probe, every column counts as fed by the data.
    """
    base = frame(design, example)
    changed: set[str] = set()
    for probe in (_shift, _flip):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                other = frame(design, {k: probe(np.asarray(v)) for k, v in example.items()})
        except Exception:
            return frozenset(base.columns)
        changed |= {c for c in base.columns if c not in other or not _equal(base[c], other[c])}
    return frozenset(changed)


def _shift(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "b":
        return ~values
    return values + values.dtype.type(1) if values.dtype.kind in "iuf" else values


def _flip(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "b":
        return ~values
    return values.dtype.type(1) - values if values.dtype.kind in "iuf" else values


def _equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


@dataclass(frozen=True)
class DataGraph:
    """A Bambi model's PyMC graph whose data-fed arrays are shared containers.

    Parameters
    ----------
    model : pymc.Model
        The graph; each constant fed by the simulated data replaced by a
        ``pytensor.shared`` container of the same dtype.
    sources : mapping of str to str
        Name of each shared variable -> the role (see :func:`data_arrays`) it is refilled
        from.
    alike : tuple of tuple of str
        Roles whose arrays were equal in the example frame, so that the graph could not
        tell their constants apart; each group must stay equal in every frame.
    fixed : mapping of str to ndarray
        Frame columns fixed by the design, with their values; they must not change.
    """

    model: Any
    sources: Mapping[str, str]
    alike: tuple[tuple[str, ...], ...] = ()
    fixed: Mapping[str, np.ndarray] = field(default_factory=dict)

    def refill(self, model: Any, frame: Any) -> dict[str, np.ndarray]:
        """The value of every container for ``frame``, from ``model`` (Bambi, on ``frame``).

        Raises
        ------
        BambiDataError
            If a column fixed by the design changed, or roles in :attr:`alike` differ.
        """
        for column, values in self.fixed.items():
            if not _equal(frame[column], values):
                raise BambiDataError(
                    f"frame column {column!r} changed between data sets, but sbc found it "
                    "fixed by the design (unchanged when the simulated data changed)"
                )
        arrays = data_arrays(model)
        for group in self.alike:
            if not all(_equal(arrays[group[0]], arrays[r]) for r in group[1:]):
                raise BambiDataError(
                    f"Bambi arrays {', '.join(group)} were equal in the example data set, so "
                    "the compiled graph cannot tell them apart, but differ in this one"
                )
        return {name: arrays[role] for name, role in self.sources.items()}


def data_graph(model: Any, prefix: str, varying: frozenset[str], frame: Any) -> DataGraph:
    """Make every constant of the built Bambi ``model`` that the data feed a container.

    The response's observed values are found where PyMC holds them (the observed
    variable's value) and replaced with :func:`pymc.observe`. Every other constant with as
    many rows as the data is matched, by value, to the roles of :func:`data_arrays`; it
    becomes a container if a role it matches reads a column in ``varying``, and stays a
    constant (fixed by the design) otherwise. A constant matching several roles is
    refilled from the first and the roles are recorded in :attr:`DataGraph.alike`.

    Parameters
    ----------
    model : bambi.Model
        A built Bambi model.
    prefix : str
        Prefix of the shared variables' names (``<prefix>__<role>``).
    varying : frozenset of str
        Frame columns fed by the simulated data (:func:`varying_columns`).
    frame : pandas.DataFrame
        The frame ``model`` was built on.

    Returns
    -------
    DataGraph

    Raises
    ------
    BambiDataError
        If the graph holds a data-sized constant that is no role's, or a role fed by the
        data is nowhere in the graph (a Bambi that builds its graph differently).
    """
    import pymc as pm
    import pytensor
    from pymc.model.fgraph import fgraph_from_model, model_from_fgraph
    from pytensor.graph.basic import Constant

    arrays = data_arrays(model)
    columns = role_columns(model)
    refilled = {r for r in arrays if r != OBSERVED and columns.get(r, frozenset()) & varying}
    rows = len(arrays[OBSERVED])
    fgraph, _ = fgraph_from_model(model.backend.model)
    replacements = []
    sources: dict[str, str] = {}
    alike: list[tuple[str, ...]] = []
    for variable in list(fgraph.variables):
        if not isinstance(variable, Constant) or getattr(variable.type, "ndim", 0) < 1:
            continue
        value = np.asarray(variable.data)
        if value.shape[0] != rows or _is_observed(fgraph, variable):
            continue
        matches = tuple(r for r in arrays if r != OBSERVED and _equal(arrays[r], value))
        if not matches:
            raise BambiDataError(
                f"the Bambi graph holds a {value.dtype} constant of shape {value.shape} that "
                "sbc does not know how to refill from the data"
            )
        fed = [r for r in matches if r in refilled]
        if not fed:
            continue
        name = f"{prefix}__{fed[0]}"
        if name in sources:
            name = f"{name}#{len(sources)}"
        replacements.append((variable, pytensor.shared(value.copy(), name=name)))
        sources[name] = fed[0]
        if len(matches) > 1 and matches not in alike:
            alike.append(matches)
    found = set(sources.values()) | {r for group in alike for r in group}
    missing = sorted(refilled - found)
    if missing:
        raise BambiDataError(f"sbc found no constant for {', '.join(missing)} in the Bambi graph")
    if replacements:
        fgraph.replace_all(replacements, import_missing=True)
    pymc_model = model_from_fgraph(fgraph, mutate_fgraph=True)
    (observed_rv,) = pymc_model.observed_RVs
    value = np.asarray(pymc_model.rvs_to_values[observed_rv].data)
    name = f"{prefix}__{OBSERVED}"
    shared = pytensor.shared(value.copy(), name=name)
    pymc_model = pm.observe(pymc_model, {observed_rv.name: shared})
    fixed = {c: np.asarray(frame[c]) for c in frame.columns if c not in varying}
    return DataGraph(pymc_model, {name: OBSERVED, **sources}, tuple(alike), fixed)


def _is_observed(fgraph: Any, variable: Any) -> bool:
    """Whether ``variable`` is the value of an observed variable in ``fgraph``."""
    from pymc.model.fgraph import ModelObservedRV

    return any(
        client != "output" and isinstance(client.op, ModelObservedRV) and index == 1
        for client, index in fgraph.clients[variable]
    )
