"""sbc.testing: calibration checks and assertions for test suites (exact backend: fast)."""

import dataclasses
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import sbc.engine.task
import scenarios.conjugate
from sbc.backends import Sampling
from sbc.backends.exact import ExactNormal
from sbc.cli import main
from sbc.results.schema import TIMING_COLUMNS
from sbc.scenario import Model, SettingError
from sbc.testing import (
    CalibrationResult,
    assert_calibrated,
    assert_miscalibrated,
    bonferroni,
    check_calibration,
)

FAST = Sampling(chains=2, draws=100)
MINE = dataclasses.replace(scenarios.conjugate.SCENARIO, name="mine", description="a copy")
"""A user's scenario object defined at the top level of a module (this test module)."""


def _comparable(frame):
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_a_calibrated_model_passes_and_its_temporary_folder_goes():
    """assert_calibrated returns the result of a calibrated model and removes its run folder."""
    result = assert_calibrated("conjugate", "exact", simulations=40, sampling=FAST)
    assert isinstance(result, CalibrationResult) and result.calibrated
    assert result.scenario == "conjugate" and result.model == "exact"
    assert set(result.quantities["estimand"]) == {"theta", "loglik"}
    assert result.temporary and not result.out.exists()


def test_the_failure_message_is_actionable_and_its_rerun_command_reproduces_it(tmp_path):
    """The message names quantities, p-values, coverage, the report, and a rerun command.

    The command gives the same results as the check.
    """
    with pytest.raises(AssertionError) as caught:
        assert_calibrated(
            "conjugate", "biased", simulations=30, seed=4, sampling=FAST, settings={"n": 5}
        )
    message = str(caught.value)
    assert message.startswith(
        "conjugate/biased (30 simulations, seed 4, settings: n=5) is not calibrated: "
        "ranks not uniform for theta (p="
    )
    assert "p_holm" in message and "coverage90" in message and "90% coverage" in message
    report = next(line for line in message.splitlines() if line.startswith("report: "))
    html = report.removeprefix("report: ")
    assert html.endswith("report.html") and "Verdict by model" in Path(html).read_text()
    for name in ("summary.csv", "strata.csv", "results.parquet"):  # what `sbc run` writes
        assert (Path(html).parent / name).is_file(), name
    rerun = next(line for line in message.splitlines() if line.startswith("rerun: "))
    argv = shlex.split(rerun.removeprefix("rerun: "))
    assert argv[:2] == ["sbc", "run"]
    assert main([*argv[1:], "--jobs", "1", "--quiet", "--out", str(tmp_path)]) == 0
    again = pd.read_parquet(tmp_path / "results.parquet")
    original = pd.read_parquet(html.replace("report.html", "results.parquet"))
    pd.testing.assert_frame_equal(_comparable(again), _comparable(original))


def test_miscalibration_is_asserted_on_the_quantities_named():
    """A dropped likelihood is flagged on loglik, not theta; a correct model fails the assert."""
    result = assert_miscalibrated(
        "conjugate", "prior_only", on="loglik", simulations=60, sampling=FAST
    )
    assert result.flagged(["loglik", "theta"]) == {"loglik": True, "theta": False}
    with pytest.raises(AssertionError, match=r"theta not flagged \(flagged: loglik\)"):
        assert_miscalibrated(result, on=["loglik", "theta"])
    with pytest.raises(AssertionError, match=r"every quantity passed .* more simulations"):
        assert_miscalibrated("conjugate", "exact", simulations=30, sampling=FAST, report=False)


def test_fits_that_raise_fail_the_assertion_unless_allowed():
    """A model whose fits raise is not passed silently; the message shows the first error."""
    result = check_calibration("conjugate", "flaky", simulations=40, sampling=FAST)
    assert 0 < result.error_share < 1
    with pytest.raises(AssertionError, match=r"(?s)of fits raised.*first error: RuntimeError"):
        assert_calibrated(result, report=False)
    assert assert_calibrated(result, max_error_share=1.0) is result


def test_checks_in_one_process_reuse_the_compiled_model(monkeypatch):
    """Two checks of one scenario, setting and model compile it once (jobs=1)."""
    compiles = []
    original = ExactNormal.compile

    def counting(self, design, example):
        compiles.append(design["n"])
        return original(self, design, example)

    monkeypatch.setattr(ExactNormal, "compile", counting)
    monkeypatch.setattr(sbc.engine.task, "_COMPILED", {})
    for seed in (1, 2):
        check_calibration("conjugate", "exact", simulations=5, seed=seed, settings={"n": 7})
    assert compiles == [7]


