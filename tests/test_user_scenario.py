"""User-defined scenarios: a file defining SCENARIO, or package.module:OBJECT."""

import dataclasses
import importlib.util
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.backends.nutpie import PyMCModel
from sbc.cli import main
from sbc.engine.preflight import ScenarioCheckError, check_scenario
from sbc.engine.task import Task, compiled, run_task
from sbc.report.html import write_report
from sbc.results.schema import TIMING_COLUMNS
from sbc.results.store import RunStore
from tests.helpers import run

SAMPLING = Sampling(chains=2, draws=100)
EXAMPLE = Path(__file__).parents[1] / "examples" / "eight_schools.py"

COPY = """
import dataclasses

from scenarios.conjugate import SCENARIO as BASE

SCENARIO = dataclasses.replace(BASE, name="{name}", description="{name}")
"""


def _write(folder, name, text):
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def _comparable(frame):
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_file_scenario_runs_in_workers_and_equals_the_registered_one(tmp_path):
    """A copy of conjugate in a user file, run with two workers, gives conjugate's table."""
    path = _write(tmp_path, "mine", COPY.format(name="mine"))
    mine = registry.get(str(path))
    assert mine.name == str(path.resolve()) and registry.display_name(mine) == "mine"
    assert registry.get(mine.name) is mine
    base = registry.get("conjugate")
    kwargs = {"seed": 2, "sampling": SAMPLING}
    ours = run(mine, mine.defaults, ["exact"], 12, tmp_path / "a", jobs=2, **kwargs)
    theirs = run(base, base.defaults, ["exact"], 12, tmp_path / "b", jobs=1, **kwargs)
    pd.testing.assert_frame_equal(_comparable(ours), _comparable(theirs))


def test_module_object_reference_resolves(tmp_path):
    """`package.module:OBJECT` names any importable scenario object."""
    scenario = registry.get("scenarios.conjugate:SCENARIO")
    assert scenario.name == "scenarios.conjugate:SCENARIO"
    assert registry.display_name(scenario) == "conjugate"
    assert registry.get(scenario.name) is scenario


def test_scenario_objects_resolve_to_a_reference_workers_can_load(tmp_path, monkeypatch):
    """An object of a module off sys.path is found by its file; a module by its SCENARIO."""
    path = _write(tmp_path, "offpath", COPY.format(name="offpath"))
    spec = importlib.util.spec_from_file_location("offpath_module", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "offpath_module", module)
    spec.loader.exec_module(module)
    found = registry.resolve(module.SCENARIO)
    assert found.name == str(path.resolve()) and registry.display_name(found) == "offpath"
    assert registry.resolve(module.SCENARIO) is found and registry.is_portable(found)
    assert registry.resolve(module) is found
    conjugate = registry.get("conjugate")
    assert registry.resolve(conjugate) is conjugate and registry.resolve("conjugate") is conjugate
    with pytest.raises(registry.ScenarioError, match="int is not a scenario"):
        registry.resolve(42)


def test_two_files_declaring_one_name_do_not_share_compiled_models(tmp_path):
    """Scenarios are keyed by their file, so equal declared names cannot collide in a cache."""
    one = registry.get(str(_write(tmp_path, "one", COPY.format(name="same"))))
    two = registry.get(str(_write(tmp_path, "two", COPY.format(name="same"))))
    assert one.name != two.name
    design = one.design(one.defaults)
    assert compiled(one, one.defaults, one.model("exact"), design) is not compiled(
        two, two.defaults, two.model("exact"), design
    )


