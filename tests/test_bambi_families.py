"""Compile-once refits of Bambi models of every common family, and PyMC integer containers.

Each case is a small hierarchical model (4 groups of unequal size) with a design predictor
``x`` (mean 1, so centring would matter) or an offset, fitted by Bambi. A model compiled
for one data set and refitted on a second must give the draws of a model compiled for the
second, and its containers must hold what Bambi itself builds from the second data set
(log density and gradient equal to a plain Bambi model of that data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special

from sbc.backends import Sampling
from sbc.backends.bambi_data import BambiDataError, data_arrays, varying_columns
from sbc.backends.nutpie import BambiModel, PyMCModel, as_dtype, compile_graph

SAMPLING = Sampling(chains=2, tune=150, draws=100)
SIZES = (3, 5, 7, 9)
GROUP = np.repeat(np.arange(len(SIZES)), SIZES)
N = len(GROUP)
DESIGN_RNG = np.random.default_rng(20)
X = DESIGN_RNG.normal(1.0, 1.0, N)
LOGEXP = DESIGN_RNG.normal(0.5, 0.3, N)
TRIALS = DESIGN_RNG.integers(1, 12, N)


def _frame(design: Any, data: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({key: np.asarray(value) for key, value in data.items()})
    frame["g"] = pd.Categorical.from_codes(GROUP, categories=["a", "b", "c", "d"])
    frame["logexp"] = LOGEXP
    for key, values in (("x", X), ("n", TRIALS)):
        if key not in frame:
            frame[key] = values
    return frame


def _eta(rng: np.random.Generator) -> np.ndarray:
    return -0.3 + 0.4 * X + rng.normal(0.0, 0.5, len(SIZES))[GROUP]


def _simulate(family: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    eta = _eta(rng)
    if family == "gaussian":
        return {"y": rng.normal(eta, 1.0)}
    if family == "t":
        return {"y": eta + rng.standard_t(5.0, N)}
    if family == "beta":
        mean = special.expit(eta)
        return {"y": np.clip(rng.beta(mean * 20, (1 - mean) * 20), 1e-6, 1 - 1e-6)}
    if family == "bernoulli":
        return {"y": rng.binomial(1, special.ndtr(eta))}
    if family == "binomial":
        return {"y": rng.binomial(TRIALS, special.expit(eta))}
    if family == "binomial_data":  # trials and the predictor come with each data set
        x = rng.normal(size=N)
        trials = rng.integers(1, 12, N)
        return {"y": rng.binomial(trials, special.expit(-0.3 + 0.4 * x)), "n": trials, "x": x}
    if family == "poisson":
        return {"y": rng.poisson(np.exp(eta + LOGEXP))}
    if family == "negativebinomial":
        mu = np.exp(eta + LOGEXP)
        return {"y": rng.negative_binomial(3.0, 3.0 / (3.0 + mu))}
    if family == "gamma":
        return {"y": rng.gamma(4.0, np.exp(eta) / 4.0)}
    raise ValueError(family)


def _priors(extra: dict[str, Any]) -> Any:
    def priors(design: Any) -> dict[str, Any]:
        return {
            "Intercept": ("Normal", {"mu": 0.0, "sigma": 1.0}),
            "1|g": ("Normal", {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": 0.5})}),
            **extra,
        }

    return priors


SLOPE = {"x": ("Normal", {"mu": 0.0, "sigma": 1.0})}
SIGMA = {"sigma": ("HalfNormal", {"sigma": 1.0})}


@dataclass(frozen=True)
class Case:
    """One family: its Bambi model, its simulator and the containers a refit fills."""

    name: str
    formula: str
    family: str
    priors: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    containers: tuple[str, ...] = ("y__observed",)

    def backend(self) -> BambiModel:
        """The Bambi model of this case."""
        return BambiModel(
            self.formula, _frame, "y", _priors(self.priors), family=self.family, link=self.link
        )

    def simulate(self, seed: int) -> dict[str, np.ndarray]:
        """One data set from ``seed``."""
        return _simulate(self.name, np.random.default_rng(seed))


CASES = [
    Case("gaussian", "y ~ 1 + x + (1|g)", "gaussian", {**SLOPE, **SIGMA}),
    Case("t", "y ~ 1 + x + (1|g)", "t", {**SLOPE, **SIGMA, "nu": ("Gamma", {"mu": 5, "sigma": 2})}),
    Case(
        "beta", "y ~ 1 + x + (1|g)", "beta", {**SLOPE, "kappa": ("Gamma", {"mu": 20, "sigma": 5})}
    ),
    Case("bernoulli", "y ~ 1 + x + (1|g)", "bernoulli", SLOPE, link="probit"),
    Case("binomial", "p(y, n) ~ 1 + x + (1|g)", "binomial", SLOPE),
    Case(
        "binomial_data",
        "p(y, n) ~ 1 + x + (1|g)",
        "binomial",
        SLOPE,
        containers=("y__observed", "y__trials", "y__p:common"),
    ),
    Case("poisson", "y ~ 1 + x + offset(logexp) + (1|g)", "poisson", SLOPE),
    Case(
        "negativebinomial",
        "y ~ 1 + x + offset(logexp) + (1|g)",
        "negativebinomial",
        {**SLOPE, "alpha": ("Gamma", {"mu": 3, "sigma": 1})},
    ),
    Case(
        "gamma",
        "y ~ 1 + x + (1|g)",
        "gamma",
        {**SLOPE, "alpha": ("Gamma", {"mu": 4, "sigma": 1})},
        "log",
    ),
]


def _set_containers(graph: Any, values: dict[str, np.ndarray]) -> None:
    from pytensor.compile import SharedVariable
    from pytensor.graph.traversal import ancestors

    shared = {v.name: v for v in ancestors([graph.model.logp()]) if isinstance(v, SharedVariable)}
    for name, value in values.items():
        shared[name].set_value(np.asarray(value, dtype=shared[name].dtype))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refit_equals_a_model_built_on_that_data(case):
    """A compiled model refitted on new data gives the draws and density of one built on it."""
    first, second = case.simulate(1), case.simulate(2)
    backend = case.backend()
    graph = backend.graph(None, first)
    assert sorted(graph.containers) == sorted(case.containers)
    reused = compile_graph(graph).fit(second, 5, SAMPLING)
    fresh = backend.compile(None, second).fit(second, 5, SAMPLING)
    assert reused.draws.keys() == fresh.draws.keys()
    for key in reused.draws:
        np.testing.assert_allclose(reused.draws[key], fresh.draws[key], rtol=1e-8, err_msg=key)
    # the containers hold exactly what Bambi builds from the second data set
    _set_containers(graph, graph.derive(None, second))
    plain = backend.build(None, second).backend.model
    names = sorted(rv.name for rv in plain.free_RVs)
    ours_logp, ours_grad = (
        graph.model.compile_logp(),
        graph.model.compile_dlogp([graph.model[n] for n in names]),
    )
    plain_logp, plain_grad = plain.compile_logp(), plain.compile_dlogp([plain[n] for n in names])
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {k: rng.normal(size=np.shape(v)) for k, v in plain.initial_point().items()}
        np.testing.assert_allclose(ours_logp(point), plain_logp(point), rtol=1e-12)
        np.testing.assert_allclose(ours_grad(point), plain_grad(point), rtol=1e-10, atol=1e-12)


def test_discrete_response_keeps_its_integer_dtype():
    """The response container of a count model holds integers, as Bambi's graph does."""
    graph = CASES[6].backend().graph(None, CASES[6].simulate(1))
    (observed,) = graph.model.observed_RVs
    assert graph.model.rvs_to_values[observed].dtype == "int64"


