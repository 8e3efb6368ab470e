"""nutpie compilation with disk-cached C wrappers gives what nutpie's own compilation gives."""

from __future__ import annotations

import ctypes

import numpy as np
import pymc as pm
import pytest

from sbc.backends.nutpie_cache import LOGP_SOURCE, _wrapper, compile_pymc_model

POINTS = np.random.default_rng(3).normal(0.0, 1.5, size=(6, 4))


def _model(scale: float = 1.0) -> pm.Model:
    """Data of every kind a wrapper reads: 0-d, 1-d and 2-d floats, integer and bool arrays."""
    rng = np.random.default_rng(1)
    with pm.Model() as model:
        offset = pm.Data("offset", np.float64(0.5))
        design = pm.Data("design", rng.normal(size=(7, 2)))
        counts = pm.Data("counts", rng.integers(0, 9, size=7).astype("int64"))
        keep = pm.Data("keep", rng.random(7) > 0.3)
        y = pm.Data("y", rng.normal(size=7))
        beta = pm.Normal("beta", 0.0, scale, shape=2)
        sigma = pm.HalfNormal("sigma", 1.0)
        rate = pm.HalfNormal("rate", 3.0)
        mu = offset + design @ beta
        pm.Potential("gauss", pm.logp(pm.Normal.dist(mu, sigma), y).sum())
        pm.Potential("poisson", (keep * pm.logp(pm.Poisson.dist(rate), counts)).sum())
        pm.Deterministic("total", beta.sum() + rate)
    return model


def _call_logp(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """The C log-density callback at ``x``: return code, log density and gradient."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    logp = np.zeros(1)
    code = compiled.compiled_logp_func.ctypes(
        x.size,
        x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        grad.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        logp.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, float(logp[0]), grad


def _call_expand(compiled, x: np.ndarray) -> tuple[int, np.ndarray]:
    """The C expand callback at ``x``: return code and the stored values."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(
        x.size,
        out.size,
        x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, out


@pytest.fixture(scope="module")
def pair():
    """The model compiled by nutpie itself (fastmath off, as sbc compiles) and cached."""
    import nutpie
    from pytensor import config

    model = _model()
    with config.change_flags(numba__fastmath=False):
        theirs = nutpie.compile_pymc_model(model)
    return theirs, compile_pymc_model(model)


def _refilled(compiled):
    """The compiled model with new data of new lengths (9 rows in place of 7)."""
    rng = np.random.default_rng(2)
    return compiled.with_data(
        offset=np.float64(-1.0),
        design=rng.normal(size=(9, 2)),
        counts=rng.integers(0, 9, size=9),
        keep=rng.random(9) > 0.5,
        y=rng.normal(size=9),
    )


@pytest.mark.parametrize("refill", [False, True])
def test_callbacks_equal_nutpies(pair, refill):
    """Log density, gradient, stored values and return codes equal nutpie's, with any data."""
    ours, theirs = pair[1], pair[0]
    if refill:
        ours, theirs = _refilled(ours), _refilled(theirs)
    for x in POINTS:
        code, logp, grad = _call_logp(ours, x)
        their_code, their_logp, their_grad = _call_logp(theirs, x)
        assert (code, logp) == (their_code, their_logp)
        np.testing.assert_array_equal(grad, their_grad)
        expand_code, values = _call_expand(ours, x)
        their_expand_code, their_values = _call_expand(theirs, x)
        assert expand_code == their_expand_code == 0
        np.testing.assert_array_equal(values, their_values)


def test_non_finite_and_wrong_size_codes_equal_nutpies(pair):
    """A non-finite density and a wrong dimension give nutpie's return codes."""
    ours, theirs = pair[1], pair[0]
    far = np.array([0.0, 0.0, 800.0, 0.0])  # exp(800) overflows the sigma transform
    assert _call_logp(ours, far)[0] == _call_logp(theirs, far)[0] != 0
    short = np.zeros(3)
    assert _call_logp(ours, short)[0] == _call_logp(theirs, short)[0] == -1


def test_draws_equal_nutpies(pair):
    """Sampling the cached compilation gives nutpie's draws bit for bit."""
    import nutpie

    def draws(compiled):
        trace = nutpie.sample(
            compiled, chains=1, tune=100, draws=50, seed=4, cores=1, progress_bar=False
        )
        return trace.posterior["beta"].values, trace.posterior["total"].values

    for ours, theirs in zip(draws(pair[1]), draws(pair[0]), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_second_compilation_loads_the_wrappers_from_disk():
    """Compiling the same model again loads both C wrappers from the disk cache."""
    compile_pymc_model(_model(scale=2.0))
    again = compile_pymc_model(_model(scale=2.0))
    assert again.compiled_logp_func.cache_hits == 1
    assert again.compiled_expand_func.cache_hits == 1


def test_model_without_data_compiles():
    """A model with no data container (no shared input) compiles and evaluates."""
    with pm.Model() as model:
        pm.Normal("a", 0.0, 2.0)
    code, logp, grad = _call_logp(compile_pymc_model(model), np.array([1.0]))
    assert code == 0
    np.testing.assert_allclose([logp, grad[0]], [-np.log(2 * np.sqrt(2 * np.pi)) - 1 / 8, -0.25])


def test_unkeyed_function_or_unknown_record_leaves_nutpies_wrapper(pair):
    """No cacheable wrapper for a function PyTensor did not key, or a record of other fields."""
    import numba

    compiled = pair[1]
    keys = list(compiled.shared_data)
    args = (LOGP_SOURCE, {"n_dim": 4}, compiled.logp_func.vm.jit_fn, compiled.user_data)
    assert _wrapper(*args, keys, compiled.shared_data) is not None
    unkeyed = numba.njit(lambda x: (x.sum(), x))
    assert _wrapper(*args[:2], unkeyed, args[3], [], {}) is None
    assert _wrapper(*args, ["no_such_key"], {"no_such_key": np.zeros(2)}) is None


PROBE = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from sbc import registry
from sbc import seeding
from test_nutpie_cache import _call_logp
scenario = registry.get("heights")
design = scenario.design(scenario.defaults)
example = scenario.simulate(design, seeding.example_rng()).data
compiled = scenario.model("complete").backend.compile(design, example).compiled
for x in np.random.default_rng(0).normal(size=(10, compiled.n_dim)):
    code, logp, grad = _call_logp(compiled, x)
    print(code, logp.hex(), *(g.hex() for g in grad))
"""


def test_first_compilation_computes_what_the_cache_gives(tmp_path):
    """A process that compiles a model afresh gets the bits a later process loads from the cache."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}"}
    script = PROBE.format(tests=str(Path(__file__).parent))

    def probe() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    first, second = probe(), probe()
    assert first.count("\n") == 10
    assert first == second
