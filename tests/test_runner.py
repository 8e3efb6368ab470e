"""End-to-end runs on the exact conjugate backend (milliseconds per fit)."""

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.engine.execute import release_workers
from sbc.results.calibration import estimand_table
from sbc.results.schema import COLUMNS, FIT_COLUMNS, TIMING_COLUMNS, difference_columns
from sbc.results.store import RunStore, StoreError
from tests.helpers import run

CONJUGATE = registry.get("conjugate")
SETTINGS = CONJUGATE.defaults
SAMPLING = Sampling(chains=2, draws=100)


def _run(out, models=("exact",), n=40, jobs=1, seed=7, **kwargs):
    return run(
        CONJUGATE, SETTINGS, list(models), n, out, seed=seed, sampling=SAMPLING, jobs=jobs, **kwargs
    )


def _comparable(frame):
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_results_table_has_the_documented_columns(tmp_path):
    """One row per (simulation, model, estimand), with every documented column."""
    results = _run(tmp_path, models=("exact", "biased"), n=5)
    # the per-fit columns, the data statistic, then the elpd difference to each model
    differences = [f"{p}{m}" for m in ("exact", "biased") for p in ("elpd_diff:", "elpd_diff_se:")]
    assert list(results.columns) == [*COLUMNS, *FIT_COLUMNS, "stat:mean_y", *differences]
    assert len(results) == 5 * 2 * 2  # theta and the loglik test quantity
    assert list(results["kind"].unique()) == ["estimand", "test_quantity"]
    assert (results["max_rank"] == 2 * 100).all()  # independent draws: no thinning
    assert set(json.loads((tmp_path / "run.json").read_text())) >= {"identity", "versions"}


def test_exact_posterior_gives_uniform_ranks_and_biased_one_is_flagged(tmp_path):
    """End to end, the exact backend passes uniformity and the distorted ones fail it."""
    results = _run(tmp_path, models=("exact", "biased", "overconfident"), n=300, seed=11)
    table = estimand_table(results).query("estimand == 'theta'").set_index("model")
    assert table.loc["exact", "p_ecdf"] > 0.01
    assert abs(table.loc["exact", "coverage90"] - 0.9) < 0.06
    for distorted in ("biased", "overconfident"):
        assert table.loc[distorted, "p_ecdf"] < 1e-3  # resolution of the test: 1 / 2001
        assert table.loc[distorted, "p_pot"] < 1e-4


def test_results_do_not_depend_on_jobs(tmp_path):
    """--jobs 1 and --jobs 2 give identical tables (apart from timings)."""
    one = _run(tmp_path / "one", models=("exact", "biased"), jobs=1)
    two = _run(tmp_path / "two", models=("exact", "biased"), jobs=2)
    pd.testing.assert_frame_equal(_comparable(one), _comparable(two))


def test_results_of_a_model_do_not_depend_on_the_other_models(tmp_path):
    """A model's rows are the same whether or not other models run beside it.

    Only the elpd differences to the other models are added beside them.
    """
    alone = _run(tmp_path / "alone", models=("biased",))
    together = _run(tmp_path / "together", models=("exact", "biased"))
    together = together[together["model"] == "biased"]
    together = together.drop(columns=difference_columns(together))
    pd.testing.assert_frame_equal(
        _comparable(alone.drop(columns=difference_columns(alone))), _comparable(together)
    )


