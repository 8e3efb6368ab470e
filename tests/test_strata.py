"""Calibration by data stratum and by sampler health (pure statistics and the pandas layer)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sbc import registry
from sbc.backends import Sampling
from sbc.cli import main
from sbc.results.calibration import model_table
from sbc.results.schema import COLUMNS, FIT_COLUMNS, STATISTIC_PREFIX
from sbc.results.strata import (
    STRATA_COLUMNS,
    health_table,
    strata_table,
    stratified_verdict,
    unhealthy,
)
from sbc.stats.pooling import means_spread_ratio, spread_ratio
from sbc.stats.posterior import QUANTILES, quantile_column
from sbc.stats.strata import assign_strata, stratified_pvalues
from scenarios import heights
from tests.helpers import run

CONJUGATE = registry.get("conjugate")


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exact")
    return run(  # one observation: the posterior halves the prior's pull, shrinkage is strong
        CONJUGATE,
        {**CONJUGATE.defaults, "n": 1},
        ["exact"],
        600,
        out,
        seed=5,
        sampling=Sampling(chains=2, draws=100),
    )


def test_spread_ratio_is_the_square_root_of_the_one_way_anova_f():
    """For balanced groups the spread ratio equals sqrt(F) of scipy's one-way ANOVA."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(5), 8)
    values = rng.normal(groups * 0.7, 1.3)
    f = stats.f_oneway(*(values[groups == g] for g in range(5))).statistic
    assert spread_ratio(values, groups) == pytest.approx(np.sqrt(f), rel=1e-12)


def test_nested_spread_ratio_measures_groups_about_their_parent():
    """With parents, the between spread is the pooled variance of group means within parents."""
    means = np.array([1.0, 2.0, 10.0, 12.0])
    parent = np.array([0, 0, 1, 1])
    within = ((1.0 - 1.5) ** 2 + (2.0 - 1.5) ** 2 + (10 - 11) ** 2 + (12 - 11) ** 2) / 2
    assert means_spread_ratio(means, 0.25, parent) == pytest.approx(np.sqrt(within / 0.25))
    assert means_spread_ratio(means, 0.25) > 10 * means_spread_ratio(means, 0.25, parent) / 3


def test_equal_count_strata_leave_missing_values_out():
    """Tertiles hold a third of the values each; NaN statistics belong to no stratum."""
    values = np.r_[np.arange(30.0), np.nan]
    strata = assign_strata(values, 3)
    assert np.bincount(strata[:-1]).tolist() == [10, 10, 10] and strata[-1] == -1
    assert (np.diff(strata[:-1]) >= 0).all()


def test_ranks_are_uniform_within_data_strata_but_not_within_strata_of_the_truth(exact_run):
    """Exact posteriors: ranks are uniform by data-mean strata, not by true-theta strata."""
    theta = exact_run[exact_run["estimand"] == "theta"]
    pit = theta["pit"].to_numpy()
    by_data = stratified_pvalues(pit, assign_strata(theta[f"{STATISTIC_PREFIX}mean_y"]))
    by_truth = stratified_pvalues(pit, assign_strata(theta["true_value"]))
    assert (by_data > 0.001).all()
    assert by_truth[0] < 1e-6 and by_truth[2] < 1e-6
    low, high = (theta["true_value"] < theta["true_value"].quantile(q) for q in (1 / 3, 2 / 3))
    assert pit[low.to_numpy()].mean() < 0.4 and pit[~high.to_numpy()].mean() > 0.6


def test_strata_table_and_verdict_pass_an_exact_model(exact_run):
    """Every (quantity, stratum) row is present, counts add up, and the exact model passes."""
    table = strata_table(exact_run)
    assert list(table.columns) == list(STRATA_COLUMNS)
    assert len(table) == 2 * 3  # theta and loglik, three tertiles of mean_y
    assert table.groupby("estimand")["n"].sum().eq(600).all()
    assert (table["coverage90"] - 0.9).abs().max() < 0.08
    verdict = stratified_verdict(table).set_index("model")
    assert verdict.loc["exact", "stratified_calibrated"]


def _synthetic(pit, statistic, model="m"):
    n = len(pit)
    frame = pd.DataFrame(
        {
            "simulation": np.arange(n),
            "model": model,
            "estimand": "theta",
            "kind": "estimand",
            "true_value": 0.0,
            "pit": pit,
            "post_mean": 0.0,
            "post_sd": 1.0,
            **{quantile_column(q): stats.norm.ppf(q) for q in QUANTILES},
            "divergences": 0,
            "max_rhat": 1.0,
            "min_ess_bulk": 1000.0,
            "fit_seconds": 0.01,
            "error": None,
        }
    )
    frame[f"{STATISTIC_PREFIX}spread"] = statistic
    return frame


