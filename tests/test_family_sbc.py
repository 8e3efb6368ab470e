"""SBC end to end for one hierarchical Bambi model per family class: count, binary, continuous.

Each correct model must be found calibrated with no fit raising, and its planted bug
flagged, at small simulation counts (20; larger runs: ``benchmarks/bench_families.py``).
"""

import textwrap
from pathlib import Path

import pandas as pd

from sbc import registry
from sbc.backends import Sampling
from sbc.cli import main
from sbc.results.calibration import model_table
from tests.helpers import run

EXAMPLES = Path(__file__).parents[1] / "examples"
SAMPLER = ("--chains", "2", "--tune", "200", "--draws", "200")


def _cli_verdicts(example: str, tmp_path: Path, n: int) -> pd.DataFrame:
    out = tmp_path / example
    argv = ["run", str(EXAMPLES / f"{example}.py"), "-n", str(n), "-j", "1", "--quiet"]
    argv += [*SAMPLER, "--models", "partial_bambi,mutant_no_offset", "--out", str(out)]
    assert main(argv) == 0
    results = pd.read_parquet(out / "results.parquet")
    assert results["error"].isna().all(), results["error"].dropna().unique()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["verdict"]) <= {"calibrated", "not calibrated"}
    return model_table(results).set_index("model")


def test_poisson_with_exposures_is_calibrated_and_a_forgotten_offset_flagged(tmp_path):
    """`events ~ 1 + offset(logexp) + (1|region)` passes; without the offset it is flagged."""
    verdicts = _cli_verdicts("exposures", tmp_path, 20)
    assert verdicts.loc["partial_bambi", "verdict"] == "calibrated"
    assert verdicts.loc["mutant_no_offset", "verdict"] == "not calibrated"


def test_bernoulli_with_an_offset_is_calibrated_and_a_forgotten_offset_flagged(tmp_path):
    """A hierarchical logistic model with a risk-score offset passes; without it, flagged."""
    verdicts = _cli_verdicts("readmissions", tmp_path, 20)
    assert verdicts.loc["partial_bambi", "verdict"] == "calibrated"
    assert verdicts.loc["mutant_no_offset", "verdict"] == "not calibrated"


GAMMA = """
import numpy as np
import pandas as pd

from sbc.backends.nutpie import BambiModel
from sbc.scenario import Model, Scenario, Simulation

GROUPS, SIZE = 6, 6
GROUP = np.repeat(np.arange(GROUPS), SIZE)
X = np.random.default_rng(3).normal(0.5, 1.0, GROUP.size)
LABELS = [f"g{j}" for j in range(GROUPS)]


def simulate(design, rng):
    intercept, slope = rng.normal(1.0, 0.5), rng.normal(0.0, 0.3)
    sd, alpha = abs(rng.normal(0.0, 0.5)), rng.gamma(16.0, 0.25)
    effect = sd * rng.normal(size=GROUPS)
    mean = np.exp(intercept + slope * X + effect[GROUP])
    truth = {"intercept": intercept, "slope": slope, "alpha": alpha}
    truth |= {f"effect[{j}]": e for j, e in enumerate(effect)}
    return Simulation(truth, {"y": rng.gamma(alpha, mean / alpha)})


def frame(shift):
    def make(design, data):
        group = pd.Categorical.from_codes((GROUP + shift) % GROUPS, categories=LABELS)
        return pd.DataFrame({"y": data["y"], "x": X, "g": group})
    return make


def priors(design):
    return {
        "Intercept": ("Normal", {"mu": 1.0, "sigma": 0.5}),
        "x": ("Normal", {"mu": 0.0, "sigma": 0.3}),
        "1|g": ("Normal", {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": 0.5})}),
        "alpha": ("Gamma", {"alpha": 16.0, "beta": 4.0}),
    }


def estimands(draws, design):
    out = {"intercept": draws["Intercept"], "slope": draws["x"], "alpha": draws["alpha"]}
    return out | {f"effect[{j}]": draws["1|g"][..., j] for j in range(GROUPS)}


def bambi(shift):
    return BambiModel("y ~ 1 + x + (1|g)", frame(shift), "y", priors, "gamma", link="log")


SCENARIO = Scenario(
    name="waits",
    description="gamma waiting times with a predictor, groups",
    settings=(),
    design=lambda settings: None,
    simulate=simulate,
    estimands=lambda design: (
        "intercept", "slope", "alpha", *(f"effect[{j}]" for j in range(GROUPS))
    ),
    models=(
        Model("partial_bambi", "the generative process", bambi(0), estimands),
        Model("mutant_shifted_group", "rows attached to the next group", bambi(1), estimands),
    ),
)
"""


def test_gamma_with_a_predictor_is_calibrated_and_a_shifted_group_flagged(tmp_path):
    """A log-link gamma model passes; a frame attaching rows to the wrong group is flagged."""
    path = tmp_path / "waits.py"
    path.write_text(textwrap.dedent(GAMMA))
    scenario = registry.get(str(path))
    models = ["partial_bambi", "mutant_shifted_group"]
    sampling = Sampling(chains=2, tune=200, draws=200)
    results = run(scenario, {}, models, 20, tmp_path / "out", sampling=sampling)
    assert results["error"].isna().all(), results["error"].dropna().unique()
    verdicts = model_table(results).set_index("model")["verdict"]
    assert verdicts.to_dict() == {
        "partial_bambi": "calibrated",
        "mutant_shifted_group": "not calibrated",
    }
