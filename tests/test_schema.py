"""sbc.results.schema: typed result rows, and the validator of a results table."""

import numpy as np
import pandas as pd
import pytest

from sbc.results.schema import (
    COLUMNS,
    FIT_COLUMNS,
    SchemaError,
    concat_rows,
    result_rows,
    statistic_columns,
    validate,
)


def _rows(simulation=0, statistics=None):
    return result_rows(
        {
            "simulation": simulation,
            "model": "m",
            "estimand": ["a", "b"],
            "kind": "estimand",
            "rank": [3, 7],
            "max_rank": 10,
            "pit": [0.3, 0.7],
            "true_value": [1.0, 2.0],
        },
        statistics,
    )


def test_result_rows_repeat_scalars_and_fill_missing_columns():
    """Scalars repeat on every row; columns not given are missing; statistics follow."""
    table = _rows(statistics={"spread": 1.5}).to_pandas()
    assert list(table.columns) == [*COLUMNS, *FIT_COLUMNS, "stat:spread"]
    assert (table["model"] == "m").all() and table["post_mean"].isna().all()
    assert statistic_columns(table) == ["stat:spread"] and (table["stat:spread"] == 1.5).all()
    assert validate(table) is table


def test_concat_rows_joins_tables_with_different_statistics():
    """Rows of simulations with and without data statistics concatenate (missing: NaN)."""
    table = concat_rows([_rows(0, {"spread": 1.0}), _rows(1)]).to_pandas()
    assert len(table) == 4 and np.isnan(table["stat:spread"].iloc[2:]).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="pit"), "no column pit"),
        (lambda t: t.assign(extra=1.0), "unknown column 'extra'"),
        (lambda t: t.assign(rank=t["rank"].astype(float)), "whole numbers"),
        (lambda t: t.assign(kind="parameter"), "column kind holds 'parameter'"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "appears twice"),
        (lambda t: t.assign(rank=pd.array([3, 11], dtype="Int64")), "outside 0..max_rank"),
        (lambda t: t.assign(pit=[0.3, 1.0]), "outside (0, 1)"),
    ],
)
def test_validate_names_the_first_problem_in_one_line(change, message):
    """A table that is not a results table is refused with one line naming the problem."""
    with pytest.raises(SchemaError) as caught:
        validate(change(_rows().to_pandas()))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_tables_of_older_runs_without_the_newer_fit_columns_are_read():
    """A table lacking FIT_COLUMNS (written before they existed) still validates."""
    table = _rows().to_pandas().drop(columns=list(FIT_COLUMNS))
    assert validate(table) is table


def _reference_rows(columns, statistics=None):
    """result_rows as first written (column by column), the reference for equal tables."""
    import pyarrow as pa

    from sbc.results.schema import _dtype, _schema

    n = len(columns["estimand"])
    schema = _schema(tuple(statistics or ()))
    arrays = []
    for name in (*COLUMNS, *FIT_COLUMNS):
        value = columns.get(name)
        values = [value] * n if np.ndim(value) == 0 else value
        kind = schema.field(name).type
        if _dtype(name) == "float64":
            arrays.append(pa.array(np.asarray(values, dtype=float), type=kind))
        else:
            arrays.append(pa.array(values, type=kind, from_pandas=True))
    for value in (statistics or {}).values():
        arrays.append(pa.array(np.full(n, value, dtype=float)))
    return pa.Table.from_arrays(arrays, schema=schema)


def _nan_as_sentinel(table):
    """The table with NaN replaced by a sentinel (nulls kept), so that equals() compares it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [
        pc.if_else(pc.is_nan(c), -12345.678, c) if pa.types.is_floating(c.type) else c
        for c in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


_RANKS = np.array([3, 0, 99, 41])
_VALUES = np.linspace(-1.0, 1.0, 4)


@pytest.mark.parametrize(
    ("columns", "statistics"),
    [
        (  # a NUTS fit as the engine gives it: arrays, scalars broadcast, statistics
            {
                "simulation": 7,
                "model": "partial",
                "estimand": ["mu", "sigma", "tau", "loglik"],
                "kind": ["estimand"] * 3 + ["test_quantity"],
                "true_value": [0.5, 1.5, -0.0, np.inf],
                "rank": _RANKS,
                "max_rank": np.full(4, 99),
                "pit": _VALUES / 2 + 0.5,
                "thin": 1,
                "post_mean": _VALUES,
                "q2.5": _VALUES[::-1],
                "rhat": np.array([1.0, np.nan, 1.01, 1.02]),
                "n_draws": 2000,
                "max_rhat": 1.02,
                "divergences": 0,
                "grad_evals": 6.8,
                "fit_seconds": 0.034,
                "elpd_loo": np.float64(-280.5),
                "error": None,
                "warnings": "UserWarning: careful",
            },
            {"between_within": 3.67, "spread": np.nan},
        ),
        (  # the error rows of a simulation that could not be simulated
            {
                "simulation": 3,
                "model": "m",
                "estimand": ["a", "b"],
                "kind": "estimand",
                "true_value": np.nan,
                "error": "simulation failed: ValueError: x",
            },
            None,
        ),
        (  # strings and numbers with missing values, numpy scalars, other integer types
            {
                "simulation": np.int64(2),
                "model": "laplace",
                "estimand": ["a", None, "c"],
                "kind": ["estimand", "test_quantity", None],
                "true_value": [1.0, None, 3],
                "rank": [1, None, 3],
                "max_rank": np.array([9.0, np.nan, 9.0]),
                "pit": np.float32(0.1),
                "post_mean": np.array(2.5),
                "post_sd": np.arange(6.0)[::2],
                "thin": np.int32(2),
                "divergences": np.array([0, 1, 2], dtype=np.int32),
                "n_draws": np.uint16(5),
                "converged": [True, None, False],
                "iterations": 2**40,
                "pareto_khat": 1,
                "error": [None, "TypeError: y", None],
                "warnings": pd.NA,
            },
            {"s": 1},
        ),
        ({"simulation": 0, "model": "m", "estimand": [], "pit": []}, {"s": 0.5}),
        ({"simulation": 0, "model": "m", "estimand": ["a"], "pit": [0.5]}, None),
    ],
)
def test_result_rows_equal_the_column_by_column_reference(columns, statistics):
    """The batched result_rows gives the reference's table: schema, metadata, values, nulls."""
    table, reference = result_rows(columns, statistics), _reference_rows(columns, statistics)
    assert table.schema.equals(reference.schema, check_metadata=True)
    assert [c.null_count for c in table.columns] == [c.null_count for c in reference.columns]
    assert _nan_as_sentinel(table).equals(_nan_as_sentinel(reference))
    pd.testing.assert_frame_equal(table.to_pandas(), reference.to_pandas())


@pytest.mark.parametrize("pit", [[0.1], np.zeros((2, 2)), np.zeros(3)])
def test_result_rows_refuse_a_column_of_another_length_as_the_reference_does(pit):
    """A column whose length is not the number of quantities raises, as before."""
    import pyarrow as pa

    columns = {"simulation": 0, "model": "m", "estimand": ["a", "b"], "pit": pit}
    with pytest.raises(pa.ArrowInvalid):
        _reference_rows(columns)
    with pytest.raises(pa.ArrowInvalid):
        result_rows(columns)
