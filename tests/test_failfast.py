"""Runs stop at once, in one line, when a model cannot be fitted; failed models get their state."""

import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from sbc import registry, seeding
from sbc.backends import Sampling
from sbc.cli import main
from sbc.engine.execute import release_workers
from sbc.engine.failfast import FailureWatch, ModelFailure
from sbc.engine.task import Task
from sbc.engine.worker import Job, work
from sbc.report.html import render
from sbc.results.calibration import estimand_table, model_table
from sbc.results.schema import COMPILE_FAILED, result_rows
from sbc.results.store import RunStore

SCENARIO = '''
import dataclasses
import os
import time

from scenarios.conjugate import SCENARIO as BASE
from sbc.backends.exact import ExactNormal
from sbc.scenario import Model, Setting


@dataclasses.dataclass(frozen=True)
class Broken:
    """Its compile raises (when SBC_TEST_BROKEN is set, if only_when_flagged)."""

    only_when_flagged: bool = False

    def compile(self, design, example):
        if self.only_when_flagged and not os.environ.get("SBC_TEST_BROKEN"):
            return ExactNormal().compile(design, example)
        raise TypeError(
            "Cannot convert Type Vector(float64, shape=(?,)) (of Variable y__observed) into "
            "Type Vector(int64, shape=(?,))"
        )


@dataclasses.dataclass(frozen=True)
class Crashy:
    """Compiles; every fit raises, except (slowly) when y[0] is above the design's bar."""

    above: float = 0.0
    inner: object = None

    def compile(self, design, example):
        inner = ExactNormal().compile(design, example)
        return dataclasses.replace(self, above=design["slow_above"], inner=inner)

    def fit(self, data, seed, sampling):
        if data["y"][0] > self.above:
            time.sleep(120)
            return self.inner.fit(data, seed, sampling)
        raise ValueError("every fit fails")


def theta(draws, design):
    return {"theta": draws["theta"]}


SCENARIO = dataclasses.replace(
    BASE,
    name="failing",
    settings=(*BASE.settings, Setting("slow_above", 99.0, "y[0] above which crashy sleeps")),
    models=(
        *BASE.models,
        Model("broken", "compile raises", Broken(), theta),
        Model("broken_later", "compile raises once SBC_TEST_BROKEN is set", Broken(True), theta),
        Model("crashy", "every fit raises", Crashy(), theta),
        Model("mostly", "fits raise when mean(y) > -0.5", ExactNormal(fail_when=-0.5), theta),
        Model("partial", "the analytic posterior", ExactNormal(), theta),
        Model("mutant_broken", "compile raises", Broken(), theta, mutant=True),
    ),
)
'''


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "failing.py"
    path.write_text(textwrap.dedent(SCENARIO))
    return path


def _run(capsys, path, out, *args):
    start = time.perf_counter()
    code = main(["run", str(path), "--out", str(out), "--quiet", "--draws", "50", *args])
    return code, capsys.readouterr().err, time.perf_counter() - start


def test_compile_error_stops_the_run_at_once_in_one_line(capsys, scenario_file, tmp_path):
    """A model that cannot compile stops a 500-simulation run after one, naming it, exit 2."""
    out = tmp_path / "out"
    args = ("-n", "500", "-j", "1", "--models", "exact,broken")
    code, err, seconds = _run(capsys, scenario_file, out, *args)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        "sbc: error: scenario failing, model broken: compiling it raised TypeError: Cannot "
        "convert Type Vector(float64, shape=(?,)) (of Variable y__observed)"
    )
    assert "run stopped, 0 finished simulations kept in" in err
    assert seconds < 10 and not RunStore(out).finished()


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_a_simulation_with_an_uncompilable_model_fits_no_model(scenario_file, timeout):
    """Every model is compiled before any is fitted; a broken one comes back alone at once."""
    scenario = registry.get(str(scenario_file))
    task = Task(scenario.name, tuple(scenario.defaults.items()), ("exact", "broken"), 0, 0,
                Sampling(draws=20))  # fmt: skip
    rows = work(Job(task, timeout)).to_pandas()
    assert set(rows["model"]) == {"broken"}
    assert rows["error"].str.startswith(COMPILE_FAILED + "TypeError: Cannot convert").all()


def test_first_fits_all_raising_stop_the_run(capsys, scenario_file, tmp_path):
    """A model whose first five fits all raised stops the run; isolated failures do not."""
    out = tmp_path / "out"
    code, err, _ = _run(
        capsys, scenario_file, out, "-n", "200", "-j", "1", "--models", "exact,crashy"
    )
    assert code == 2 and err.count("\n") == 1
    assert "model crashy: its first 5 fits all raised ValueError: every fit fails" in err
    args = ("-n", "60", "-j", "1", "--models", "exact,flaky")
    assert _run(capsys, scenario_file, tmp_path / "flaky", *args)[0] == 0


