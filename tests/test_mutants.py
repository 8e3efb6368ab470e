"""Mutant detection: verdicts, mutation score, power curves, recommendation, report, CLI."""

import numpy as np
import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.cli import main
from sbc.report.mutants_html import write_detection_report
from sbc.report.mutants_text import recommendation
from sbc.results.detection import analyse, detection_table, score_curve, scores
from sbc.workflows.mutants import plan
from tests.helpers import run

CATALOGUE = pd.DataFrame(
    [
        {"model": "exact", "role": "correct", "equivalent": ""},
        {"model": "biased", "role": "generated", "equivalent": ""},
        {"model": "prior_only", "role": "generated", "equivalent": ""},
        {"model": "flaky", "role": "generated", "equivalent": ""},
        {"model": "overconfident", "role": "generated", "equivalent": "by construction"},
    ]
).assign(base="exact", operator="", target="", description="")


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    """Exact posteriors of the conjugate scenario: a correct model and four 'mutants'."""
    out = tmp_path_factory.mktemp("mutants")
    conjugate = registry.get("conjugate")
    models = list(CATALOGUE["model"])
    results = run(
        conjugate, conjugate.defaults, models, 120, out, seed=4, sampling=Sampling(draws=100)
    )
    return out, results, analyse(results, CATALOGUE, seed=4)


def test_verdicts_scores_and_what_reveals_each_mutant(exact_run):
    """Biased and prior-only are flagged, the latter by loglik only; flaky escapes."""
    _, _, analysis = exact_run
    table = analysis.table.set_index("model")
    assert table.loc["exact", "status"] == "calibrated"
    assert table.loc["biased", "status"] == "flagged"
    assert table.loc["biased", "flagged_estimands_only"]
    assert table.loc["prior_only", "status"] == "flagged"
    assert not table.loc["prior_only", "flagged_estimands_only"]
    assert table.loc["prior_only", "revealed_by"].startswith("loglik")
    assert table.loc["flaky", "status"] == "escaped"
    assert table.loc["overconfident", "status"] == "equivalent"
    assert (
        analysis.reveals.loc["prior_only", "loglik"]
        < 0.01
        < analysis.reveals.loc["prior_only", "theta"]
    )
    score = scores(analysis.table).set_index("role").loc["generated"]
    assert (score["counted"], score["flagged"], score["flagged_estimands_only"]) == (3, 2, 1)
    assert score["equivalent"] == 1


def test_detection_table_agrees_with_the_analysis(exact_run):
    """The benchmarks' first-N table gives the analysis's verdicts, p-values and first flags."""
    _, results, analysis = exact_run
    models = list(CATALOGUE["model"])
    table = detection_table(results, models, step=25).set_index("model")
    expected = analysis.table.set_index("model").loc[models]
    assert list(table["flagged"]) == list(expected["flagged"])
    assert np.allclose(table["min_p_holm"], expected["min_p_holm"], rtol=1e-12)
    assert table.loc["flaky", "first_flagged_at"] is pd.NA
    assert table.loc["prior_only", "first_flagged_at"] == 25  # flagged from the first 25 on


def test_power_curves_and_the_recommendation(exact_run):
    """Power rises to the verdict at the full run, is projected beyond; escapes are named."""
    _, _, analysis = exact_run
    power = analysis.power
    biased = power[(power["model"] == "biased") & (power["method"] == "subsample")]
    assert list(biased["simulations"]) == [25, 50, 100, 120]
    assert biased["power"].iloc[-1] == 1.0 and biased["power"].is_monotonic_increasing
    projected = power[(power["model"] == "flaky") & (power["method"] == "projected")]
    assert list(projected["simulations"]) == [120, 240, 480, 960, 1920]  # escapes only
    assert power.loc[power["model"] == "biased", "method"].eq("subsample").all()
    curve = score_curve(analysis).set_index("simulations")["score"]
    assert curve[120] == pytest.approx(2 / 3) and curve[1920] >= 2 / 3  # flagged count as 1
    lines = recommendation(analysis)
    assert lines[0].startswith("With N = 120, 2 of 3 generated mutants are flagged")
    assert "with estimands alone 1 of 3" in lines[0] and "1 equivalent" in lines[0]
    assert any("do not depart visibly" in line and "flaky (if it departs" in line for line in lines)


