"""Posterior SBC: parameters from the posterior given real data, refits on real + new data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sbc.workflows.posterior
from sbc import registry
from sbc.backends import Sampling
from sbc.backends.exact import normal_posterior
from sbc.cli import main
from sbc.engine.runner import run as engine_run
from sbc.engine.simulate import join
from sbc.engine.spec import Execution, RunSpec
from sbc.results.calibration import estimand_table
from sbc.results.schema import TIMING_COLUMNS
from sbc.scenario import SettingError
from sbc.workflows.posterior import REFERENCE_FILE, Reference, parameters

REAL = np.array([2.9, 1.7, 3.1, 2.2, 2.6, 3.4, 1.9, 2.8, 2.4, 3.0])
"""A real data set far in the prior's tail (prior Normal(0, 1), sigma 1): the posterior
given it (mean 2.45, sd 0.30) is nothing like the prior."""

REAL_SCENARIO = """
import dataclasses

import numpy as np

from scenarios.conjugate import SCENARIO as BASE

REAL = np.array({real})


def real_data(design):
    return {{"y": REAL[: design["n"]]}}


SCENARIO = dataclasses.replace(BASE, name="conjugate_real", real_data=real_data{extra})
"""

SAMPLING = Sampling(chains=2, draws=100)
REFERENCE = Reference("exact", Sampling(chains=4, draws=100))


def _scenario_file(folder, extra="", name="conjugate_real"):
    path = folder / f"{name}.py"
    path.write_text(REAL_SCENARIO.format(real=REAL.tolist(), extra=extra))
    return path


def _run(path, out, models=("exact", "biased"), n=200, jobs=1, **kwargs):
    scenario = registry.get(str(path))
    spec = RunSpec.build(scenario, models=models, simulations=n, seed=2, sampling=SAMPLING)
    return engine_run(
        spec, out, Execution(jobs=jobs), parameters=parameters(spec, REFERENCE), **kwargs
    )


def _comparable(frame):
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_posterior_sbc_passes_the_exact_model_and_flags_the_biased_one(tmp_path):
    """Truths come from the posterior given real data; exact passes, biased is flagged."""
    results = _run(_scenario_file(tmp_path), tmp_path / "out")
    table = estimand_table(results).set_index(["model", "estimand"])
    assert table.loc[("exact", "theta"), "p_pot"] > 0.01
    assert abs(table.loc[("exact", "theta"), "coverage90"] - 0.9) < 0.07
    assert table.loc[("biased", "theta"), "p_pot"] < 1e-4
    truth = results.drop_duplicates("simulation")["true_value"]
    mean, sd = normal_posterior(REAL, 0.0, 1.0, 1.0)
    assert abs(truth.mean() - mean) < 4 * sd / np.sqrt(len(truth))
    assert abs(truth.std() / sd - 1) < 0.2
    assert (results["stat:mean_y"] > 0.8).all()  # the data mean of real + new data
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["identity"]["mode"] == "posterior"
    assert record["identity"]["reference"]["model"] == "exact"
    assert record["reference_fit"]["size"] == 400  # 4 x 100 independent draws, no thinning


def test_posterior_sbc_does_not_depend_on_jobs_and_resumes_with_the_saved_reference(
    tmp_path, monkeypatch
):
    """--jobs 1 and 2 give the same table; an extended run reuses reference.npz unchanged."""
    path = _scenario_file(tmp_path)
    one = _run(path, tmp_path / "one", n=30)
    two = _run(path, tmp_path / "two", n=30, jobs=2)
    pd.testing.assert_frame_equal(_comparable(one), _comparable(two))
    saved = (tmp_path / "one" / REFERENCE_FILE).read_bytes()

    def no_refit(*args, **kwargs):
        raise AssertionError("the reference posterior is fitted once per run folder")

    monkeypatch.setattr(sbc.workflows.posterior, "fit_reference", no_refit)
    longer = _run(path, tmp_path / "one", n=40)
    pd.testing.assert_frame_equal(_comparable(longer[longer["simulation"] < 30]), _comparable(one))
    assert (tmp_path / "one" / REFERENCE_FILE).read_bytes() == saved


def test_reference_pool_is_thinned_shuffled_and_seeded(tmp_path):
    """The pool holds chains * ceil(draws / thin) draws, in an order set by the run seed."""
    scenario = registry.get(str(_scenario_file(tmp_path)))
    reference = Reference("exact", Sampling(chains=4, draws=50))
    pool, info = sbc.workflows.posterior.fit_reference(scenario, scenario.defaults, reference, 1)
    again, _ = sbc.workflows.posterior.fit_reference(scenario, scenario.defaults, reference, 1)
    other, _ = sbc.workflows.posterior.fit_reference(scenario, scenario.defaults, reference, 2)
    assert info["size"] == len(pool["theta"]) == 4 * -(-50 // info["thin"])
    np.testing.assert_array_equal(pool["theta"], again["theta"])
    assert not np.array_equal(pool["theta"], other["theta"])


@pytest.mark.parametrize(
    ("argv", "extra", "message"),
    [
        (["run", "heights", "--posterior"], None, "has no real data"),
        (["run", "conjugate", "--reference", "exact"], None, "need --posterior"),
        (["--posterior", "-n", "500", "--reference-draws", "100"], "", "at most 400 simulations"),
        (["--posterior", "--reference", "oracle"], "", "no model 'oracle'"),
        (["--posterior"], ", simulate=BASE.simulate.__call__", "needs simulate=sbc.scenario"),
        (["--posterior"], ", augment=None", "needs augment(design)"),
        (["--posterior"], ", reference_model=None", "declares no reference_model"),
        (
            ["--posterior"],
            ", simulate=dataclasses.replace("
            "BASE.simulate, prior=lambda d, r: {'theta': r.normal(), 'mean': 0.0})",
            "reference model exact has no variable mean",
        ),
    ],
)
def test_posterior_sbc_bad_input_is_one_line_and_exit_2(argv, extra, message, tmp_path, capsys):
    """Whatever posterior SBC lacks is named in one line with exit code 2."""
    if extra is not None:
        argv = ["run", str(_scenario_file(tmp_path, extra)), "--draws", "100", *argv]
    assert main([*argv, "--jobs", "1", "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sbc: error: ")
    assert message in err


def test_command_line_posterior_run_writes_a_report_that_says_its_mode(tmp_path, monkeypatch):
    """`sbc run FILE --posterior` writes reports/NAME-posterior with a posterior SBC report."""
    path = _scenario_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = ["run", str(path), "--posterior", "-n", "20", "--draws", "100", "--jobs", "1"]
    assert main([*argv, "--models", "exact", "--reference-draws", "50", "--quiet"]) == 0
    out = tmp_path / "reports" / "conjugate_real-posterior"
    html = (out / "report.html").read_text()
    assert "<h1>Posterior SBC:" in html and "Reference fit: 4 chains x 50 draws" in html
    assert "mode</dt><dd>posterior SBC (reference exact)" in html
    assert (out / REFERENCE_FILE).is_file() and (out / "strata.csv").is_file()


@pytest.mark.parametrize("name", ["heights", "school", "schools", "districts", "conjugate"])
def test_every_reference_model_carries_the_parameters_of_its_process(name):
    """Each shipped reference model has every parameter its process needs, by name."""
    scenario = registry.get(name)
    design = scenario.design(scenario.defaults)
    rng = np.random.default_rng(0)
    params = scenario.simulate.prior(design, rng)
    backend = scenario.model(scenario.reference_model).backend
    if hasattr(backend, "graph"):
        example = scenario.simulate(design, rng).data
        assert set(params) <= set(backend.graph(design, example).stored)
    else:
        assert set(params) == {"theta"}  # the exact backend's one variable


def test_process_prior_then_generate_is_the_scenario_simulator():
    """A Process draws the prior then the data from one stream: the split changes nothing."""
    scenario = registry.get("heights")
    design = scenario.design(scenario.defaults)
    one = scenario.simulate(design, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    params = scenario.simulate.prior(design, rng)
    two = scenario.simulate.generate(design, params, rng)
    assert one.truth == two.truth
    np.testing.assert_array_equal(one.data["height"], two.data["height"])


def test_join_refuses_data_sets_with_other_keys():
    """Real and new data are joined key by key; a key present in one only is an error."""
    joined = join({"y": np.arange(2)}, {"y": np.arange(3)})
    assert joined["y"].tolist() == [0, 1, 0, 1, 2]
    with pytest.raises(SettingError, match="joins them key by key"):
        join({"y": np.arange(2)}, {"z": np.arange(2)})


XLSX = next(
    (
        p / "shared/data/alberta/diploma-multiyear-sch-list-annual.xlsx"
        for p in Path(__file__).resolve().parents[2:4]
        if (p / "shared/data/alberta/diploma-multiyear-sch-list-annual.xlsx").is_file()
    ),
    None,
)


@pytest.mark.skipif(XLSX is None, reason="../shared/data/alberta is not beside the repo")
def test_alberta_posterior_sbc_refits_on_real_plus_new_school_means(tmp_path, monkeypatch):
    """Alberta models refit on 2 x 141 school means; truths near the real data's posterior."""
    monkeypatch.setenv("SBC_CACHE_DIR", str(tmp_path / "cache"))
    alberta = registry.get("alberta")
    settings = alberta.resolve_settings({"data": str(XLSX)})
    reference = Reference("partial", Sampling(chains=4, tune=200, draws=50))
    spec = RunSpec.build(
        alberta,
        settings=settings,
        models=["partial"],
        simulations=2,
        seed=1,
        sampling=Sampling(chains=2, tune=200, draws=50),
    )
    results = engine_run(spec, tmp_path / "out", parameters=parameters(spec, reference))
    assert results["error"].isna().all()
    design = alberta.design(settings)
    assert alberta.augment(design).school.tolist() == [*range(141), *range(141)]
    pop = results[results["estimand"] == "pop_mean"]["true_value"]
    observed = design.observed.mean()
    assert (abs(pop - observed) < 0.05).all()  # posterior draws near the real data, not prior
    assert {"stat:school_spread", "stat:authority_spread"} <= set(results.columns)