def test_a_model_broken_between_runs_stops_and_keeps_finished_parts(
    capsys, scenario_file, tmp_path, monkeypatch
):
    """Extending a run whose model no longer compiles keeps the parts finished before."""
    out = tmp_path / "out"
    args = ("--models", "exact,broken_later", "-j", "1")
    assert _run(capsys, scenario_file, out, "-n", "6", *args)[0] == 0
    monkeypatch.setenv("SBC_TEST_BROKEN", "1")
    release_workers(wait=True)  # each command has workers of its own
    code, err, _ = _run(capsys, scenario_file, out, "-n", "20", *args)
    assert code == 2 and "model broken_later: compiling it raised TypeError" in err
    assert "run stopped, 6 finished simulations kept in" in err
    assert RunStore(out).finished() == set(range(6))
    monkeypatch.delenv("SBC_TEST_BROKEN")
    release_workers(wait=True)
    assert _run(capsys, scenario_file, out, "-n", "20", *args)[0] == 0  # resumes once fixed
    assert RunStore(out).finished() == set(range(20))


def _first_values(seed: int) -> list[float]:
    """y[0] of the first seven simulations of ``seed``."""
    scenario = registry.get("conjugate")
    design = scenario.design(scenario.defaults)
    return [scenario.simulate(design, seeding.data_rng(seed, i)).data["y"][0] for i in range(7)]


def test_stop_kills_a_busy_worker_with_two_jobs(capsys, scenario_file, tmp_path):
    """With two workers, the stop does not wait for the other worker's long fit.

    Simulation 1 (the second worker's first) sleeps 120 s; the other simulations raise at
    once, so the first worker reports five failures while the second still sleeps.
    """
    seed = next(s for s in range(200) if np.argmax(_first_values(s)) == 1)
    first = sorted(_first_values(seed))
    args = ("-n", "40", "-j", "2", "--seed", str(seed), "--models", "crashy")
    bar = f"slow_above={(first[-1] + first[-2]) / 2}"
    code, err, seconds = _run(capsys, scenario_file, tmp_path / "out", *args, "--set", bar)
    assert code == 2 and "model crashy: its first 5 fits all raised" in err, err
    assert seconds < 90


def test_mutants_stop_too(scenario_file, tmp_path, capsys):
    """`sbc mutants` with a mutant that cannot compile stops with exit 2, in one line."""
    argv = ["mutants", str(scenario_file), "-n", "30", "-j", "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model mutant_broken: compiling it raised TypeError" in err


def test_sweeps_stop_too(scenario_file, tmp_path, capsys):
    """A sweep cell whose model cannot compile stops the sweep with exit 2, in one line."""
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        f'scenario = "{scenario_file}"\nmodels = ["exact", "broken"]\nsimulations = 30\n'
        "[grid]\nn = [5, 10]\n"
    )
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sw"), "--quiet", "-j", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model broken: compiling it raised TypeError" in err


def test_watch_rules():
    """Compile errors stop at once; five first failures stop; one success protects a model."""
    watch = FailureWatch("s", first=5)

    def sim(i, model, error):
        return result_rows({"simulation": i, "model": model, "estimand": ["t"], "kind": "estimand",
                       "true_value": 0.0, "error": error})  # fmt: skip

    watch.check(sim(0, "a", None))
    for i in range(1, 9):
        watch.check(sim(i, "a", "ValueError: later failures are isolated"))
    for i in range(4):
        watch.check(sim(i, "b", "simulation failed: counts for no model"))
        watch.check(sim(i, "b", "ValueError: x"))
    with pytest.raises(ModelFailure, match="model b: its first 5 fits all raised ValueError: x"):
        watch.check(sim(9, "b", "ValueError: x"))
    with pytest.raises(ModelFailure, match="model c: compiling it raised TypeError: y") as info:
        watch.check(sim(3, "c", COMPILE_FAILED + "TypeError: y\n  more"))
    assert info.value.simulations == (3,)


def _results(errors: dict[str, list[str | None]]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for model, errs in errors.items():
        for i, error in enumerate(errs):
            ok = error is None
            frames.append(
                result_rows(
                    {
                        "simulation": i,
                        "model": model,
                        "estimand": ["theta"],
                        "kind": "estimand",
                        "true_value": rng.normal(),
                        "rank": int(rng.integers(0, 100)) if ok else None,
                        "max_rank": 99 if ok else None,
                        "pit": rng.uniform() if ok else np.nan,
                        "post_mean": rng.normal() if ok else np.nan,
                        "post_sd": 1.0 if ok else np.nan,
                        "divergences": 0 if ok else None,
                        "fit_seconds": 0.1,
                        "error": error,
                    }
                ).to_pandas()
            )
    return pd.concat(frames, ignore_index=True)


def test_a_model_most_of_whose_fits_raised_is_failed_not_miscalibrated(tmp_path):
    """Verdict table, summary.csv and report give 'failed: k of n fits raised <first error>'."""
    error = "TypeError: Cannot convert Type Vector(float64)"
    results = _results({"good": [None] * 40, "bad": [None] * 10 + [error] * 30})
    models = model_table(results).set_index("model")
    assert models.loc["bad", "verdict"] == f"failed: 30 of 40 fits raised {error}"
    assert not models.loc["bad", "calibrated"]
    assert models.loc["good", "verdict"] in {"calibrated", "not calibrated"}
    summary = estimand_table(results)
    assert set(summary.loc[summary["model"] == "bad", "verdict"]) == {models.loc["bad", "verdict"]}
    record = {"identity": {"scenario": "s", "sampling": {"chains": 2}, "models": [], "settings": {},
              "seed": 0, "thin": "ess"}}  # fmt: skip
    html = render(results, record)
    assert f'<td class="fail l">failed: 30 of 40 fits raised {error}</td>' in html