def test_design_columns_stay_constants_and_data_columns_are_refilled():
    """Only the frame columns the simulated data feed are found varying."""
    data = CASES[5].simulate(1)
    assert varying_columns(_frame, None, data) == {"y", "n", "x"}
    assert varying_columns(_frame, None, {"y": data["y"]}) == {"y"}


def test_a_column_the_probe_missed_is_refused_at_refit():
    """A frame column taken as fixed that changes later raises instead of being ignored."""

    def frame(design: Any, data: dict[str, np.ndarray]) -> pd.DataFrame:
        out = _frame(design, {"y": data["y"]})
        out["x"] = np.where(data["y"] > 100, 1.0, 0.0) + X  # the probe's changes miss it
        return out

    backend = BambiModel("y ~ 1 + x + (1|g)", frame, "y", _priors({**SLOPE, **SIGMA}))
    data = CASES[0].simulate(1)
    graph = backend.graph(None, data)
    with pytest.raises(BambiDataError, match="frame column 'x' changed between data sets"):
        graph.derive(None, {"y": data["y"] + 200})


def test_unsupported_family_is_a_one_line_error():
    """A family sbc cannot refill is refused when the model is built, not mid-run."""

    def ordered(design: Any, data: dict[str, np.ndarray]) -> pd.DataFrame:
        return _frame(design, data).assign(y=pd.Categorical(data["y"], ordered=True))

    data = {"y": np.arange(N) % 3}
    backend = BambiModel("y ~ 0 + x", ordered, "y", lambda d: SLOPE, family="cumulative")
    with pytest.raises(BambiDataError, match="family 'cumulative' is not supported"):
        backend.graph(None, data)


