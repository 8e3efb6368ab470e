"""Approximate inference: the flat model, ADVI, Laplace, Pathfinder, MODEL+METHOD models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.backends.advi import ADVI
from sbc.backends.approximate import Approximate, method_names, pareto_smoothed
from sbc.backends.exact import normal_posterior
from sbc.backends.flat import flatten
from sbc.backends.laplace import Laplace
from sbc.backends.nutpie import PyMCModel
from sbc.cli import main
from sbc.errors import SettingError
from sbc.results.calibration import KHAT_MAX, model_table
from sbc.results.strata import unhealthy
from tests.helpers import run

CONJUGATE = registry.get("conjugate")
DESIGN = CONJUGATE.design(CONJUGATE.defaults)


def _data(seed: int) -> dict[str, np.ndarray]:
    return dict(CONJUGATE.simulate(DESIGN, np.random.default_rng(seed)).data)


def _exact(data: dict[str, np.ndarray]) -> tuple[float, float]:
    return normal_posterior(data["y"], DESIGN["prior_mean"], DESIGN["prior_sd"], DESIGN["sigma"])


@pytest.fixture(scope="module")
def flat():
    """The conjugate PyMC model compiled on its flat space (theta needs no transform)."""
    model = registry.model(CONJUGATE, "pymc")
    return flatten(model.backend.graph(DESIGN, _data(0)))


def _build_regression(design, example):
    """Two normal coefficients, known noise sd: no transforms, an exactly normal posterior."""
    import pymc as pm

    with pm.Model() as model:
        x = pm.Data("x", example["x"])
        y = pm.Data("y", example["y"])
        beta = pm.Normal("beta", 0.0, 2.0, shape=2)
        pm.Normal("obs", beta[0] + beta[1] * x, 0.5, observed=y)
    return model


def _regression_data(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=15)
    return {"x": x, "y": 0.3 + 0.8 * x + rng.normal(0, 0.5, size=15)}


def test_flat_model_reads_the_data_swapped_into_its_containers(flat):
    """Refilled data change the compiled log density: its gradient vanishes at the new mode."""
    for seed in (1, 2):
        data = _data(seed)
        flat.refill(data)
        mean, _ = _exact(data)
        _, grad = flat.logp_grad(np.array([[mean]]))
        assert abs(grad[0, 0]) < 1e-8


def test_flat_model_maps_points_to_named_draws(flat):
    """The constrained draws come back by variable name, as (1, draws) arrays."""
    draws = flat.draws(np.array([[0.5], [1.5]]))
    assert list(draws) == ["theta"]
    np.testing.assert_allclose(draws["theta"], [[0.5, 1.5]])


@pytest.mark.parametrize("method", [ADVI(), ADVI("fullrank_advi", full_rank=True), Laplace()])
def test_methods_recover_an_exactly_normal_posterior(flat, method):
    """On a normal posterior every method's optimum is the posterior itself."""
    data = _data(3)
    flat.refill(data)
    fit = method.compile(flat)(np.random.default_rng(0), 4000)
    mean, sd = _exact(data)
    assert fit.converged
    assert abs(fit.points.mean() - mean) < 0.08 * sd
    assert abs(fit.points.std() / sd - 1) < 0.06


def test_advi_reaches_pymc_advi_optimum_on_a_regression():
    """Mean-field ADVI here and PyMC's own ADVI both reach the exact mean-field optimum.

    The posterior is normal, so the optimum is known: its means, and sds of one over the
    square root of the precision's diagonal. Over 20 seeds the location error here is
    0.04 sd (root mean square): 0.2 sd is a five-sigma bound.
    """
    import pymc as pm

    data = _regression_data(0)
    design = np.c_[np.ones(15), data["x"]]
    precision = design.T @ design / 0.25 + np.eye(2) / 4
    mean = np.linalg.solve(precision, design.T @ data["y"] / 0.25)
    sd = 1 / np.sqrt(np.diag(precision))
    graph = PyMCModel(_build_regression, data=("x", "y")).graph({}, data)
    flat = flatten(graph)
    flat.refill(data)
    ours = ADVI().fit(flat, np.random.default_rng(1), 20_000).points
    with graph.model:
        approx = pm.fit(
            20_000, method="advi", random_seed=2, progressbar=False, obj_optimizer=pm.adam()
        )
    theirs = approx.sample(20_000, random_seed=3).posterior["beta"].values.reshape(-1, 2)
    for draws in (ours, theirs):
        np.testing.assert_allclose(draws.mean(0), mean, atol=0.2 * sd.min())
        np.testing.assert_allclose(draws.std(0), sd, rtol=0.05)


