"""Real-data validation (`sbc fit`): predictive p-values, PSIS-LOO, the page, stored SBC runs."""

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sbc import registry
from sbc.cli import main
from sbc.stats.checks import array_summaries, flagged, predictive_pvalue, thinned_index
from sbc.stats.loo import KHAT_MAX, compare, group_sums, psis_loo
from tests.helpers import run

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "eight_schools.py"
QUICK = ["--chains", "2", "--tune", "200", "--draws", "200", "--replicates", "100"]

BARE = """
import numpy as np

from sbc.backends.exact import ExactNormal
from sbc.scenario import Model, Scenario, Setting, Simulation


def simulate(design, rng):
    theta = rng.normal(0.0, 1.0)
    return Simulation({"theta": theta}, {"y": rng.normal(theta, 1.0, size=design["n"])})


SCENARIO = Scenario(
    name="bare",
    description="a normal mean, real data only",
    settings=(Setting("n", 5, "observations"),),
    design=lambda settings: {**settings, "prior_mean": 0.0, "prior_sd": 1.0, "sigma": 1.0},
    simulate=simulate,
    estimands=lambda design: ("theta",),
    models=(Model("exact", "the posterior", ExactNormal(), lambda d, design: dict(d)),),
    real_data=lambda design: {"y": np.linspace(-1.0, 2.0, design["n"])},
)
"""


def _bare(tmp_path: Path) -> Path:
    path = tmp_path / "bare.py"
    path.write_text(textwrap.dedent(BARE))
    return path


def test_predictive_pvalue_is_the_share_at_or_above_the_observed_value():
    """The p-value counts ties as at or above, leaves out NaN; both tails are flagged."""
    reps = np.append(np.arange(100.0), np.nan)
    assert predictive_pvalue(reps, 90.0) == pytest.approx(0.10)
    assert predictive_pvalue(reps, -1.0) == 1.0 and predictive_pvalue(reps, 99.5) == 0.0
    assert np.isnan(predictive_pvalue(reps, np.nan))
    assert np.isnan(predictive_pvalue(np.full(3, np.nan), 1.0))
    assert [flagged(p) for p in (0.02, 0.025, 0.5, 0.975, 0.98, np.nan)] == [
        True, False, False, False, True, False,
    ]  # fmt: skip


def test_array_summaries_and_thinning_on_known_inputs():
    """Mean, sd, min, max of each array; evenly spaced thinning keeps the ends."""
    found = array_summaries({"y": np.array([1.0, 2.0, 3.0, np.nan]), "n": np.array([[4, 4]])})
    assert found == pytest.approx(
        {"mean(y)": 2.0, "sd(y)": 1.0, "min(y)": 1.0, "max(y)": 3.0}
        | {"mean(n)": 4.0, "sd(n)": 0.0, "min(n)": 4.0, "max(n)": 4.0}
    )
    assert list(thinned_index(10, 4)) == [0, 3, 6, 9] and list(thinned_index(3, 500)) == [0, 1, 2]


def test_psis_loo_and_compare_agree_with_arviz_stats():
    """elpd, SE, p_loo and the paired difference equal arviz_stats.loo and compare's."""
    import arviz_base
    import arviz_stats

    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    mu = rng.normal(y.mean(), 1 / np.sqrt(40), size=(4, 500))
    good = -0.5 * (y - mu[..., None]) ** 2 - 0.5 * np.log(2 * np.pi)
    wide = -0.5 * ((y - mu[..., None]) / 2) ** 2 - np.log(2) - 0.5 * np.log(2 * np.pi)
    ours = {"good": psis_loo(good), "wide": psis_loo(wide)}
    theirs = {
        name: arviz_stats.loo(
            arviz_base.from_dict({"posterior": {"mu": mu}, "log_likelihood": {"y": ll}})
        )
        for name, ll in (("good", good), ("wide", wide))
    }
    for name in ours:
        assert ours[name].elpd == pytest.approx(theirs[name].elpd, rel=1e-3)
        assert ours[name].se == pytest.approx(theirs[name].se, rel=1e-3)
        assert ours[name].p_loo == pytest.approx(theirs[name].p, rel=1e-2)
    table = arviz_stats.compare(theirs, round_to="none")
    diff, se = compare(ours)["wide"]
    assert compare(ours)["good"] == (0.0, 0.0)
    assert diff == pytest.approx(table.loc["wide", "elpd_diff"], rel=1e-3)
    assert se == pytest.approx(table.loc["wide", "dse"], rel=1e-3)