WORKER_SCENARIO = """
import dataclasses
import os
from pathlib import Path

from scenarios.conjugate import SCENARIO as BASE
from sbc.backends.exact import ExactNormal


@dataclasses.dataclass(frozen=True)
class Marked(ExactNormal):
    def compile(self, design, example):
        Path({folder!r}, f"compiled-{{os.getpid()}}-{{id(self)}}").touch()
        return ExactNormal.compile(self, design, example)


SCENARIO = dataclasses.replace(
    BASE, name="marked", models=(dataclasses.replace(BASE.models[0], backend=Marked()),)
)
"""


def test_worker_processes_keep_their_compiled_models_between_checks(tmp_path):
    """With jobs=2 a second check compiles nothing: joblib reuses the loky workers."""
    marks = tmp_path / "marks"
    marks.mkdir()
    path = tmp_path / "marked.py"
    path.write_text(textwrap.dedent(WORKER_SCENARIO.format(folder=str(marks))))
    first = check_calibration(str(path), "exact", simulations=8, jobs=2, sampling=FAST)
    compiled_once = sorted(p.name for p in marks.iterdir())
    assert 1 <= len(compiled_once) <= 2 and first.scenario == "marked"
    check_calibration(str(path), "exact", simulations=8, seed=1, jobs=2, sampling=FAST)
    assert sorted(p.name for p in marks.iterdir()) == compiled_once


def test_a_users_scenario_object_runs_in_workers_and_keeps_its_name():
    """A module-level Scenario object is found, so two workers load it: same table as one."""
    result = check_calibration(MINE, "exact", simulations=10, jobs=2, sampling=FAST)
    assert result.scenario == "mine"
    assert result.reference.endswith(":MINE") and result.reference != "mine"
    base = check_calibration("conjugate", "exact", simulations=10, sampling=FAST)
    pd.testing.assert_frame_equal(_comparable(result.results), _comparable(base.results))
    assert check_calibration(scenarios.conjugate, "exact", simulations=2).reference == "conjugate"


def test_the_rerun_command_of_a_test_modules_scenario_works_elsewhere(tmp_path):
    """The command names what the sbc command needs to import the object (PYTHONPATH)."""
    result = check_calibration(MINE, "exact", simulations=4, seed=2, sampling=FAST)
    command = result.command()
    assert command.startswith(f"PYTHONPATH={Path(__file__).parent} sbc run ")
    shell = command.replace(" sbc run ", f" {sys.executable} -m sbc.cli run ", 1)
    done = subprocess.run(f"{shell} -j 1 --quiet --out out", shell=True, cwd=tmp_path)
    assert done.returncode == 0
    again = pd.read_parquet(tmp_path / "out" / "results.parquet")
    pd.testing.assert_frame_equal(_comparable(again), _comparable(result.results))


def test_a_scenario_built_in_a_function_runs_in_this_process_only():
    """An object no module defines runs with jobs=1; jobs=2 is refused in one line."""
    local = dataclasses.replace(scenarios.conjugate.SCENARIO, name="local")
    result = assert_calibrated(local, "exact", simulations=10, sampling=FAST)
    assert result.scenario == "local" and result.command() is None
    with pytest.raises(SettingError, match="define it at module level, or use jobs=1"):
        check_calibration(local, "exact", simulations=2, jobs=2)


def test_a_model_object_is_checked_within_its_scenario():
    """A Model of one's own, not in the scenario, is checked on the scenario's simulations."""
    halved = Model("halved", "posterior sd halved", ExactNormal(scale=0.5), lambda d, _: d)
    assert_miscalibrated("conjugate", halved, on="theta", simulations=40, sampling=FAST)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "magic"}, "no model 'magic'"),
        ({"simulations": 0}, "simulations must be a whole number of at least 1"),
        ({"settings": {"sides": 3}}, "no setting 'sides'"),
        ({"settings": {"prior_sd": -1.0}}, "prior_sd=-1.0: must be positive"),
        ({"alpha": 1.5}, "alpha must lie in"),
        ({"scenario": "nope"}, "unknown scenario 'nope'"),
    ],
)
def test_bad_input_is_one_setting_error(kwargs, message):
    """Unknown names and impossible values raise a SettingError naming the problem."""
    call = {"scenario": "conjugate", "model": "exact", "simulations": 2} | kwargs
    with pytest.raises(SettingError, match=message):
        check_calibration(call.pop("scenario"), call.pop("model"), **call)


def test_bonferroni_divides_the_level_over_the_examples():
    """The per-example level keeps the family-wise chance of a false alarm at alpha."""
    assert bonferroni(0.01, 20) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="at least 1"):
        bonferroni(0.01, 0)
