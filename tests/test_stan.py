"""sbc.backends.stan: Stan programs compiled once, fitted in process, their errors in one line."""

import dataclasses
import shutil
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.backends.exact import normal_posterior
from sbc.backends.stan import StanCompileError, StanModel
from sbc.backends.stan_build import cxx_compiler, stanc_message
from sbc.engine.preflight import ScenarioCheckError, check_scenario
from sbc.scenario import Model
from tests.helpers import run

pytest.importorskip("httpstan", reason="the stan extra is not installed")
needs_compiler = pytest.mark.skipif(
    shutil.which(cxx_compiler()) is None, reason="no C++ compiler to build Stan programs"
)

# A conjugate normal mean (exact posterior known) and a matrix generated quantity, to check
# that draws of arrays come back in their shape (Stan writes them column-major).
NORMAL = """
data { int<lower=1> N; vector[N] y; real m0; real<lower=0> s0; real<lower=0> sigma; }
parameters { real theta; }
model { theta ~ normal(m0, s0); y ~ normal(theta, sigma); }
generated quantities {
  matrix[2, 3] grid;
  for (i in 1:2) for (j in 1:3) grid[i, j] = 10 * i + j + 0 * theta;
}
"""

HEIGHTS = registry.get("heights")


def _normal_data(design, data):
    return {"N": data["y"].size, "y": data["y"], "m0": 0.0, "s0": 2.0, "sigma": 1.0}


@pytest.fixture(scope="module")
def normal():
    """The conjugate program, compiled (or loaded from httpstan's cache) once."""
    y = np.random.default_rng(3).normal(1.0, 1.0, 10)
    return StanModel(NORMAL, _normal_data).compile(None, {"y": y}), y


@needs_compiler
def test_a_small_program_compiles_and_fits_to_its_exact_posterior(normal):
    """Draws of (chain, draw, *shape); the posterior mean and sd match the exact ones."""
    fitter, y = normal
    posterior = fitter.fit({"y": y}, 7, Sampling(chains=2, draws=2000))
    theta = posterior.draws["theta"]
    assert theta.shape == (2, 2000)
    mean, sd = normal_posterior(y, 0.0, 2.0, 1.0)
    assert abs(theta.mean() - mean) < 5 * sd / np.sqrt(1000)  # ESS of 4000 draws, at least
    assert abs(theta.std() / sd - 1) < 0.1
    grid = posterior.draws["grid"]
    assert grid.shape == (2, 2000, 2, 3)
    assert np.array_equal(grid[0, 0], [[11, 12, 13], [21, 22, 23]])
    assert posterior.divergences == 0 and posterior.grad_evals >= 1 and posterior.tree_depth >= 1


@needs_compiler
def test_the_seed_alone_sets_the_draws(normal):
    """The same seed gives the same draws, another seed others; Stan's own time is read."""
    fitter, y = normal
    sampling = Sampling(chains=2, tune=100, draws=200)
    first = fitter.run({"y": y}, 2**32 - 1, sampling)
    again = fitter.run({"y": y}, 2**32 - 1, sampling)
    other = fitter.run({"y": y}, 5, sampling)
    assert np.array_equal(first.posterior.draws["theta"], again.posterior.draws["theta"])
    assert not np.array_equal(first.posterior.draws["theta"], other.posterior.draws["theta"])
    assert 0 < first.stan_seconds < 5


@needs_compiler
def test_a_fit_outside_the_main_thread_runs_in_a_helper_process(normal):
    """Another thread's fit goes to a helper process: the same draws, not a crash."""
    fitter, y = normal
    sampling = Sampling(chains=2, tune=100, draws=200)
    here = fitter.fit({"y": y}, 3, sampling)
    there = []
    thread = threading.Thread(target=lambda: there.append(fitter.fit({"y": y}, 3, sampling)))
    thread.start()
    thread.join()
    assert there and np.array_equal(there[0].draws["theta"], here.draws["theta"])
    assert there[0].draws["grid"].shape == (2, 200, 2, 3)


@needs_compiler
def test_low_rank_adaptation_is_refused(normal):
    """Stan adapts a diagonal mass matrix; asking for nutpie's low-rank one is an error."""
    fitter, y = normal
    with pytest.raises(ValueError, match="diagonal"):
        fitter.fit({"y": y}, 1, Sampling(adaptation="low_rank"))