def test_psis_loo_of_a_constant_likelihood_and_group_sums():
    """A log-likelihood equal at every draw is its own elpd; group sums add within groups."""
    constant = np.broadcast_to(np.array([-1.0, -2.0, -3.0]), (2, 50, 3))
    loo = psis_loo(constant)
    assert loo.elpd == pytest.approx(-6.0) and loo.p_loo == 0 and loo.high_k == 0
    sums = group_sums(np.arange(6.0).reshape(1, 2, 3), np.array([0, 1, 0]), 2)
    assert sums.tolist() == [[[2.0, 1.0], [8.0, 4.0]]] and KHAT_MAX == 0.7


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_eight_schools_page_checks_predictions_and_compares_by_loo(tmp_path, capsys):
    """The eight schools page: prior and posterior predictive checks, LOO table, no path."""
    out = tmp_path / "es"
    assert main(["fit", str(EXAMPLE), *QUICK, "--out", str(out)]) == 0
    html = _text(out / "fit.html")
    for part in (
        "Model validation on real data: eight_schools",
        "1. Prior predictive check",
        "2. Posterior predictive checks",
        "3. LOO comparison",
        "Recommendation",
        "By LOO (observations)",
        "--sbc-run FOLDER",  # how to get an SBC verdict
        "No leave-one-group-out",
        "school A",  # the shrinkage figure's table
        "<th class=l>setting</th>",
    ):
        assert part in html, part
    assert str(ROOT) not in html and str(Path.home()) not in html and str(tmp_path) not in html
    checks = pd.read_csv(out / "checks.csv", keep_default_na=False)
    assert set(zip(checks["check"], checks["model"], strict=True)) == {
        ("prior", ""), ("posterior", "partial"), ("posterior", "none"),
    }  # fmt: skip
    assert {"spread", "mean(y)", "sd(y)", "min(y)", "max(y)"} == set(checks["statistic"])
    assert checks["replicates"].eq(100).all() and checks["p_value"].between(0, 1).all()
    loo = pd.read_csv(out / "loo.csv")
    assert sorted(loo["model"]) == ["none", "partial"] and (loo["points"] == 8).all()
    assert loo["elpd_diff"].max() == 0 and (loo["se"] > 0).all()
    assert (out / "fit.csv").is_file()


def test_a_scenario_without_likelihood_or_statistics_still_gets_its_page(tmp_path, capsys):
    """No likelihood, statistics, observed or Process: generic checks, one line per lack."""
    out = tmp_path / "out"
    assert main(["fit", str(_bare(tmp_path)), "--replicates", "50", "--out", str(out)]) == 0
    html = _text(out / "fit.html")
    assert "Model validation on real data: bare" in html
    for lack in (
        "declares no data statistics (Scenario.data_statistics)",
        "exact: no posterior predictive check",
        "No LOO comparison: the scenario declares no likelihood (Scenario.likelihood",
        "No shrinkage figure",
    ):
        assert lack in html, lack
    assert str(tmp_path) not in html and "bare.py" not in html.split("<h2>Settings")[0]
    checks = pd.read_csv(out / "checks.csv", keep_default_na=False)
    assert set(checks["check"]) == {"prior"} and len(checks) == 4  # mean, sd, min, max of y
    assert pd.read_csv(out / "loo.csv").empty