def test_command_line_runs_a_scenario_file(tmp_path, monkeypatch):
    """`sbc run path.py` runs the file's SCENARIO into reports/<declared name> by default."""
    path = _write(tmp_path, "cli_case", COPY.format(name="cli_case"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sbc.report.html.write_report", lambda out, *a, **k: out / "report.html")
    argv = ["run", str(path), "-n", "3", "-j", "1", "--draws", "20", "--models", "exact"]
    assert main([*argv, "--quiet"]) == 0
    assert len(pd.read_parquet(tmp_path / "reports" / "cli_case" / "results.parquet")) == 6


def test_report_is_titled_with_the_declared_name_and_shows_the_reference(tmp_path):
    """A scenario file's report and run.json carry its declared name; its path sits beneath."""
    path = _write(tmp_path, "titled", COPY.format(name="my_titled"))
    scenario = registry.get(str(path))
    out = tmp_path / "out"
    run(scenario, scenario.defaults, ["exact"], 3, out, sampling=SAMPLING)
    assert RunStore(out).record()["name"] == "my_titled"
    html = write_report(out).read_text()
    assert "<title>SBC report: my_titled</title>" in html
    assert '<h1>Simulation-based calibration: my_titled</h1>\n<p class="sub ref">' in html
    assert f"scenario <code>{path.resolve()}</code>" in html
    assert f"<title>SBC report: {path.resolve()}" not in html


BROKEN = """
import dataclasses

import numpy as np

from scenarios.conjugate import SCENARIO as BASE
from sbc.scenario import Simulation


def no_truth(design, rng):
    return Simulation(truth={}, data=BASE.simulate(design, rng).data)


def ragged(design, rng):
    return Simulation({"theta": 0.0}, {"y": rng.normal(size=rng.integers(2, 9))})


def raises(design, rng):
    raise ZeroDivisionError("oops")


def no_estimands(draws, design):
    return {}


LACKS = dataclasses.replace(BASE, name="lacks", simulate=no_truth)
RAGGED = dataclasses.replace(BASE, name="ragged", simulate=ragged)
RAISES = dataclasses.replace(BASE, name="raises", simulate=raises)
NOT_A_SCENARIO = 42
NO_ESTIMANDS = dataclasses.replace(
    BASE, models=(dataclasses.replace(BASE.models[0], estimands=no_estimands),)
)
"""


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("missing.py", "scenario missing.py: no such file"),
        ("nothing.py", "scenario nothing.py: defines no SCENARIO"),
        ("imports.py", "loading it raised ModuleNotFoundError: No module named 'no_such_pkg_x'"),
        ("broken.py:NOT_A_SCENARIO", "int is not a sbc.scenario.Scenario"),
        ("broken.py:NOPE", "defines no NOPE"),
        ("broken.py:LACKS", "scenario lacks: simulated truth lacks estimand theta"),
        ("broken.py:RAGGED", "scenario ragged: data shape changes between simulations (y: "),
        ("broken.py:RAISES", "scenario raises: simulate raised ZeroDivisionError: oops"),
        ("no_such.module:X", "cannot import no_such.module"),
    ],
)
def test_broken_user_scenario_is_a_one_line_error_before_the_run(
    tmp_path, monkeypatch, capsys, ref, message
):
    """Problems detectable before fitting exit 2 with one line naming scenario and problem."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "broken", BROKEN)
    _write(tmp_path, "nothing", "X = 1\n")
    _write(tmp_path, "imports", "import no_such_pkg_x\n")
    assert main(["run", ref, "-n", "2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sbc: error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_model_without_an_estimand_is_a_per_fit_error(tmp_path):
    """An estimand a model does not provide shows in the error column, naming the model."""
    scenario = registry.get(f"{_write(tmp_path, 'broken', BROKEN)}:NO_ESTIMANDS")
    task = Task(scenario.name, tuple(scenario.defaults.items()), ("exact",), 0, 0, SAMPLING)
    rows = run_task(task).to_pandas()
    assert rows["error"].str.contains("model exact yields no draws for theta").all()


def test_model_data_missing_from_the_simulation_names_the_model():
    """A PyMC model reading a data key the simulator does not produce is refused up front."""
    scenario = registry.get(str(EXAMPLE))
    model = dataclasses.replace(
        scenario.model("none"), backend=PyMCModel(lambda d, e: None, data=("scores",))
    )
    broken = dataclasses.replace(scenario, models=(scenario.model("partial"), model))
    with pytest.raises(
        ScenarioCheckError, match=r"eight_schools, model none: data has no 'scores'"
    ):
        check_scenario(broken, broken.defaults, ["partial", "none"])


def test_eight_schools_example_is_a_valid_scenario():
    """The shipped example loads, passes the pre-run check and builds both PyMC models."""
    scenario = registry.get(str(EXAMPLE))
    assert registry.display_name(scenario) == "eight_schools"
    check_scenario(scenario, scenario.defaults, ["partial", "none"])
    design = scenario.design(scenario.defaults)
    assert scenario.estimands(design) == ("mu", "tau", *(f"theta[{j}]" for j in range(1, 9)))
    example = scenario.simulate(design, __import__("sbc.seeding").seeding.example_rng()).data
    for name in ("partial", "none"):
        model = scenario.model(name).backend.build(design, example)
        assert model["y"].get_value().shape == (8,)


FAILS_SOMETIMES = """
import dataclasses

from scenarios.conjugate import SCENARIO as BASE


def simulate(design, rng):
    simulation = BASE.simulate(design, rng)
    if simulation.truth["theta"] > 1.0:
        raise ValueError("theta too large to simulate")
    return simulation


SCENARIO = dataclasses.replace(BASE, simulate=simulate)
"""


def test_simulation_failing_at_run_time_is_recorded_per_fit(tmp_path):
    """A simulator raising for some simulations gives error rows there; the run goes on."""
    scenario = registry.get(str(_write(tmp_path, "sometimes", FAILS_SOMETIMES)))
    check_scenario(scenario, scenario.defaults, ["exact"])  # passes on the check's streams
    results = run(scenario, scenario.defaults, ["exact", "biased"], 20, tmp_path / "out")
    failed = results[results["error"].notna()]
    assert 0 < failed["simulation"].nunique() < 20
    assert failed["error"].str.startswith("simulation failed: ValueError: theta too large").all()
    assert set(failed["model"]) == {"exact", "biased"} and failed["rank"].isna().all()
    assert sorted(results["simulation"].unique()) == list(range(20))