@needs_compiler
def test_partial_stan_agrees_with_its_pymc_twin_on_fixed_data():
    """Heights partial_stan and partial: posterior means within Monte Carlo error."""
    design = HEIGHTS.design(HEIGHTS.defaults)
    data = HEIGHTS.simulate(design, np.random.default_rng(11)).data
    sampling = Sampling(chains=2, draws=2000)
    out = {}
    for name in ("partial", "partial_stan"):
        model = HEIGHTS.model(name)
        draws = model.backend.compile(design, data).fit(data, 5, sampling).draws
        out[name] = model.estimands(draws, design)
    for estimand, pymc in out["partial"].items():
        stan = out["partial_stan"][estimand]
        # both samplers give about 2000 effective draws here; 5 standard errors of the gap
        error = np.hypot(pymc.std(), stan.std()) / np.sqrt(1500)
        assert abs(pymc.mean() - stan.mean()) < 5 * error, estimand


def _scenario(program, name="broken_stan"):
    partial = HEIGHTS.model("partial_stan")
    backend = dataclasses.replace(partial.backend, program=program)
    model = Model(name, "x", backend, partial.estimands)
    return dataclasses.replace(HEIGHTS, models=(model,))


def test_a_program_that_does_not_compile_is_one_line_with_line_and_column():
    """The message of stanc, where it points, the scenario and the model: before any simulation."""
    program = "parameters { real y; }\nmodel { y ~ normal(0, 1) }\n"
    with pytest.raises(ScenarioCheckError) as caught:
        check_scenario(_scenario(program), HEIGHTS.defaults, ["broken_stan"])
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith("scenario heights, model broken_stan: Stan program: line 2, column 25")
    assert 'Ill-formed "~"-statement' in text


def test_a_missing_stan_extra_is_one_line(monkeypatch):
    """Without httpstan the model says which extra to install."""
    monkeypatch.setitem(sys.modules, "httpstan.models", None)
    with pytest.raises(ScenarioCheckError, match=r'pip install "sbc-testbed\[stan\]"'):
        check_scenario(_scenario("parameters { real y; }"), HEIGHTS.defaults, ["broken_stan"])


def test_a_missing_compiler_is_one_line(monkeypatch):
    """A program not built yet needs a C++ compiler; without one the check says so."""
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    program = f"// {uuid.uuid4()}\nparameters {{ real y; }}\nmodel {{ y ~ normal(0, 1); }}\n"
    with pytest.raises(ScenarioCheckError, match=r"no C\+\+ compiler 'no-such-compiler-here'"):
        check_scenario(_scenario(program), HEIGHTS.defaults, ["broken_stan"])


def test_a_missing_program_file_is_one_line(tmp_path):
    """A .stan path that does not exist is named."""
    with pytest.raises(ScenarioCheckError, match="cannot read the Stan program"):
        check_scenario(_scenario(tmp_path / "none.stan"), HEIGHTS.defaults, ["broken_stan"])


def test_the_command_line_exits_2_on_a_broken_program(tmp_path):
    """`sbc run` of a user scenario whose Stan program does not compile: exit 2, one line."""
    stan = tmp_path / "model.stan"
    stan.write_text("parameters { real y; }\nmodel { y ~ normal(0, 1) }\n")
    scenario = tmp_path / "broken.py"
    scenario.write_text(
        "import dataclasses\n"
        "from pathlib import Path\n"
        "from scenarios.heights import SCENARIO as H\n"
        "partial = H.model('partial_stan')\n"
        "backend = dataclasses.replace(partial.backend, program=Path(__file__).with_name("
        "'model.stan'))\n"
        "SCENARIO = dataclasses.replace(H, name='broken', models=(dataclasses.replace("
        "partial, name='mine', backend=backend),))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "sbc.cli", "run", str(scenario), "--models", "mine", "-n", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "model mine: Stan program: line 2, column 25" in lines[0]
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Semantic error in '/tmp/x.stan', line 3, column 2 to column 8:\n"
            "   -------------------------------------------------\n"
            "     3:    y ~ nrmal(0, 1);\n"
            "   -------------------------------------------------\n\n"
            "A returning function was expected but an undeclared identifier 'nrmal' was "
            "supplied.\n",
            "line 3, column 2: A returning function was expected but an undeclared "
            "identifier 'nrmal' was supplied.",
        ),
        ("Something else went wrong\n", "Something else went wrong"),
    ],
)
def test_stanc_messages_read_on_one_line(text, expected):
    """Where (line, column) then what, from stanc's multi-line error."""
    assert stanc_message(text) == expected