def test_laplace_agrees_with_pymc_extras_fit_laplace():
    """Mode and covariance equal pymc-extras' Laplace approximation (no transforms here)."""
    pmx = pytest.importorskip("pymc_extras")
    data = _regression_data(1)
    graph = PyMCModel(_build_regression, data=("x", "y")).graph({}, data)
    flat = flatten(graph)
    flat.refill(data)
    ours = Laplace().fit(flat, np.random.default_rng(0), 20_000).points
    with graph.model:
        idata = pmx.fit_laplace(progressbar=False, draws=20_000, random_seed=1)
    theirs = idata.posterior["beta"].values.reshape(-1, 2)
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.02)
    np.testing.assert_allclose(np.cov(ours.T), np.cov(theirs.T), atol=0.003)


def test_pathfinder_is_compiled_once_and_refitted_on_new_data(flat):
    """One compiled path fits each data set swapped in; the same seed repeats the same fit."""
    pytest.importorskip("pymc_extras")
    from sbc.backends.pathfinder import Pathfinder

    path = Pathfinder().compile(flat)
    fits = []
    for seed in (4, 5, 4):
        data = _data(seed)
        flat.refill(data)
        fits.append(path(np.random.default_rng(0), 2000))
        mean, sd = _exact(data)
        assert abs(fits[-1].points.mean() - mean) < 0.2 * sd
    np.testing.assert_array_equal(fits[0].points, fits[2].points)
    assert not np.array_equal(fits[0].points, fits[1].points)


@pytest.mark.parametrize("tail", ["normal", "exponential", "cauchy", "t2"])
@pytest.mark.parametrize("draws", [50, 300, 2000])
def test_pareto_smoothed_equals_arviz_psislw(tail, draws):
    """Smoothed log weights and k-hat equal arviz-stats' psislw of the negated log ratios."""
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(draws)
    log_ratio = {
        "normal": rng.normal(size=draws),
        "exponential": 2 * rng.standard_exponential(draws),
        "cauchy": 3 * rng.standard_cauchy(draws),
        "t2": rng.standard_t(2, draws),
    }[tail]
    weights, khat = pareto_smoothed(log_ratio)
    expected_weights, expected_khat = array_stats.psislw(-log_ratio)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-12)
    expected_khat = float(expected_khat) if np.isfinite(expected_khat) else np.inf
    assert khat == pytest.approx(expected_khat, rel=1e-12)  # a failed fit's NaN: inf


def test_pareto_khat_separates_light_from_heavy_tailed_ratios():
    """k-hat is small for bounded importance ratios and above 0.7 for heavy-tailed ones."""
    rng = np.random.default_rng(0)
    # exponential log ratios with scale s: Pareto-tailed ratios of shape k = s
    assert pareto_smoothed(0.25 * rng.standard_exponential(4000))[1] < 0.45
    assert pareto_smoothed(1.25 * rng.standard_exponential(4000))[1] > 0.9
    assert pareto_smoothed(3 * rng.standard_cauchy(2000))[1] > KHAT_MAX
    assert pareto_smoothed(np.zeros(50))[1] == -np.inf  # the approximation is exact
    weights, khat = pareto_smoothed(np.r_[rng.normal(size=100), -np.inf])
    assert np.isneginf(weights[-1]) and np.isfinite(khat)
    np.testing.assert_allclose(np.exp(weights).sum(), 1.0)


def test_model_plus_method_names_resolve_in_the_registry():
    """MODEL+METHOD keeps the model's estimands and marks; every method name resolves."""
    for method in method_names()[1:]:
        model = registry.model(CONJUGATE, f"pymc+{method}")
        assert isinstance(model.backend, Approximate)
        assert model.estimands is registry.model(CONJUGATE, "pymc").estimands
    assert registry.with_inference(["a", "b"], ["nuts", "advi"]) == [
        "a",
        "a+advi",
        "b",
        "b+advi",
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("exact+advi", "model exact, method advi: advi needs a PyMC or Bambi model"),
        ("pymc+magic", "unknown inference method 'magic'"),
        ("nope+advi", "no model 'nope'"),
    ],
)
def test_impossible_approximations_are_refused_in_one_line(name, message):
    """A method that does not apply, or does not exist, names the model and the method."""
    with pytest.raises(SettingError, match=message):
        registry.model(CONJUGATE, name)


def test_discrete_parameters_are_refused_before_the_run():
    """A model with a discrete parameter cannot be approximated: refused by its check."""

    def build(design, example):
        import pymc as pm

        with pm.Model() as model:
            y = pm.Data("y", example["y"])
            k = pm.Poisson("k", 3.0)
            pm.Normal("obs", k, 1.0, observed=y)
        return model

    backend = Approximate(PyMCModel(build, data=("y",)), "laplace")
    with pytest.raises(ValueError, match=r"discrete parameters \(k\)"):
        backend.check({}, {"y": np.zeros(3)})


