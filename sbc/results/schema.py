"""The results table: its columns and types, how rows are built and joined, a validator.

One row per (simulation, model, quantity). The engine builds the rows of each fit as an
Arrow table (:func:`result_rows`), the store joins and saves them (:func:`concat_rows`),
and every reader can check a table on its own (:func:`validate`): this module is the one
place the schema is written down, so nothing needs the fitting engine to read a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from sbc.stats.posterior import QUANTILES, quantile_column

COLUMNS: tuple[str, ...] = (
    "simulation",
    "model",
    "estimand",
    "kind",
    "true_value",
    "rank",
    "max_rank",
    "pit",
    "thin",
    "post_mean",
    "post_sd",
    *(quantile_column(q) for q in QUANTILES),
    "rhat",
    "ess_bulk",
    "ess_tail",
    "divergences",
    "n_draws",
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "grad_evals",
    "tree_depth",
    "fit_seconds",
    "error",
    "warnings",
)
"""Columns of the results table, one row per (simulation, model, estimand).

``estimand`` names the quantity; ``kind`` says whether it is an ``estimand`` (a parameter
of the generative process) or a ``test_quantity`` (a function of parameters and data, such
as the log-likelihood, see :meth:`sbc.scenario.Scenario.quantities`). ``rhat``, ``ess_bulk``
and ``ess_tail`` diagnose that quantity's draws; the per-fit columns ``max_rhat``,
``min_ess_bulk`` and ``min_ess_tail`` summarise them over the estimands (the fit's health),
``grad_evals`` and ``tree_depth`` are the sampler's mean leapfrog steps and tree depth per
kept draw (what a draw costs), ``fit_seconds`` the sampler's wall time.
"""

PREDICTION_COLUMNS: tuple[str, ...] = (
    "elpd_in",
    "elpd_heldout",
    "elpd_heldout_groups",
    "elpd_loo",
    "elpd_loo_se",
    "p_loo",
    "pareto_k_max",
    "elpd_logo",
    "elpd_logo_se",
    "pareto_k_max_logo",
    "rmse_in",
    "rmse_heldout",
)
"""Per-fit prediction columns (:mod:`sbc.engine.predict`), NaN where they do not apply.

``elpd_in`` is the log pointwise predictive density of the fitted data; ``elpd_heldout``
that of held-out replicates drawn from the true parameters (new observations of the same
groups; the truth a user never has), ``elpd_heldout_groups`` that of replicates of new
groups from the same population, each group predicted jointly; ``elpd_loo``,
``elpd_loo_se``, ``p_loo`` and ``pareto_k_max`` the PSIS-LOO estimate, its standard error,
the effective number of parameters and the worst Pareto k-hat; ``elpd_logo`` ... the same
leaving one group out; ``rmse_in`` and ``rmse_heldout`` the root mean square error of the
posterior mean prediction of each observation."""

HELDOUT_REPLICATES = 4
"""Held-out replicates per simulation (same groups, and new groups): the held-out elpds are
their average. Four keep the replicates' own noise at half a single replicate's sd, for
about 5 ms a fit on heights (2000 draws x 80 heights, 8 replicates evaluated: 2.5 ms for
the same countries, 2.7 ms for new ones; two replicates would halve it and leave 71% of a
replicate's sd)."""

DIFF_PREFIX = "elpd_diff:"
"""Prefix of the per-fit columns ``elpd_diff:<other model>``: this fit's ``elpd_loo`` minus
that of the other model fitted to the same data set."""

DIFF_SE_PREFIX = "elpd_diff_se:"
"""Prefix of the per-fit columns ``elpd_diff_se:<other model>``: the standard error of that
difference (from the pointwise differences, as ArviZ's ``compare``)."""

FIT_COLUMNS: dict[str, str] = {
    "pareto_khat": "float64",
    "converged": "boolean",
    "iterations": "Int64",
    "objective": "float64",
    **dict.fromkeys(PREDICTION_COLUMNS, "float64"),
}
"""Per-fit columns added after :data:`COLUMNS` was fixed, by name and dtype.

Every new result row has them (missing where they do not apply: null, NaN for floats);
results of older runs lack them and are still read. They follow :data:`COLUMNS`, before
the data-statistic columns.

The diagnostics of an approximate fit (:mod:`sbc.backends.approximate`): ``pareto_khat``,
the Pareto k-hat of its importance ratios (above 0.7 the approximation is unreliable);
``converged``, whether its optimiser met its criterion; ``iterations``; ``objective``, the
final value the optimiser maximised (ELBO, or the log density at the mode). Missing for
NUTS fits, whose draws are judged by R-hat and ESS instead."""

COMPILE_FAILED = "compile failed: "
"""Prefix of the ``error`` of a fit whose model could not be compiled."""

SIMULATION_FAILED = "simulation failed: "
"""Prefix of the ``error`` of every fit of a simulation the simulator could not produce."""

STATISTIC_PREFIX = "stat:"
"""Prefix of the data-statistic columns that follow :data:`COLUMNS` (``stat:between_within``):
one per :class:`sbc.scenario.DataStatistic` of the scenario, the same in every row of a
simulation. Runs made before data statistics existed have none."""

TIMING_COLUMNS: tuple[str, ...] = ("fit_seconds",)
"""Columns that measure wall time and so differ between otherwise identical runs."""


def result_rows(
    columns: Mapping[str, Any], statistics: Mapping[str, float] | None = None
) -> pa.Table:
    """Rows of the results table as an Arrow table: :data:`COLUMNS` and :data:`FIT_COLUMNS`, typed.

    A column given as a scalar is repeated on every row, one not given is missing (null,
    NaN for floats). The data ``statistics`` of the simulation follow as float columns
    ``stat:<name>``. The schema carries pandas' metadata, so ``.to_pandas()`` and a Parquet
    file written from the table give the results table's dtypes (``string``, ``Int64``).
    Rows stay in Arrow from the fit to the run's part files (Arrow IPC) and its Parquet
    results: building and writing them cost about 1 ms a fit against 3.3 ms through a
    pandas frame when parts were Parquet (writing an Arrow part costs about 0.3 ms).

    The float columns (statistics included) are filled into one NumPy block and the
    whole-number ones into another, each made one Arrow array whose slices are the
    columns; text columns that repeat from fit to fit (model, quantity names, kinds) come
    from a small cache: 0.14 ms for the 12 rows x 50 columns of a heights fit against
    0.30 ms column by column, the same table (values, nulls, NaN, schema).
    """
    n = len(columns["estimand"])
    statistics = statistics or {}
    layout = _layout(tuple(statistics))
    arrays: list[pa.Array | None] = [None] * len(layout.schema)
    floats = np.full((len(layout.floats) + len(statistics), n), np.nan)
    for row, (position, name) in enumerate(layout.floats):
        value = columns.get(name)
        if value is not None and not _fill_float(floats, row, value, n):
            arrays[position] = pa.array(np.asarray(value, dtype=float))
    for row, value in enumerate(statistics.values(), start=len(layout.floats)):
        floats[row] = np.full(n, value, dtype=float)
    ints = np.zeros((len(layout.ints), n), dtype=np.int64)
    for row, (position, name) in enumerate(layout.ints):
        value = columns.get(name)
        if not _fill_int(ints, row, value, n):
            arrays[position] = _typed(value, pa.int64(), n)
    first_statistic = len(arrays) - len(statistics)
    positions = [p for p, _ in layout.floats] + list(range(first_statistic, len(arrays)))
    _slice_into(arrays, positions, floats)
    _slice_into(arrays, [p for p, _ in layout.ints], ints)
    for position, name, kind in layout.others:
        arrays[position] = _typed(columns.get(name), kind, n)
    return pa.Table.from_arrays(arrays, schema=layout.schema)


class _Layout(NamedTuple):
    """Where each column of result rows goes: float, whole-number (int64) or other columns."""

    schema: pa.Schema
    floats: tuple[tuple[int, str], ...]
    ints: tuple[tuple[int, str], ...]
    others: tuple[tuple[int, str, pa.DataType], ...]


@lru_cache(maxsize=64)
def _layout(statistics: tuple[str, ...]) -> _Layout:
    """The schema of result rows with these data statistics, its columns by kind."""
    schema = _schema(statistics)
    floats, ints, others = [], [], []
    for position, name in enumerate((*COLUMNS, *FIT_COLUMNS)):
        kind = schema.field(name).type
        if _dtype(name) == "float64":
            floats.append((position, name))
        elif kind == pa.int64():
            ints.append((position, name))
        else:
            others.append((position, name, kind))
    return _Layout(schema, tuple(floats), tuple(ints), tuple(others))


_SCALARS = (int, float, str, bool, type(None), np.generic)
_INT64 = range(-(2**63), 2**63)


def _is_scalar(value: Any) -> bool:
    """``np.ndim(value) == 0``, without converting a list to an array to find out."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, list | tuple):
        return False
    return np.ndim(value) == 0


def _fill_float(block: np.ndarray, row: int, value: Any, n: int) -> bool:
    """Put a float column in ``block[row]``; ``False`` if it is not ``n`` long (left as is)."""
    if _is_scalar(value):
        block[row] = np.asarray([value], dtype=float)
        return True
    values = np.asarray(value, dtype=float)
    if values.shape != (n,):
        return False
    block[row] = values
    return True


def _fill_int(block: np.ndarray, row: int, value: Any, n: int) -> bool:
    """Put a whole-number column given as an int or int64 array in ``block[row]``.

    ``False`` for anything else (missing values, other types), built as before instead.
    """
    if type(value) is int and value in _INT64:
        block[row] = value
        return True
    if isinstance(value, np.ndarray) and value.dtype == np.int64 and value.shape == (n,):
        block[row] = value
        return True
    return False


def _slice_into(arrays: list[pa.Array | None], positions: list[int], block: np.ndarray) -> None:
    """Fill the empty ``positions`` of ``arrays`` with the rows of ``block`` (one array)."""
    n = block.shape[1]
    whole = pa.array(block.reshape(-1))
    for row, position in enumerate(positions):
        if arrays[position] is None:
            arrays[position] = whole.slice(row * n, n)


def _typed(value: Any, kind: pa.DataType, n: int) -> pa.Array:
    """One column of type ``kind`` (pandas' missing values become nulls)."""
    if value is None:
        return _nulls(kind, n)
    if _is_scalar(value):
        if type(value) is str:
            return _strings((value,) * n, kind)
        return pa.array([value] * n, type=kind, from_pandas=True)
    if type(value) is list and all(type(v) is str for v in value):
        return _strings(tuple(value), kind)
    return pa.array(value, type=kind, from_pandas=True)


@lru_cache(maxsize=256)
def _strings(values: tuple[str, ...], kind: pa.DataType) -> pa.Array:
    """A text column; model names, quantity names and kinds repeat from fit to fit."""
    return pa.array(values, type=kind, from_pandas=True)


@lru_cache(maxsize=64)
def _nulls(kind: pa.DataType, n: int) -> pa.Array:
    """A column of ``n`` nulls."""
    return pa.nulls(n, kind)


@lru_cache(maxsize=64)
def _schema(statistics: tuple[str, ...]) -> pa.Schema:
    """The Arrow schema (with pandas metadata) of result rows with these data statistics."""
    empty = {name: pd.Series([], dtype=_dtype(name)) for name in (*COLUMNS, *FIT_COLUMNS)}
    empty |= {f"{STATISTIC_PREFIX}{name}": pd.Series([], dtype=float) for name in statistics}
    return pa.Table.from_pandas(pd.DataFrame(empty), preserve_index=False).schema


def concat_rows(tables: Sequence[pa.Table]) -> pa.Table:
    """Result rows of several fits or simulations in one table.

    Tables whose data-statistic columns differ (the error rows of a simulation that could
    not be simulated have none) are joined as ``pandas.concat`` joins their frames: a
    column missing from a table is null in its rows, in the order columns first appear.
    """
    if len({t.schema for t in tables}) <= 1:
        return pa.concat_tables(tables)
    return pa.concat_tables(tables, promote_options="permissive")


_DTYPES: dict[str, str] = {
    "simulation": "int64",
    "model": "string",
    "estimand": "string",
    "kind": "string",
    "rank": "Int64",
    "max_rank": "Int64",
    "thin": "Int64",
    "divergences": "Int64",
    "n_draws": "Int64",
    "error": "string",
    "warnings": "string",
    **{
        c: "float64"
        for c in (
            "true_value",
            "pit",
            "post_mean",
            "post_sd",
            "rhat",
            "ess_bulk",
            "ess_tail",
            "max_rhat",
            "min_ess_bulk",
            "min_ess_tail",
            "grad_evals",
            "tree_depth",
            "fit_seconds",
            *(quantile_column(q) for q in QUANTILES),
        )
    },
}

KINDS: tuple[str, ...] = ("estimand", "test_quantity")
"""Values of the ``kind`` column."""


class SchemaError(ValueError):
    """A table is not a results table of sbc (reported in one line)."""


def validate(table: pd.DataFrame) -> pd.DataFrame:
    """Check that ``table`` is a results table; return it unchanged.

    Checks the columns of :data:`COLUMNS` and their types (data-statistic columns
    ``stat:<name>`` may follow), the ``kind`` values, one row per (simulation, model,
    quantity), and ranks within ``0..max_rank`` with fractional ranks in (0, 1). It reads
    each column once (a few milliseconds for 100,000 rows).

    Raises
    ------
    SchemaError
        Naming the first problem found.
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise SchemaError(f"not a results table: no column {', '.join(missing[:3])}")
    extra = [
        c
        for c in table.columns
        if c not in _DTYPES
        and c not in FIT_COLUMNS
        and not c.startswith((STATISTIC_PREFIX, DIFF_PREFIX, DIFF_SE_PREFIX))
    ]
    if extra:
        raise SchemaError(f"not a results table: unknown column {extra[0]!r}")
    for name in table.columns:
        expected = _dtype(name)
        kind = table[name].dtype
        if expected == "float64" and not pd.api.types.is_float_dtype(kind):
            raise SchemaError(f"column {name} must hold numbers (float64), not {kind}")
        if expected in ("Int64", "int64") and not pd.api.types.is_integer_dtype(kind):
            raise SchemaError(f"column {name} must hold whole numbers, not {kind}")
        if expected == "string" and not (
            pd.api.types.is_string_dtype(kind) or kind == object  # noqa: E721
        ):
            raise SchemaError(f"column {name} must hold text, not {kind}")
    kinds = set(table["kind"].dropna().unique()) - set(KINDS)
    if kinds:
        raise SchemaError(f"column kind holds {sorted(kinds)[0]!r} (known: {', '.join(KINDS)})")
    if table.duplicated(["simulation", "model", "estimand"]).any():
        row = table[table.duplicated(["simulation", "model", "estimand"])].iloc[0]
        raise SchemaError(
            f"simulation {row['simulation']}, model {row['model']}, quantity "
            f"{row['estimand']} appears twice"
        )
    rank, top = (
        table["rank"].to_numpy(float, na_value=np.nan),
        table["max_rank"].to_numpy(float, na_value=np.nan),
    )
    if ((rank < 0) | (rank > top)).any():
        raise SchemaError("a rank lies outside 0..max_rank")
    pit = table["pit"].to_numpy(float)
    if ((pit <= 0) | (pit >= 1)).any():
        raise SchemaError("a fractional rank (pit) lies outside (0, 1)")
    return table


def difference_columns(table: pd.DataFrame) -> list[str]:
    """The elpd-difference columns (``elpd_diff:<model>``, then their SEs) of a table."""
    return [c for c in table.columns if c.startswith((DIFF_PREFIX, DIFF_SE_PREFIX))]


def statistic_columns(table: pd.DataFrame) -> list[str]:
    """The data-statistic columns (``stat:<name>``) of a results table, in order."""
    return [c for c in table.columns if c.startswith(STATISTIC_PREFIX)]


def _dtype(name: str) -> str:
    """The dtype of a column: core, per-fit, or a data statistic (float)."""
    return _DTYPES.get(name) or FIT_COLUMNS.get(name) or "float64"