def test_stan_twins_run_only_when_named():
    """The heights Stan models need the extra: out of default runs and of sbc mutants."""
    assert "partial_stan" not in HEIGHTS.default_models
    assert "mutant_unused_hyperparameter_stan" not in HEIGHTS.mutants
    assert HEIGHTS.model("mutant_unused_hyperparameter_stan").mutant
    assert registry.models(HEIGHTS, ["partial_stan"]) == ["partial_stan"]


def test_a_stan_model_pickles():
    """Workers receive models pickled: a StanModel is plain data and module functions."""
    import pickle

    backend = HEIGHTS.model("partial_stan").backend
    assert pickle.loads(pickle.dumps(backend)) == backend
    assert isinstance(StanCompileError("x"), ValueError)


@needs_compiler
def test_a_stan_model_runs_in_worker_processes(tmp_path):
    """Two local workers load the cached module and fit: every fit has draws, no error."""
    sampling = Sampling(draws=300)
    results = run(
        HEIGHTS, HEIGHTS.defaults, ["partial_stan"], 4, tmp_path, jobs=2, sampling=sampling
    )
    fits = results.drop_duplicates("simulation")
    assert len(fits) == 4 and fits["error"].isna().all()
    assert (fits["grad_evals"] > 1).all() and (fits["tree_depth"] >= 1).all()


@needs_compiler
def test_assert_calibrated_takes_a_stan_model():
    """sbc.testing checks a Stan model like a PyMC one."""
    from sbc.testing import assert_calibrated

    assert_calibrated(
        "heights", "partial_stan", simulations=20, seed=1, sampling=Sampling(draws=500)
    )


@needs_compiler
def test_a_stan_model_runs_on_a_dask_cluster(tmp_path):
    """Dask's worker threads fit through the helper process; the table equals a local run's."""
    distributed = pytest.importorskip("distributed")
    from sbc.results.schema import TIMING_COLUMNS

    sampling = Sampling(draws=300)
    args = (HEIGHTS, HEIGHTS.defaults, ["partial_stan"], 3)
    local = run(*args, tmp_path / "local", jobs=1, sampling=sampling)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
        silence_logs=50,
    ) as cluster:  # fmt: skip
        remote = run(
            *args, tmp_path / "dask", backend="dask", scheduler=cluster.scheduler_address,
            sampling=sampling,
        )  # fmt: skip
    columns = list(TIMING_COLUMNS)
    assert remote["error"].isna().all()
    assert local.drop(columns=columns).equals(remote.drop(columns=columns))


def test_sbc_mutants_on_stan_models_only_says_what_runs(tmp_path, capsys):
    """Generated mutants need a PyMC or Bambi model: one line naming the run that works."""
    from sbc.cli import main

    scenario = tmp_path / "only_stan.py"
    scenario.write_text(
        "import dataclasses\n"
        "from scenarios.heights import SCENARIO as H\n"
        "SCENARIO = dataclasses.replace(H, name='only_stan', models=tuple("
        "m for m in H.models if m.name.endswith('_stan')))\n"
    )
    assert main(["mutants", str(scenario), "-n", "5", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generated mutants need a PyMC or Bambi model" in err
    assert "--models partial_stan,mutant_unused_hyperparameter_stan" in err


def test_a_data_function_that_fails_is_one_line():
    """stan_data raising on the example data set is named before any simulation."""
    partial = HEIGHTS.model("partial_stan")
    backend = dataclasses.replace(partial.backend, stan_data=lambda design, data: data["nope"])
    scenario = dataclasses.replace(
        HEIGHTS, models=(dataclasses.replace(partial, name="mine", backend=backend),)
    )
    with pytest.raises(ScenarioCheckError, match=r"model mine: stan_data\(design, data\) raised"):
        check_scenario(scenario, HEIGHTS.defaults, ["mine"])
