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