def test_cli_refuses_an_unknown_inference_method(tmp_path, capsys):
    """--inference with an unknown method is one line and exit code 2."""
    argv = ["run", "conjugate", "--models", "pymc", "--inference", "nuts,magic"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown inference method 'magic'" in err


def test_approximate_fits_store_their_diagnostics_and_no_mcmc_ones(tmp_path):
    """Each method's rows carry k-hat, convergence, iterations, objective; thin 1, no R-hat."""
    models = registry.with_inference(["pymc"], ["laplace", "advi+psis"])
    results = run(CONJUGATE, {}, models, 6, tmp_path, sampling=Sampling(chains=1, draws=500))
    assert set(results["model"]) == {"pymc+laplace", "pymc+advi+psis"}
    assert results["error"].isna().all()
    assert results["pareto_khat"].notna().all() and results["converged"].all()
    assert (results["iterations"] > 0).all() and results["objective"].notna().all()
    assert (results["thin"] == 1).all() and results["rhat"].isna().all()
    assert (results["max_rank"] == 500).all()


def test_laplace_of_a_normal_posterior_is_calibrated(tmp_path):
    """SBC of an exact approximation passes: the whole path from fit to verdict is sound."""
    results = run(
        CONJUGATE, {}, ["pymc+laplace"], 150, tmp_path, sampling=Sampling(chains=1, draws=200)
    )
    table = model_table(results)
    assert bool(table["calibrated"].iloc[0])
    assert table["khat_share"].iloc[0] == 0.0


def test_health_counts_a_high_khat_or_no_convergence_as_unhealthy():
    """A k-hat above 0.7 or no convergence makes a fit unhealthy; NUTS rows are untouched."""
    rows = pd.DataFrame(
        {
            "divergences": [0, 0, 0, 0],
            "max_rhat": [np.nan, np.nan, np.nan, 1.0],
            "pareto_khat": [0.2, 0.9, 0.3, np.nan],
            "converged": pd.array([True, True, False, pd.NA], dtype="boolean"),
        }
    )
    assert unhealthy(rows).tolist() == [False, True, True, False]


@pytest.mark.parametrize(
    "text",
    [
        'inference = ["nuts", "laplace"]\n[grid]\nn = [5, 10]\n',
        '[grid]\nn = [5, 10]\ninference = ["nuts", "laplace"]\n',
    ],
)
def test_sweep_fits_every_cell_by_every_method(tmp_path, text):
    """inference, at the top level or in [grid], makes MODEL+METHOD models of every cell."""
    from sbc.workflows.sweep import load_spec

    path = tmp_path / "sweep.toml"
    path.write_text(f'scenario = "conjugate"\nmodels = ["pymc"]\nsimulations = 5\n{text}')
    spec = load_spec(path)
    assert spec.models == ("pymc", "pymc+laplace")
    assert list(spec.grid) == ["n"]


def test_check_calibration_takes_an_inference_method(tmp_path):
    """sbc.testing checks a model fitted by a method: the result names MODEL+METHOD."""
    from sbc.testing import check_calibration

    result = check_calibration(
        "conjugate",
        "pymc",
        inference="laplace",
        simulations=20,
        sampling=Sampling(chains=1, draws=100),
        out=tmp_path,
    )
    assert result.model == "pymc+laplace" and result.calibrated


def test_dadvi_agrees_with_pymc_extras_fit_dadvi():
    """DADVI here (L-BFGS) and pymc-extras' (trust-ncg) reach the same optimum."""
    pytest.importorskip("pymc_extras")
    from pymc_extras.inference.dadvi.dadvi import fit_dadvi

    from sbc.backends.advi import DADVI

    data = _regression_data(2)
    graph = PyMCModel(_build_regression, data=("x", "y")).graph({}, data)
    flat = flatten(graph)
    flat.refill(data)
    ours = DADVI().fit(flat, np.random.default_rng(0), 20_000)
    with graph.model:
        idata = fit_dadvi(progressbar=False, n_draws=20_000, random_seed=1)
    theirs = idata.posterior["beta"].values.reshape(-1, 2)
    sd = theirs.std(0)
    assert ours.converged
    # 30 fixed draws: each fit's optimum moves with its draws by about 1/sqrt(30) sd
    np.testing.assert_allclose(ours.points.mean(0), theirs.mean(0), atol=0.6 * sd.max())
    np.testing.assert_allclose(ours.points.std(0), sd, rtol=0.3)