def test_a_stored_sbc_run_must_match_scenario_and_settings(tmp_path, capsys):
    """A run of another scenario or settings: one line, exit 2; a matching run's verdict shows."""
    bare = registry.get(str(_bare(tmp_path)))
    run(bare, {"n": 5}, ["exact"], 4, tmp_path / "same")
    run(bare, {"n": 6}, ["exact"], 4, tmp_path / "other")
    run("conjugate", {}, ["exact"], 4, tmp_path / "conj")
    for folder, words in (("conj", "holds a run of scenario conjugate"), ("other", "n=6")):
        capsys.readouterr()
        argv = ["fit", bare.name, "--sbc-run", str(tmp_path / folder), "--out", str(tmp_path)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and not (tmp_path / "fit.html").exists()
    out = tmp_path / "page"
    argv = ["fit", bare.name, "--sbc-run", str(tmp_path / "same"), "--replicates", "20"]
    assert main([*argv, "--out", str(out)]) == 0
    sbc = pd.read_csv(out / "sbc.csv")
    assert sbc["model"].tolist() == ["exact"] and sbc["fits"].tolist() == [4]
    html = _text(out / "fit.html")
    assert "the stored prior SBC run same (4 simulations)" in html
    assert "SBC on this design: exact is" in html


def test_a_new_sbc_run_at_the_real_design_gives_each_model_a_verdict(tmp_path, capsys):
    """`--sbc N` runs N simulations in OUT/sbc and shows each model's verdict and health."""
    out = tmp_path / "out"
    argv = ["fit", str(_bare(tmp_path)), "--sbc", "10", "--jobs", "1", "--quiet"]
    assert main([*argv, "--replicates", "20", "--out", str(out)]) == 0
    assert (out / "sbc" / "results.parquet").is_file()
    sbc = pd.read_csv(out / "sbc.csv")
    assert sbc.loc[0, "model"] == "exact" and sbc.loc[0, "fits"] == 10
    assert sbc.loc[0, "healthy_share"] == 1.0
    assert "a new prior SBC run of 10 simulations (folder sbc)" in _text(out / "fit.html")


def test_loo_table_leaves_out_observations_and_groups_where_declared():
    """With Likelihood.groups, the LOO table has a row per model at each level."""
    from types import SimpleNamespace

    from sbc.scenario import Likelihood
    from sbc.workflows.realfit import RealFit
    from sbc.workflows.validate import loo_table

    group = np.repeat(np.arange(3), 4)
    y = np.array([-2.0, 0.0, 2.0])[group] + np.tile([-0.3, -0.1, 0.1, 0.3], 3)

    def pointwise(params, data, design):
        means = np.stack([params[f"m[{j}]"] for j in range(3)], axis=-1)[..., group]
        return -0.5 * (data["y"] - means) ** 2 - 0.5 * np.log(2 * np.pi)

    likelihood = Likelihood(pointwise, groups=lambda design: (["a", "b", "c"], group))
    rng = np.random.default_rng(3)
    shared = rng.normal(0.0, 0.3, size=(2, 200))
    fits = [
        RealFit(
            "none",
            {},
            {f"m[{j}]": rng.normal(c, 0.5, (2, 200)) for j, c in enumerate((-2, 0, 2))},
            None,
        ),
        RealFit("complete", {}, {f"m[{j}]": shared for j in range(3)}, None),
    ]
    table, notes = loo_table(SimpleNamespace(likelihood=likelihood), None, {"y": y}, fits)
    assert not notes
    assert list(zip(table["level"], table["model"], table["points"], strict=True)) == [
        ("observation", "none", 12), ("observation", "complete", 12),
        ("group", "none", 3), ("group", "complete", 3),
    ]  # fmt: skip
    assert (table.groupby("level")["elpd_diff"].max() == 0).all()
    assert (table.loc[table["model"] == "complete", "elpd_diff"] < 0).all()
