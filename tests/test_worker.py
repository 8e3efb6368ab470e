"""sbc.engine.worker: a worker's side of one simulation (timeouts, error rows)."""

from sbc import registry
from sbc.backends import Sampling
from sbc.engine.task import Task
from sbc.engine.worker import Job, died, work


def _task(models=("exact",)):
    scenario = registry.get("conjugate")
    return Task("conjugate", tuple(scenario.defaults.items()), models, 0, 1, Sampling(draws=100))


def test_work_returns_the_rows_of_the_task():
    """A job's rows are those of run_task: every quantity of every model, no errors."""
    table = work(Job(_task(("exact", "biased")))).to_pandas()
    assert set(table["model"]) == {"exact", "biased"} and table["error"].isna().all()


def test_work_with_a_fit_timeout_gives_the_same_rows():
    """A generous fit timeout changes nothing but the timing."""
    plain = work(Job(_task())).to_pandas().drop(columns="fit_seconds")
    timed = work(Job(_task(), fit_timeout=60)).to_pandas().drop(columns="fit_seconds")
    assert plain.equals(timed)


def test_died_gives_error_rows_for_every_fit():
    """A simulation whose worker died: one error row per model and quantity, no ranks."""
    table = died(_task(("exact", "biased")), "WorkerDied: SIGKILL (3 attempts)").to_pandas()
    assert set(table["model"]) == {"exact", "biased"}
    assert (table["error"] == "WorkerDied: SIGKILL (3 attempts)").all()
    assert table["pit"].isna().all()
