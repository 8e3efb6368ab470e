"""Mutation testing evidence: the projection of simulations needed, and scenario scores.

Two parts (``--part projection``, ``--part scenarios`` or both, the default):

* **projection** (pure statistics, a few minutes): synthetic pairs of a correct model and a
  mutant fitted to the same data sets. On the probit scale the correct model's ranks are
  ``x_c ~ Normal(0, 1)``; the mutant's are ``x_m = shift + scale (rho x_c + sqrt(1 - rho^2)
  e)`` for one of ``k`` quantities and ``rho x_c + sqrt(1 - rho^2) e`` (calibrated) for
  the others, ``rho`` the correlation two near-identical models' ranks have on the same
  data. The true number of simulations at which Holm over ``pot_c`` flags the mutant with
  80% probability is simulated from the known departure; :mod:`sbc.mutants` projects it
  from single runs of 200 with :func:`sbc.stats.power.paired_effects` and
  :func:`sbc.stats.power.required_simulations`. Reported: the true N80, the median
  projection and how often the projection's 90% interval covers the truth.
* **scenarios** (long: every mutant fitted on every simulation): ``sbc mutants SCENARIO -n N``
  for each scenario given, timed, with the mutation score of the generated mutants and the
  escapes named.

Tables are printed and saved under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sbc.stats.power import bounded_effects, paired_effects, required_simulations

RESULTS = Path(__file__).parent / "results"
CASES = [(0.10, 1.0, 0.95), (0.05, 1.0, 0.95), (0.0, 1.15, 0.95), (0.0, 0.87, 0.95)]
CASES += [(0.10, 1.0, 0.8)]
"""(shift, scale, rho) of the departing quantity."""


def _pair(shift: float, scale: float, rho: float, n: int, k: int, rng) -> tuple:
    """PIT of a correct model and of a mutant, ``(n, k)`` each, on the same data sets."""
    x_c = rng.normal(size=(n, k))
    x_m = rho * x_c + np.sqrt(1 - rho**2) * rng.normal(size=(n, k))
    x_m[:, 0] = shift + scale * x_m[:, 0]
    return stats.norm.cdf(x_m), stats.norm.cdf(x_c)


def projection(k: int = 10, runs: int = 20, seed: int = 1) -> pd.DataFrame:
    """True against projected simulations needed for 80% power, per departure."""
    rng = np.random.default_rng(seed)
    rows = []
    for shift, scale, rho in CASES:
        exact = {
            "shift": np.r_[shift, np.zeros(k - 1)],
            "excess": np.r_[scale**2 + shift**2 - 1, np.zeros(k - 1)],
        }
        true = required_simulations(exact, 200, k, rng, reps=400, longest=64)
        projected = []
        for _ in range(runs):
            effects = paired_effects(*_pair(shift, scale, rho, 200, k, rng))
            projected.append(
                [
                    required_simulations(effects, 200, k, rng, longest=64),
                    required_simulations(bounded_effects(effects, 1.645), 200, k, rng, longest=64),
                    required_simulations(bounded_effects(effects, -1.645), 200, k, rng, longest=64),
                ]
            )
        projected = np.array(projected)
        rows.append(
            {
                "shift": shift,
                "scale": scale,
                "rho": rho,
                "true_n80": round(true),
                "projected_median": round(float(np.median(projected[:, 0]))),
                "projected_q25": round(float(np.quantile(projected[:, 0], 0.25))),
                "projected_q75": round(float(np.quantile(projected[:, 0], 0.75))),
                "interval_covers": float(
                    np.mean((projected[:, 1] <= true) & (true <= projected[:, 2]))
                ),
            }
        )
    return pd.DataFrame(rows)


def scenario_scores(names: list[str], n: int, jobs: int, out: Path) -> pd.DataFrame:
    """Run ``sbc mutants`` on each scenario; time it and read its score and escapes."""
    rows = []
    for name in names:
        folder = out / Path(name).stem
        start = time.perf_counter()
        command = [sys.executable, "-m", "sbc.cli", "mutants", name, "-n", str(n)]
        command += ["--jobs", str(jobs), "--quiet", "--out", str(folder)]
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        table = pd.read_csv(folder / "mutants.csv")
        correct = table[table["role"] == "correct"]
        generated = table[table["role"] == "generated"]
        counted = generated[generated["status"].isin(["flagged", "escaped"])]
        rows.append(
            {
                "scenario": name,
                "simulations": n,
                "jobs": jobs,
                "wall_seconds": round(seconds),
                "correct_flagged": bool(correct["flagged"].any()),
                "generated": len(generated),
                "equivalent": int((generated["status"] == "equivalent").sum()),
                "counted": len(counted),
                "flagged": int(counted["flagged"].sum()),
                "score": counted["flagged"].mean(),
                "score_estimands_only": counted["flagged_estimands_only"].mean(),
                "escapes": ", ".join(counted.loc[~counted["flagged"], "model"]),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    """Run the chosen parts and save their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("projection", "scenarios", "both"), default="both")
    parser.add_argument(
        "--scenarios",
        default="heights,examples/eight_schools.py,schools,benchmarks/heldout/poisson_counts.py,"
        "benchmarks/heldout/logistic_groups.py",
        help="comma-separated",
    )
    parser.add_argument("--simulations", "-n", type=int, default=200)
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-mutants"))
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.date.today().isoformat()
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        if args.part in ("projection", "both"):
            table = projection()
            print(table.to_string(index=False))
            table.to_csv(RESULTS / f"mutants-projection-{stamp}.csv", index=False)
        if args.part in ("scenarios", "both"):
            table = scenario_scores(
                args.scenarios.split(","), args.simulations, args.jobs, args.out
            )
            print(table.to_string(index=False))
            table.to_csv(RESULTS / f"mutants-scenarios-{stamp}.csv", index=False)


if __name__ == "__main__":
    main()
