"""sbc.engine.task: one simulation's rows, the per-process compile cache, error capture."""

import pandas as pd

from sbc import registry
from sbc.backends import Sampling
from sbc.engine import task as task_module
from sbc.engine.task import Task, compiled, run_task
from sbc.results.schema import COLUMNS, validate

SAMPLING = Sampling(chains=1, draws=100)


def _task(simulation=0, models=("exact", "biased")):
    scenario = registry.get("conjugate")
    return Task("conjugate", tuple(scenario.defaults.items()), models, simulation, 5, SAMPLING)


def test_run_task_gives_one_valid_row_per_model_and_quantity():
    """A simulation's rows form a valid results table: every model times every quantity."""
    table = validate(run_task(_task()).to_pandas())
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert set(table["model"]) == {"exact", "biased"}
    per_model = table.groupby("model")["estimand"].nunique()
    assert per_model.nunique() == 1 and table["error"].isna().all()


def test_same_task_gives_the_same_rows_whatever_ran_before():
    """Rows depend on (seed, simulation) only: a task repeated after others is unchanged."""
    first = run_task(_task(3)).to_pandas().drop(columns="fit_seconds")
    run_task(_task(4))
    again = run_task(_task(3)).to_pandas().drop(columns="fit_seconds")
    pd.testing.assert_frame_equal(first, again)


def test_models_are_compiled_once_per_process():
    """A second simulation of the same model reuses the cached fitter."""
    scenario = registry.get("conjugate")
    settings = scenario.defaults
    design = scenario.design(settings)
    model = registry.model(scenario, "exact")
    fitter = compiled(scenario, settings, model, design)
    assert compiled(scenario, settings, model, design) is fitter
    assert any("exact" in key for key in task_module._COMPILED)


def test_a_fit_that_raises_is_recorded_and_the_other_models_still_fit():
    """The flaky model's raising fits get error rows; exact's rows of the same task are fine."""
    tables = [run_task(_task(s, ("exact", "flaky"))).to_pandas() for s in range(6)]
    rows = pd.concat(tables)
    assert rows.loc[rows["model"] == "exact", "error"].isna().all()
    failed = rows[(rows["model"] == "flaky") & rows["error"].notna()]
    assert len(failed) and failed["pit"].isna().all()