def test_result_rows_read_back_as_pandas_frames_of_the_documented_dtypes(tmp_path):
    """Arrow rows joined with error rows lacking data statistics read as pandas.concat would."""
    import numpy as np
    import pyarrow.parquet as pq

    from sbc.results.schema import _DTYPES, concat_rows, result_rows

    fitted = result_rows(
        {"simulation": 3, "model": "m", "estimand": ["a", "b"],
         "kind": ["estimand", "test_quantity"], "true_value": [0.5, 1.0],
         "rank": np.array([4, 7]), "max_rank": 10, "thin": 2,
         "divergences": 0, "post_mean": [0.1, 0.2], "error": None, "warnings": "w"},
        {"mean_y": 0.25},
    )  # fmt: skip
    failed = result_rows(
        {"simulation": 4, "model": "m", "estimand": ["a"], "kind": "estimand",
         "true_value": np.nan, "error": "simulation failed: x"}
    )  # fmt: skip
    for parts in ([fitted, failed], [failed, fitted]):
        joined = concat_rows(parts)
        expected = pd.concat([p.to_pandas() for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(joined.to_pandas(), expected, check_exact=True)
        pq.write_table(joined, tmp_path / "rows.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "rows.parquet"), expected)
    frame = fitted.to_pandas()
    assert {c: str(frame[c].dtype) for c in COLUMNS} == {
        c: "string" if d == "string" else d for c, d in _DTYPES.items()
    }
    assert frame["rank"].tolist() == [4, 7] and frame["error"].isna().all()
    assert frame["stat:mean_y"].tolist() == [0.25, 0.25]


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    """A run stopped part-way keeps its finished simulations and resumes to the same table."""
    whole = _run(tmp_path / "whole")
    calls = {"n": 0}
    original = RunStore.write_part

    def write_then_stop(self, frame):
        original(self, frame)
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "write_part", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "resumed")
    monkeypatch.undo()
    assert len(RunStore(tmp_path / "resumed").finished()) == 15
    resumed = _run(tmp_path / "resumed", jobs=2)
    pd.testing.assert_frame_equal(_comparable(whole), _comparable(resumed))


def test_resume_computes_only_missing_simulations(tmp_path, monkeypatch):
    """Re-running a finished run fits nothing; extending it fits only the new simulations."""
    _run(tmp_path, n=10)
    fitted = []
    import sbc.engine.task
    import sbc.engine.worker

    monkeypatch.setattr(
        sbc.engine.worker,
        "run_task",
        lambda task: fitted.append(task.simulation) or sbc.engine.task.run_task(task),
    )
    _run(tmp_path, n=10)
    assert fitted == []
    results = _run(tmp_path, n=14)
    assert fitted == [10, 11, 12, 13]
    assert sorted(results["simulation"].unique()) == list(range(14))


def test_folder_with_another_run_is_refused(tmp_path):
    """Resuming into a folder that holds a run with other settings is an error, not a mix."""
    _run(tmp_path, n=3)
    with pytest.raises(StoreError, match="other seed"):
        _run(tmp_path, n=3, seed=8)


def test_a_fit_that_raises_is_recorded_and_the_run_goes_on(tmp_path):
    """Failing fits keep their error text; other simulations and models are unaffected."""
    results = _run(tmp_path, models=("flaky", "exact"), n=60)
    flaky = results[results["model"] == "flaky"]
    failed = flaky[flaky["error"].notna()]
    assert 0 < len(failed) < len(flaky)
    assert failed["error"].str.contains("RuntimeError: deliberate failure").all()
    assert failed["rank"].isna().all() and failed["true_value"].notna().all()
    assert results.loc[results["model"] == "exact", "error"].isna().all()
    table = estimand_table(results).set_index(["model", "estimand"])
    assert table.loc[("flaky", "theta"), "errors"] == len(failed) // 2


def test_fixed_thinning_is_recorded_and_sets_max_rank(tmp_path):
    """A fixed thinning factor keeps every k-th draw of each chain: L = chains * draws / k."""
    results = _run(tmp_path, n=3, thin=10)
    assert (results["thin"] == 10).all()
    assert (results["max_rank"] == 2 * 10).all()
    assert json.loads((tmp_path / "run.json").read_text())["identity"]["thin"] == 10


def test_dropped_likelihood_passes_parameter_ranks_but_fails_loglik(tmp_path):
    """A posterior equal to the prior has uniform theta ranks; the log-likelihood flags it."""
    results = _run(tmp_path, models=("prior_only",), n=200, seed=21)
    table = estimand_table(results).set_index("estimand")
    assert table.loc["theta", "p_ecdf"] > 0.05 and table.loc["theta", "p_pot"] > 0.05
    assert table.loc["loglik", "p_ecdf"] < 1e-3 and table.loc["loglik", "p_holm"] < 0.01
    assert table.loc["loglik", "z_mean"] < 0  # the truth fits its own data better than prior draws


def test_test_quantities_can_be_switched_off(tmp_path):
    """Without test quantities only estimands are ranked, and the run records it."""
    results = _run(tmp_path, n=3, test_quantities=False)
    assert set(results["estimand"]) == {"theta"}
    assert json.loads((tmp_path / "run.json").read_text())["identity"]["test_quantities"] is False


def test_loglik_truth_is_the_log_likelihood_at_the_true_theta(tmp_path):
    """The stored true loglik equals the normal log-likelihood of the data at the true theta."""
    from scipy import stats

    from sbc import seeding

    results = _run(tmp_path, n=2)
    sim = CONJUGATE.simulate(CONJUGATE.design(SETTINGS), seeding.data_rng(7, 1))
    row = results.query("simulation == 1 and estimand == 'loglik'").iloc[0]
    expected = stats.norm.logpdf(sim.data["y"], sim.truth["theta"], 1.0).sum()
    assert row["true_value"] == pytest.approx(expected)


def test_correct_model_is_not_flagged_more_often_with_test_quantities():
    """With loglik added to theta, Holm keeps the exact model's false-flag rate at about 1%."""
    import numpy as np
    from scipy import stats

    from sbc.engine.task import Task, run_task
    from sbc.results.calibration import ALPHA
    from sbc.results.schema import concat_rows

    reps, n = 30, 80
    flagged = {True: 0, False: 0}
    for rep in range(reps):
        for with_quantities in (True, False):
            tasks = [
                Task(
                    "conjugate",
                    tuple(SETTINGS.items()),
                    ("exact",),
                    i,
                    1000 + rep,
                    SAMPLING,
                    None,
                    with_quantities,
                )
                for i in range(n)
            ]
            table = estimand_table(concat_rows([run_task(t) for t in tasks]).to_pandas())
            flagged[with_quantities] += bool(np.nanmin(table["p_holm"]) < ALPHA)
    bound = stats.binom.ppf(0.999, reps, ALPHA)
    assert flagged[True] <= bound and flagged[False] <= bound, flagged


@pytest.mark.parametrize("wait", [False, True])
def test_release_workers_stops_the_idle_workers_and_a_later_run_starts_new_ones(tmp_path, wait):
    """After a run, release_workers ends its worker processes; the next run works as before."""
    from sbc.engine import pool

    first = _run(tmp_path / "first", n=4, jobs=2)
    pids = pool.get_pool(2).pids()
    assert pids
    release_workers(wait=wait)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)
    again = _run(tmp_path / "again", n=4, jobs=2)
    pd.testing.assert_frame_equal(_comparable(first), _comparable(again))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a reaped or zombie process does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_keep_freed_memory_so_fits_do_not_page_fault_it_in_again():
    """After keep_freed_memory, a fit's diagnostics reuse freed memory instead of faulting."""
    import resource
    import sys

    import numpy as np

    from sbc.engine.worker import keep_freed_memory
    from sbc.stats.mcmc import diagnose

    if not sys.platform.startswith("linux") or not keep_freed_memory():
        pytest.skip("needs glibc's mallopt")
    draws = np.random.default_rng(0).normal(size=(12, 2, 1000))
    diagnose(draws)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        diagnose(draws)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 20 * 100, faults  # about 1160 a call without it