def test_stratified_verdict_finds_miscalibration_that_cancels_over_all_data():
    """Opposite skews in two strata pass the marginal test; the stratified verdict flags them."""
    rng = np.random.default_rng(3)
    n = 600
    statistic = rng.uniform(size=n)
    u = rng.uniform(size=n)
    stratum = assign_strata(statistic)
    pit = np.where(stratum == 0, np.sqrt(u), np.where(stratum == 1, 1 - np.sqrt(u), u))
    frame = _synthetic(pit, statistic)
    assert model_table(frame).loc[0, "calibrated"]
    table = strata_table(frame)
    assert table.set_index("stratum").loc[[1, 2], "p_holm"].max() < 1e-4
    assert table.set_index("stratum").loc[3, "p_holm"] > 0.01
    verdict = stratified_verdict(table).iloc[0]
    assert not verdict["stratified_calibrated"]
    assert "theta in spread stratum" in verdict["stratified_worst"]


def test_health_split_shows_what_discarding_unhealthy_fits_keeps():
    """Unhealthy fits are split off with their share, verdict and place in the data space."""
    rng = np.random.default_rng(4)
    n = 300
    statistic = rng.uniform(size=n)
    frame = _synthetic(rng.uniform(size=n), statistic)
    frame["divergences"] = np.where(statistic < 0.2, 3, 0)
    frame["max_rhat"] = np.where((statistic > 0.2) & (statistic < 0.3), 1.05, 1.0)
    assert unhealthy(frame).sum() == (statistic < 0.3).sum()
    table = health_table(frame).set_index("subset")
    assert table.loc["unhealthy", "fits"] == (statistic < 0.3).sum()
    assert table.loc["all", "share"] == 1.0
    assert table.loc["unhealthy", "median_spread"] < 0.3 < table.loc["healthy", "median_spread"]
    assert table.loc["healthy", "calibrated"]


def test_runs_store_data_statistics_and_old_results_without_them_still_report(tmp_path, capsys):
    """Runs store stat columns and strata.csv; results without them still get a report."""
    out = tmp_path / "run"
    argv = ["run", "conjugate", "-n", "30", "--jobs", "1", "--draws", "100"]
    assert main([*argv, "--models", "exact", "--out", str(out), "--quiet", "--strata", "4"]) == 0
    results = pd.read_parquet(out / "results.parquet")
    assert list(results.columns) == [*COLUMNS, *FIT_COLUMNS, f"{STATISTIC_PREFIX}mean_y"]
    strata = pd.read_csv(out / "strata.csv")
    assert list(strata.columns) == list(STRATA_COLUMNS)
    assert set(strata["model"]) == {"exact"} and len(strata) == 2 * 4  # quartiles asked for
    html = (out / "report.html").read_text()
    assert "Calibration by data stratum" in html and "Calibration by sampler health" in html
    assert "the data mean" in html  # the statistic's description, kept in run.json
    assert "split into 4 equal-count strata" in html
    assert main(["report", str(out)]) == 0  # a rewrite keeps the run's strata
    assert "split into 4 equal-count" in (out / "report.html").read_text()
    assert main(["report", str(out), "--strata", "2"]) == 0
    assert "split into 2 equal-count" in (out / "report.html").read_text()
    # results stored before data statistics and approximate inference existed
    old = results.drop(columns=[f"{STATISTIC_PREFIX}mean_y", *FIT_COLUMNS])
    old.to_parquet(out / "results.parquet")
    assert main(["report", str(out)]) == 0
    assert "stored no data statistics" in (out / "report.html").read_text()


@pytest.mark.parametrize("name", ["heights", "school", "schools", "districts", "conjugate"])
def test_every_scenario_declares_finite_data_statistics(name):
    """Each shipped scenario's data statistics are finite numbers on simulated data."""
    scenario = registry.get(name)
    design = scenario.design(scenario.defaults)
    rng = np.random.default_rng(0)
    values = scenario.statistics(scenario.simulate(design, rng).data, design)
    assert values and all(np.isfinite(v) for v in values.values())


def test_empirical_bayes_plug_in_is_zero_without_spread_and_the_moment_estimate_otherwise():
    """partial_eb's between-country sd: 0 when country means vary less than noise explains."""
    design = heights.design(heights.SCENARIO.defaults)
    country = design.country
    rng = np.random.default_rng(2)
    flat = {"height": 170 + rng.normal(size=country.size)}
    flat["height"] -= np.bincount(country, flat["height"])[country] / design.n_per_group - 170
    assert float(heights.eb_between_sd(design, flat)["between_sd_hat"]) == 0.0
    spread = {"height": 170 + 10 * country + rng.normal(size=country.size)}
    means = np.bincount(country, spread["height"]) / design.n_per_group
    expected = np.sqrt(np.var(means, ddof=1) - np.var(spread["height"] - means[country]) / 19)
    got = float(heights.eb_between_sd(design, spread)["between_sd_hat"])
    assert got == pytest.approx(expected, rel=0.02)