def test_detection_report_files(exact_run):
    """mutants.html with its figure and three CSV tables are written into the run folder."""
    out, _, analysis = exact_run
    html = write_detection_report(out, analysis, {"exact": {}}, "conjugate").read_text()
    assert "<svg" in html and "mutation score" in html and "flaky (if it departs" in html
    for name in ("mutants.csv", "mutants_power.csv", "mutants_reveals.csv"):
        assert (out / name).is_file()


def test_plan_lists_correct_hand_written_and_generated_models():
    """Heights: partial, its four hand-written mutants, then the generated ones."""
    heights = registry.get("heights")
    chosen = plan(heights, heights.defaults, operators=["index_shift", "drop_likelihood"])
    assert chosen.models[:5] == ["partial", *heights.mutants]
    assert chosen.models[5:] == ["drop_likelihood:obs", "index_shift:height"]
    roles = chosen.catalogue.set_index("model")["role"]
    assert roles["partial"] == "correct" and roles["index_shift:height"] == "generated"


def test_every_scenario_marks_its_mutants_and_keeps_them_out_of_default_runs():
    """Each scenario with a partial model ships mutants, never among the default models."""
    for name in registry.names():
        scenario = registry.get(name)
        if "partial" not in {m.name for m in scenario.models}:
            continue  # conjugate (the exact test scenario) and school (one school) pool nothing
        assert len(scenario.mutants) >= 2, name
        assert not set(scenario.mutants) & set(scenario.default_models)
        assert all(m.startswith("mutant_") for m in scenario.mutants)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--mutants"], "--mutants needs a SCENARIO"),
        (["mutants", "conjugate", "--model", "exact"], "no PyMC or Bambi model 'exact'"),
        (["mutants", "conjugate", "--operators", "nope"], "unknown operator nope"),
        (["mutants", "conjugate", "--model", "pymc,pymc"], "--model names pymc twice"),
        (["run", "conjugate", "--models", "beta_swap:theta"], "does not apply to 'theta'"),
        (["run", "conjugate", "--models", "swap:theta"], "not a generated mutant name"),
    ],
)
def test_bad_mutant_options_are_one_line_errors(argv, message, capsys):
    """Wrong models, operators and mutant names: one line on stderr, exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_list_shows_generated_mutants_and_equivalence(capsys):
    """`sbc list conjugate --mutants`: the PyMC model's mutants; sd 1 squared is equivalent."""
    assert main(["list", "conjugate", "--mutants"]) == 0
    out = capsys.readouterr().out
    assert "generated mutants of pymc" in out and "prior_shift:theta" in out
    assert "variance_as_sd:obs" in out and "[equivalent: the scale is the constant 1" in out


def test_sbc_mutants_runs_generated_mutants_end_to_end(tmp_path, capsys):
    """A dropped likelihood generated from the PyMC conjugate model is flagged, pymc is not."""
    out = tmp_path / "m"
    argv = ["mutants", "conjugate", "-n", "20", "-j", "1", "--tune", "200", "--draws", "200"]
    argv += ["--operators", "drop_likelihood", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out / "mutants.csv").set_index("model")
    assert table.loc["pymc", "status"] == "calibrated"
    assert table.loc["drop_likelihood:obs", "status"] == "flagged"
    printed = capsys.readouterr().out
    assert "With N = 20, 1 of 1 generated mutants are flagged" in printed
    assert (out / "mutants.html").is_file() and (out / "report.html").is_file()


def test_an_escaped_dropped_likelihood_asks_for_the_likelihood_test_quantity():
    """Without a loglik quantity a dropped likelihood is invisible: the advice says so."""
    from sbc.results.detection import Analysis

    table = pd.DataFrame(
        [
            {"model": "m", "role": "correct", "status": "calibrated", "flagged": False},
            {"model": "drop_likelihood:obs", "role": "generated", "status": "escaped"}
            | {"flagged": False, "operator": "drop_likelihood", "departure": "not visible"},
        ]
    ).assign(flagged_estimands_only=False, needed=np.inf, needed_low=300.0, needed_high=np.inf)
    reveals = pd.DataFrame({"theta": [0.5, 0.6]}, index=["m", "drop_likelihood:obs"])
    power = pd.DataFrame(columns=["model", "simulations", "power", "method"])
    lines = recommendation(Analysis(table, power, reveals, 200))
    assert any("Declare the scenario's likelihood" in line for line in lines)
