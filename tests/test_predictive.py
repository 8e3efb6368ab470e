"""Held-out prediction and PSIS-LOO: batched estimators equal arviz-stats', columns and checks.

The prediction columns hold what they say, and the comparison tables read them right.
"""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from arviz_stats.base import array_stats
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp as scipy_logsumexp

from sbc import registry
from sbc.backends import Sampling
from sbc.cli import main
from sbc.engine.predict import Heldout, differences, heldout, predict
from sbc.engine.preflight import ScenarioCheckError, check_scenario
from sbc.engine.spec import Execution, RunSpec
from sbc.results.prediction import comparison_table, loo_picks_best, prediction_table
from sbc.results.schema import (
    DIFF_PREFIX,
    DIFF_SE_PREFIX,
    PREDICTION_COLUMNS,
    difference_columns,
)
from sbc.scenario import Process
from sbc.stats import comparison
from sbc.stats.predictive import (
    _psis_block,
    group_sums,
    logsumexp,
    lpd,
    psis_log_weights,
    psis_loo,
    total_se,
)
from sbc.workflows.run import run_sbc
from sbc.workflows.sweep import SpecError, load_spec
from tests.helpers import run
from tests.strategies import seeds


def _arviz_loo(loglik):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elpd, khat, _ = array_stats.loo(loglik.T[:, None, :], chain_axis=-2, draw_axis=-1)
    return elpd, khat


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([50, 200, 226, 1000, 2000]),
    st.integers(1, 12),
    st.floats(0.01, 20),
    st.booleans(),
    seeds,
)
@example(draws=1000, n=12, scale=19.0, heavy=True, seed=714)  # an exceedance underflows
def test_psis_loo_equals_arviz_stats(draws, n, scale, heavy, seed):
    """Pointwise PSIS-LOO and k-hat equal arviz-stats' (including heavy tails and k > 0.7)."""
    rng = np.random.default_rng(seed)
    loglik = rng.normal(size=(draws, n)) * scale * rng.gamma(1.0, size=n) - 3
    if heavy:
        loglik[:, 0] = -np.abs(rng.standard_t(1.5, size=draws)) * scale
    elpd, khat = psis_loo(loglik)
    expected_elpd, expected_khat = _arviz_loo(loglik)
    np.testing.assert_allclose(elpd, expected_elpd, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(khat, expected_khat, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [2, 129, 257, 1000])
def test_psis_in_blocks_equals_one_block(n):
    """Many observations smoothed block by block give each one's values of a single block."""
    rng = np.random.default_rng(n)
    loglik = rng.normal(size=(400, n)) * rng.gamma(1.0, size=n) * 3 - 3
    loglik[:, 0] = -np.abs(rng.standard_t(1.5, size=400)) * 3
    weights, khat = _psis_block(-loglik)
    elpd, khat_loo = psis_loo(loglik)
    np.testing.assert_array_equal(elpd, logsumexp(weights + loglik, axis=0))
    np.testing.assert_array_equal(khat_loo, khat)
    np.testing.assert_array_equal(psis_log_weights(-loglik)[0], weights)


def test_logsumexp_and_lpd_equal_scipy():
    """The stable log-sum-exp (with -inf entries) and lpd equal SciPy's."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 7)) * 50
    x[:, 2] = -np.inf
    x[:10, 3] = -np.inf
    for axis in (0, 1):
        np.testing.assert_allclose(logsumexp(x, axis), scipy_logsumexp(x, axis=axis))
    np.testing.assert_allclose(lpd(x), scipy_logsumexp(x, axis=0) - np.log(300))


def test_total_se_and_group_sums():
    """The SE of a sum is sqrt(n var), ArviZ's; group sums add each group's columns."""
    values = np.array([1.0, 2.0, 4.0, 7.0])
    assert total_se(values) == pytest.approx(np.sqrt(4 * np.var(values)))
    pointwise = np.arange(12.0).reshape(2, 6)
    sums = group_sums(pointwise, np.array([0, 0, 1, 2, 2, 2]), 3)
    np.testing.assert_array_equal(sums, [[1, 2, 12], [13, 8, 30]])


def test_comparison_statistics_on_known_values():
    """Coverage, bias, RMSE and the pick rate count what they say."""
    estimate = np.array([0.0, 1.0, 2.0, np.nan])
    truth = np.array([0.5, 3.0, 2.0, 1.0])
    assert comparison.se_coverage(estimate, np.ones(4), truth, z=1.0) == pytest.approx(2 / 3)
    error = comparison.estimate_error(estimate, truth)
    assert error["bias"] == pytest.approx(-2.5 / 3) and error["n"] == 3
    assert comparison.picks_best([[1, 2], [3, 0], [0, 1]], [[0, 1], [0, 1], [np.nan, 1]]) == 0.5
    assert comparison.noisy_truth_coverage(10**9) == pytest.approx(0.95, abs=1e-6)
    assert comparison.noisy_truth_coverage(4) == pytest.approx(0.920, abs=1e-3)
    mean, lo, hi = comparison.mean_interval(np.array([1.0, 2.0, 3.0, np.nan]))
    assert mean == 2.0 and lo < 2.0 < hi


def _fake_posterior(scenario, design, rng, draws=400):
    """Partial-pooling draws around a data set's truth, in the model's own names."""
    shape = (2, draws)
    return {
        "grand_mean": rng.normal(176, 1, shape),
        "between_sd": np.abs(rng.normal(6, 1, shape)),
        "sigma": np.abs(rng.normal(10, 0.5, shape)),
        "country_mean": rng.normal(176, 3, (*shape, design.n_groups)),
    }


def _heights_case(n_groups, n_per_group, seed):
    """A heights data set with its held-out replicates, and the stream that drew them."""
    scenario = registry.get("heights")
    settings = {"n_groups": n_groups, "n_per_group": n_per_group}
    design = scenario.design(scenario.defaults | settings)
    rng = np.random.default_rng(seed)
    params = scenario.simulate.prior(design, rng)
    data = scenario.simulate.generate(design, params, rng).data
    return scenario, design, rng, data, heldout(scenario.simulate, design, params, rng)


def test_predict_heights_columns_and_held_out_replicates():
    """A heights fit gets every prediction column; LOGO and new groups where groups exist."""
    scenario, design, rng, data, held = _heights_case(5, 3, seed=2)
    assert len(held.same_groups) == len(held.new_groups) == 4
    assert held.same_groups[0]["height"].shape == data["height"].shape
    model = scenario.model("partial")
    draws = _fake_posterior(scenario, design, rng)
    estimands = dict(model.estimands(draws, design))
    columns, loo = predict(scenario, design, data, held, model, draws, estimands, rng)
    assert set(columns) == set(PREDICTION_COLUMNS)
    assert all(np.isfinite(v) for v in columns.values())
    assert loo.shape == (15,)
    assert columns["elpd_loo"] == pytest.approx(loo.sum())
    assert columns["p_loo"] == pytest.approx(columns["elpd_in"] - columns["elpd_loo"])
    assert columns["elpd_in"] >= columns["elpd_loo"]


def test_predict_without_groups_or_held_out_data():
    """Without groups there is no LOGO; without held-out data no held-out columns."""
    scenario = registry.get("conjugate")
    design = scenario.design(scenario.defaults)
    rng = np.random.default_rng(3)
    data = scenario.simulate(design, rng).data
    model = scenario.model("exact")
    draws = {"theta": rng.normal(0, 1, (1, 300))}
    estimands = dict(model.estimands(draws, design))
    columns, loo = predict(scenario, design, data, None, model, draws, estimands, rng)
    assert np.isfinite(columns["elpd_loo"]) and loo is not None
    for column in ("elpd_logo", "elpd_heldout", "elpd_heldout_groups", "rmse_heldout"):
        assert np.isnan(columns[column])
    empty = Heldout(same_groups=(data,))
    columns, _ = predict(scenario, design, data, empty, model, draws, estimands, rng)
    assert np.isfinite(columns["elpd_heldout"]) and np.isnan(columns["elpd_heldout_groups"])


def test_differences_are_antisymmetric():
    """Elpd differences between two models change sign, their SEs do not."""
    a, b = np.array([-1.0, -2.0, -0.5]), np.array([-1.5, -1.0, -0.7])
    diffs = differences({"a": a, "b": b, "c": None})
    assert "c" not in diffs
    assert diffs["a"][f"{DIFF_PREFIX}b"] == pytest.approx(-diffs["b"][f"{DIFF_PREFIX}a"])
    assert diffs["a"][f"{DIFF_SE_PREFIX}b"] == pytest.approx(total_se(a - b))


def _fits(rng, n=60):
    """Synthetic per-fit rows of two models, ``good`` predicting better out of sample."""
    rows = []
    for sim in range(n):
        truth = {"over": -100 + rng.normal(), "good": -95 + rng.normal()}
        loo = {m: truth[m] + rng.normal(0, 2) for m in truth}
        for model, other in (("over", "good"), ("good", "over")):
            rows.append(
                {
                    "simulation": sim,
                    "model": model,
                    "estimand": "mu",
                    "error": None,
                    "elpd_in": truth[model] + (10 if model == "over" else 3),
                    "elpd_heldout": truth[model],
                    "elpd_heldout_groups": np.nan,
                    "elpd_loo": loo[model],
                    "elpd_loo_se": 2.0,
                    "pareto_k_max": 0.9 if model == "over" else 0.3,
                    "elpd_logo": np.nan,
                    "elpd_logo_se": np.nan,
                    "pareto_k_max_logo": np.nan,
                    "rmse_in": 1.0,
                    "rmse_heldout": 2.0,
                    f"{DIFF_PREFIX}{other}": loo[model] - loo[other],
                    f"{DIFF_SE_PREFIX}{other}": 2.0 * np.sqrt(2),
                }
            )
    return pd.DataFrame(rows)


def test_prediction_and_comparison_tables_read_the_fits():
    """The tables find the best model in and out of sample and check LOO against the truth."""
    results = _fits(np.random.default_rng(4))
    table = prediction_table(results).set_index("model")
    assert table["elpd_in"].idxmax() == "over" and table["elpd_heldout"].idxmax() == "good"
    assert table.loc["good", "elpd_heldout_vs_best"] == 0.0
    assert table.loc["over", "elpd_heldout_vs_best"] == pytest.approx(-5, abs=0.5)
    assert table.loc["over", "khat_high_share"] == 1.0
    assert 0.85 < table.loc["good", "loo_coverage"] <= 1.0
    pairs = comparison_table(results)
    assert list(pairs[["model_a", "model_b"]].iloc[0]) == ["over", "good"]
    assert pairs["true_diff"].iloc[0] == pytest.approx(-5, abs=0.5)
    assert pairs["sign_agreement"].iloc[0] > 0.9
    share, n = loo_picks_best(results)
    assert n == 60 and share > 0.9


def test_tables_are_empty_without_prediction_columns():
    """A run without prediction columns (older runs, no likelihood) gives empty tables."""
    results = pd.DataFrame({"simulation": [0], "model": ["m"], "error": [None]})
    assert prediction_table(results).empty and comparison_table(results).empty


def test_exact_posterior_loo_is_unbiased_for_held_out_elpd(tmp_path):
    """With the exact posterior, PSIS-LOO's mean error against the held-out elpd is about 0.

    LOO also prefers the exact model to the prior returned as posterior.
    """
    results = run(
        "conjugate",
        {},
        ["exact", "prior_only"],
        300,
        tmp_path / "run",
        sampling=Sampling(draws=500),
    )
    fits = results.drop_duplicates(["simulation", "model"]).set_index(["model", "simulation"])
    exact = fits.loc["exact"]
    error = exact["elpd_loo"] - exact["elpd_heldout"]
    assert abs(error.mean()) < 4 * error.std() / np.sqrt(len(error))
    assert exact["pareto_k_max"].max() < 0.7
    assert np.allclose(
        exact[f"{DIFF_PREFIX}prior_only"], -fits.loc["prior_only"][f"{DIFF_PREFIX}exact"]
    )
    table = prediction_table(results).set_index("model")
    assert table["elpd_heldout"].idxmax() == "exact" and table.loc["exact", "loo_pick_share"] > 0.7
    assert np.isnan(table.loc["exact", "elpd_heldout_groups"])  # no groups in this scenario


def test_heights_run_stores_prediction_and_reports_it(tmp_path):
    """A scarce-design heights run stores every prediction column and reports them.

    Its folder gets prediction.csv, comparison.csv and a prediction section in the report.
    """
    out = tmp_path / "heights"
    settings = {"n_groups": 8, "n_per_group": 3}
    spec = RunSpec.build(
        "heights",
        settings=settings,
        models=["complete", "none", "partial"],
        simulations=4,
        sampling=Sampling(chains=2, draws=300, tune=300),
    )
    outcome = run_sbc(spec, out, Execution(jobs=1))
    fits = outcome.results.drop_duplicates(["simulation", "model"])
    for column in PREDICTION_COLUMNS:
        assert fits[column].notna().all(), column
    assert {f"{DIFF_PREFIX}partial", f"{DIFF_SE_PREFIX}none"} <= set(fits.columns)
    assert set(pd.read_csv(out / "prediction.csv")["model"]) == {"complete", "none", "partial"}
    assert len(pd.read_csv(out / "comparison.csv")) == 3
    html = (out / "report.html").read_text()
    assert "Prediction: in sample and out of sample" in html
    assert "does PSIS-LOO tell the truth?" in html


def _broken_new_groups(design, params, rng):
    raise ValueError("no population here")


def test_new_groups_that_raise_are_caught_before_the_run():
    """A process whose new_groups raises is one line naming the scenario, before any fit."""
    base = registry.get("heights")
    process = Process(base.simulate.prior, base.simulate.generate, _broken_new_groups)
    scenario = dataclasses.replace(base, simulate=process)
    with pytest.raises(ScenarioCheckError, match=r"new_groups .* raised ValueError: no population"):
        check_scenario(scenario, scenario.defaults, ["partial"])


def test_held_out_failure_costs_only_the_held_out_columns():
    """Replicates that cannot be drawn leave a warning and NaN held-out columns, fits stand."""
    base = registry.get("conjugate")
    process = Process(base.simulate.prior, base.simulate.generate, _broken_new_groups)
    design = base.design(base.defaults)
    rng = np.random.default_rng(5)
    held = heldout(process, design, process.prior(design, rng), rng)
    assert held.same_groups == () and "no population here" in held.error
    data = base.simulate(design, rng).data
    model = base.model("exact")
    draws = {"theta": rng.normal(0, 1, (1, 300))}
    with pytest.warns(RuntimeWarning, match="held-out replicates failed"):
        columns, _ = predict(base, design, data, held, model, draws, dict(draws), rng)
    assert np.isfinite(columns["elpd_loo"]) and np.isnan(columns["elpd_heldout"])


def test_no_prediction_stores_no_prediction_columns_and_is_its_own_run(tmp_path, capsys):
    """`--no-prediction` leaves the prediction columns empty and writes no prediction.csv.

    The folder's run differs from one with prediction, so resuming mixes neither.
    """
    out = tmp_path / "run"
    argv = ["run", "conjugate", "-n", "5", "--jobs", "1", "--draws", "100", "--quiet"]
    argv += ["--models", "exact,biased", "--out", str(out)]
    assert main([*argv, "--no-prediction"]) == 0
    results = pd.read_parquet(out / "results.parquet")
    assert results["elpd_loo"].isna().all() and not difference_columns(results)
    assert not (out / "prediction.csv").exists()
    assert main(argv) == 2
    assert "other prediction" in capsys.readouterr().err


def test_sweep_key_prediction(tmp_path):
    """A sweep specification may turn prediction off; a non-boolean is refused."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'scenario = "conjugate"\nsimulations = 5\nprediction = false\n[grid]\nn = [5]\n'
    )
    assert load_spec(spec).run.prediction is False
    spec.write_text('scenario = "conjugate"\nsimulations = 5\nprediction = "no"\n[grid]\nn = [5]\n')
    with pytest.raises(SpecError, match="prediction must be true or false"):
        load_spec(spec)


def test_group_sums_keep_infinite_values_in_their_own_group():
    """An impossible observation makes its own group's sum -inf, not the others' NaN."""
    pointwise = np.array([[0.5, -np.inf, 1.0, 2.0]])
    np.testing.assert_array_equal(group_sums(pointwise, np.array([0, 0, 1, 1]), 2), [[-np.inf, 3]])


def test_a_model_new_groups_that_raises_costs_only_its_column():
    """A model whose new_groups raises keeps every other prediction column, with a warning."""
    scenario, design, rng, data, held = _heights_case(3, 2, seed=6)
    model = dataclasses.replace(scenario.model("partial"), new_groups=_broken_new_groups)
    draws = _fake_posterior(scenario, design, rng)
    estimands = dict(model.estimands(draws, design))
    with pytest.warns(RuntimeWarning, match="new groups not predicted"):
        columns, _ = predict(scenario, design, data, held, model, draws, estimands, rng)
    assert np.isnan(columns["elpd_heldout_groups"]) and np.isfinite(columns["elpd_heldout"])
