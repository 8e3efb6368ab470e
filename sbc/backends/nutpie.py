"""PyMC and Bambi models compiled once with nutpie and refitted through data containers.

This is where a model is compiled. Every model here first becomes a :class:`Graph`: a
PyMC model whose simulated data enter through named data containers (``pm.Data`` for PyMC
models; for Bambi models, whose own graph holds the data as constants, a
``pytensor.shared`` container of the same dtype for every array the simulated data feed,
see :mod:`sbc.backends.bambi_data`). :func:`compile_graph` compiles a graph with
:func:`nutpie.compile_pymc_model`; each ``fit`` only swaps the data in with
``compiled.with_data`` and samples; nothing is recompiled.

Splitting the graph from its compilation lets other code rewrite a model's PyMC graph
before it is compiled (planted bugs generated from any model, see :mod:`sbc.mutate`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import numpy as np

from sbc.backends import Posterior, Sampling

if TYPE_CHECKING:
    from sbc.backends.bambi_data import DataGraph

Derive = Callable[[Any, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
"""``derive(design, data) -> {container: values}``: data containers computed from the data."""


@dataclass(frozen=True)
class Graph:
    """A PyMC model ready to compile, and how a simulated data set fills it.

    Parameters
    ----------
    model : pymc.Model
        The model, its observed data held in shared variables (data containers).
    containers : mapping of str to str
        Data-set key -> name of the shared variable it fills. Keys made by ``derive`` are
        included.
    stored : list of str
        Variables kept in the draws (free variables and deterministics).
    design : object
        The design the model was built for (passed to ``derive``).
    derive : callable, optional
        Computes more container values from each data set (see :data:`Derive`).
    """

    model: Any
    containers: Mapping[str, str]
    stored: list[str]
    design: Any = None
    derive: Derive | None = None


def compile_graph(graph: Graph) -> NutpieFitter:
    """Compile ``graph`` with nutpie: the one place a model is compiled.

    The C wrappers nutpie generates are cached on disk (:mod:`sbc.backends.nutpie_cache`),
    so a worker that has compiled the same model before loads them instead.
    """
    from sbc.backends.nutpie_cache import compile_pymc_model

    compiled = compile_pymc_model(graph.model, var_names=graph.stored)
    return NutpieFitter(compiled, graph.containers, graph.design, graph.derive)


@dataclass(frozen=True)
class NutpieFitter:
    """A nutpie-compiled model whose data containers are refilled for every fit.

    Parameters
    ----------
    compiled : nutpie.CompiledPyMCModel
        The compiled model.
    containers : mapping of str to str
        Data-set key -> name of the shared variable it fills.
    design : object
        The design, for ``derive``.
    derive : callable, optional
        Computes more container values from each data set.
    """

    compiled: Any
    containers: Mapping[str, str]
    design: Any = None
    derive: Derive | None = field(default=None)

    def fit(self, data: Mapping[str, np.ndarray], seed: int, sampling: Sampling) -> Posterior:
        """Swap ``data`` into the compiled model and sample it with nutpie."""
        import nutpie

        sampling = sampling.resolve()
        if self.derive is not None:
            data = {**data, **self.derive(self.design, data)}
        dtypes = self.dtypes
        updates = {
            shared: as_dtype(key, data[key], dtypes.get(shared))
            for key, shared in self.containers.items()
        }
        raw = nutpie.sample(
            self.compiled.with_data(**updates),
            chains=sampling.chains,
            tune=sampling.tune,
            draws=sampling.draws,
            seed=seed,
            cores=1,
            target_accept=sampling.target_accept,
            adaptation=sampling.adaptation,
            progress_bar=False,
            save_warmup=False,
            return_raw_trace=True,
        )
        skip = set(getattr(self.compiled, "reparameterized_names", ()) or ())
        return arrow_posterior(*raw.get_arrow_trace(), skip=skip)

    @cached_property
    def dtypes(self) -> dict[str, np.dtype]:
        """The dtype of every data container, as compiled."""
        shared = getattr(self.compiled, "shared_var_keys", {}) or {}
        return {var.name: np.dtype(var.type.dtype) for var in shared}


def as_dtype(key: str, values: Any, dtype: np.dtype | None) -> np.ndarray:
    """``values`` as an array of the container's ``dtype``, refusing a lossy conversion.

    nutpie converts refilled data to the compiled dtype silently; a count of 2.5 would
    become 2. Booleans and integer-valued floats convert; anything else raises.

    Raises
    ------
    TypeError
        If a value changes on conversion (a fraction or a non-finite value into integers).
    """
    array = np.asarray(values)
    if dtype is None or array.dtype == dtype:
        return array
    with np.errstate(invalid="ignore"):
        converted = array.astype(dtype)
    if not np.array_equal(converted, array):
        bad = array.ravel()[np.flatnonzero(converted.ravel() != array.ravel())[0]]
        raise TypeError(
            f"data {key!r} must hold {dtype} values, as the model was compiled for, "
            f"got {array.dtype} with the value {bad!r}"
        )
    return converted


def arrow_posterior(
    draw_batches: list[Any], stat_batches: list[Any], skip: set[str] = frozenset()
) -> Posterior:
    """Posterior draws and divergences from nutpie's raw Arrow trace, warm-up removed.

    nutpie's own conversion builds an xarray ``DataTree`` with every sampler statistic;
    SBC needs only the draws as arrays and the divergence count, which this reads straight
    from the Arrow columns (about 100 times faster). Each variable's shape comes from the
    column's ``shape`` metadata. The draws are read when first looked up
    (:class:`ArrowDraws`): a fit's estimands seldom need every stored variable (heights
    ``partial`` reads 3 of its 6; 0.2 against 0.4 ms a fit).

    Parameters
    ----------
    draw_batches, stat_batches : list
        One Arrow record batch per chain, as ``PyTrace.get_arrow_trace()`` returns them.
    skip : set of str
        Columns to leave out: the unconstrained copies of transformed variables
        (``sigma_log__``), which nutpie's own conversion moves out of the posterior too.

    Returns
    -------
    Posterior
        Draws of shape ``(chain, draw, *shape)``, post-warm-up divergences, and the mean
        leapfrog steps and tree depth of the kept draws.
    """
    kept = [
        _selector(~_column(stats, "tuning").to_numpy(zero_copy_only=False))
        for stats in stat_batches
    ]

    def kept_stat(name: str) -> np.ndarray:
        return np.concatenate(
            [
                _column(stats, name).to_numpy(zero_copy_only=False)[keep]
                for stats, keep in zip(stat_batches, kept, strict=True)
            ]
        )

    steps, depth = kept_stat("n_steps"), kept_stat("depth")
    return Posterior(
        draws=ArrowDraws(draw_batches, kept, skip),
        divergences=int(kept_stat("diverging").sum()),
        grad_evals=float(steps.mean()) if steps.size else float("nan"),
        tree_depth=float(depth.mean()) if depth.size else float("nan"),
    )


def _selector(keep: np.ndarray) -> slice | np.ndarray:
    """``keep`` (a mask of the draws kept) as a slice when it is one run of draws.

    nutpie's warm-up draws come first, so the kept draws are one run: read through a
    slice, each column is a view until the chains are stacked, not a copy made by a mask.
    """
    where = np.flatnonzero(keep)
    if where.size and where[-1] - where[0] + 1 == where.size:
        return slice(int(where[0]), int(where[-1]) + 1)
    return keep


def _column(batch: Any, name: str) -> Any:
    """Column ``name`` of an Arrow record batch as a pyarrow array, list columns flattened."""
    import pyarrow as pa

    values = pa.array(batch.column(name))
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        return values.flatten()
    return values


class ArrowDraws(Mapping[str, np.ndarray]):
    """The kept draws of nutpie's Arrow trace by variable, each read on first lookup.

    Parameters
    ----------
    batches : list
        One Arrow record batch of draws per chain.
    kept : list of slice or ndarray of bool
        The draws of each chain kept (after warm-up), as :func:`_selector` gives them.
    skip : set of str
        Columns that are not variables of the posterior.
    """

    def __init__(self, batches: list[Any], kept: list[slice | np.ndarray], skip: set[str]) -> None:
        self._batches, self._kept = batches, kept
        self._names = [n for n in batches[0].column_names if n not in skip]
        self._read: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._read:
            if name not in self._names:
                raise KeyError(name)
            meta = self._batches[0].column(name).field.metadata or {}
            shape = [int(n) for n in meta.get(b"shape", b"").decode().split(",") if n]
            self._read[name] = np.stack(
                [
                    _column(batch, name).to_numpy(zero_copy_only=False).reshape(-1, *shape)[keep]
                    for batch, keep in zip(self._batches, self._kept, strict=True)
                ]
            )
        return self._read[name]

    def __iter__(self) -> Any:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _stored_variables(model: Any, skip_dims: tuple[str, ...] = ()) -> list[str]:
    """Free variables plus deterministics, leaving out those over any of ``skip_dims``."""
    names = [rv.name for rv in model.free_RVs]
    for det in model.deterministics:
        dims = model.named_vars_to_dims.get(det.name) or ()
        if not set(dims) & set(skip_dims):
            names.append(det.name)
    return names


@dataclass(frozen=True)
class PyMCModel:
    """A model written directly in PyMC.

    Parameters
    ----------
    build : callable
        ``build(design, example) -> pymc.Model``. Every observed array must enter the model
        as ``pm.Data(key, example[key])`` so that it can be refilled.
    data : tuple of str
        Keys of the simulated data that fill the data containers of the same name.
    derive : callable, optional
        ``derive(design, data) -> {key: array}``: more data containers, computed from each
        simulated data set before the fit (``build`` sees them in ``example`` too). For
        values that are functions of the data: a plug-in estimate, or the weights of a
        data-dependent parameterisation that leaves the posterior unchanged.
    """

    build: Callable[[Any, Mapping[str, np.ndarray]], Any]
    data: tuple[str, ...]
    derive: Derive | None = None

    def graph(self, design: Any, example: Mapping[str, np.ndarray]) -> Graph:
        """Build the PyMC model around its data containers."""
        derived = dict(self.derive(design, example)) if self.derive is not None else {}
        model = self.build(design, {**example, **derived})
        keys = (*self.data, *derived)
        return Graph(model, {k: k for k in keys}, _stored_variables(model), design, self.derive)

    def compile(self, design: Any, example: Mapping[str, np.ndarray]) -> NutpieFitter:
        """Build the PyMC model and compile it with nutpie."""
        return compile_graph(self.graph(design, example))


@dataclass(frozen=True)
class BambiModel:
    """A model written as a Bambi formula with explicit priors.

    Every array Bambi derives from the frame columns the simulated data feed (response,
    binomial trials, predictors, offsets, group membership) becomes a data container of its
    own dtype, refilled for every fit from the frame of that data set; arrays from columns
    fixed by the design stay constants (see :mod:`sbc.backends.bambi_data`).

    Parameters
    ----------
    formula : str
        Bambi model formula, e.g. ``"height ~ 1 + (1|country)"``.
    frame : callable
        ``frame(design, data) -> pandas.DataFrame`` with the response and predictors.
    response : str
        Key of the simulated data that holds the response.
    priors : callable
        ``priors(design) -> {term: (distribution, {parameter: value})}``; a value may itself
        be such a tuple (a hyperprior). Every term needs one: Bambi's defaults are scaled by
        the observed data, which breaks calibration.
    family : str
        Bambi family name.
    link : str or None
        Link function; ``None`` uses the family's default.
    noncentered : bool
        Bambi's parameterisation of group-specific effects: non-centred (Bambi's default)
        suits groups with little data or a group-sd prior that reaches zero; centred suits
        informative groups whose group-sd prior stays away from zero.
    center_predictors : bool
        Bambi's own default (``True``) centres the common predictors of a component with
        an intercept, so its ``Intercept`` (the draws sbc reads, and the prior given for
        it) is the intercept at the predictors' mean. sbc's default ``False`` keeps the
        intercept the formula writes, which a prior matching the generative process needs.
    """

    formula: str
    frame: Callable[[Any, Mapping[str, np.ndarray]], Any]
    response: str
    priors: Callable[[Any], Mapping[str, tuple[str, Mapping[str, Any]]]]
    family: str = "gaussian"
    link: str | None = None
    noncentered: bool = True
    center_predictors: bool = False

    def bambi(self, frame: Any, priors: Mapping[str, Any] | None = None) -> Any:
        """An unbuilt :class:`bambi.Model` of ``frame`` (design matrices, no PyMC graph)."""
        import bambi as bmb

        kwargs = {"link": self.link} if self.link is not None else {}
        return bmb.Model(
            self.formula,
            frame,
            family=self.family,
            priors=priors,
            noncentered=self.noncentered,
            center_predictors=self.center_predictors,
            **kwargs,
        )

    def build(self, design: Any, example: Mapping[str, np.ndarray]) -> Any:
        """Return the built :class:`bambi.Model` for ``example``."""
        priors = {term: _prior(spec) for term, spec in self.priors(design).items()}
        model = self.bambi(self.frame(design, example), priors)
        model.build()
        return model

    def graph(self, design: Any, example: Mapping[str, np.ndarray]) -> Graph:
        """Build the Bambi model; every array the simulated data feed becomes a container."""
        from sbc.backends.bambi_data import data_graph, varying_columns

        varying = varying_columns(self.frame, design, example)
        frame = self.frame(design, example)
        data = data_graph(self.build(design, example), self.response, varying, frame)
        stored = _stored_variables(data.model, skip_dims=("__obs__",))
        refill = partial(self.refill, graph=data)
        return Graph(data.model, {name: name for name in data.sources}, stored, design, refill)

    def refill(
        self, design: Any, data: Mapping[str, np.ndarray], graph: DataGraph
    ) -> dict[str, np.ndarray]:
        """The value of every data container of ``graph`` for ``data``, as Bambi computes it.

        A fresh, unbuilt Bambi model of this data set's frame computes the arrays (about
        4 ms of CPU: design matrices only).
        """
        frame = self.frame(design, data)
        return graph.refill(self.bambi(frame), frame)

    def compile(self, design: Any, example: Mapping[str, np.ndarray]) -> NutpieFitter:
        """Build the Bambi model, make its data containers and compile it."""
        return compile_graph(self.graph(design, example))


def _prior(spec: Any) -> Any:
    """Turn ``("Normal", {"mu": 0, "sigma": ("HalfNormal", {"sigma": 1})})`` into a Bambi prior.

    Priors are kept as plain tuples in model definitions so that they stay picklable and
    comparable; nested tuples become nested priors (hyperpriors).
    """
    import bambi as bmb

    name, params = spec
    return bmb.Prior(
        name,
        **{k: _prior(v) if isinstance(v, tuple) else v for k, v in params.items()},
    )