def test_data_arrays_center_only_when_asked():
    """The formula keeps its's intercept: predictors are not centred unless asked for."""
    data = CASES[0].simulate(1)
    plain = CASES[0].backend()
    centred = BambiModel(
        plain.formula, _frame, "y", plain.priors, family="gaussian", center_predictors=True
    )
    frame = _frame(None, data)
    np.testing.assert_array_equal(data_arrays(plain.bambi(frame))["mu:common"][:, 0], X)
    np.testing.assert_allclose(data_arrays(centred.bambi(frame))["mu:common"][:, 0], X - X.mean())


def _build_counts(design: Any, example: dict[str, np.ndarray]) -> Any:
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", example["y"])
        n = pm.Data("n", example["n"])
        a = pm.Normal("a", 0.0, 1.0)
        pm.Binomial("obs", n=n, p=pm.math.invlogit(a), observed=y)
    return model


def test_pymc_integer_containers_refit_and_refuse_fractions():
    """PyMC integer data containers refit exactly, and a fractional count is an error."""
    rng = np.random.default_rng(4)
    first = {"y": rng.integers(0, 3, 12), "n": np.full(12, 4)}
    second = {"y": rng.integers(0, 6, 12), "n": rng.integers(6, 9, 12)}
    backend = PyMCModel(_build_counts, data=("y", "n"))
    fitter = backend.compile(None, first)
    reused = fitter.fit(second, 2, SAMPLING)
    fresh = backend.compile(None, second).fit(second, 2, SAMPLING)
    np.testing.assert_array_equal(reused.draws["a"], fresh.draws["a"])
    with pytest.raises(TypeError, match="data 'y' must hold int"):
        fitter.fit({**second, "y": second["y"] + 0.5}, 2, SAMPLING)


def test_as_dtype_converts_only_without_loss():
    """Integer-valued floats and booleans convert to integers; fractions and overflow do not."""
    np.testing.assert_array_equal(as_dtype("k", np.array([1.0, 2.0]), np.dtype("int64")), [1, 2])
    assert as_dtype("k", np.array([True, False]), np.dtype("int64")).dtype == np.int64
    with pytest.raises(TypeError, match="data 'k' must hold int32"):
        as_dtype("k", np.array([2**40]), np.dtype("int32"))
    with pytest.raises(TypeError, match="got float64 with the value"):
        as_dtype("k", np.array([np.nan]), np.dtype("int64"))
