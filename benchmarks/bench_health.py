"""Sampler health and cost of every shipped correct model at default settings.

For each scenario, the models meant to be calibrated run at their default sampler settings
(run defaults, or the model's own) on the same simulated data sets, through the normal
runner (``--jobs`` workers). Per model:

* ``healthy``: share of fits with no divergence and every estimand at rank-normalised
  R-hat <= 1.01 and bulk and tail ESS >= 400 (target >= 0.95);
* ``healthy_pairs``: share of (fit, estimand) pairs with R-hat and ESS fine (target >= 0.99
  for scenarios with more than 20 estimands);
* ``divergent``: share of fits with any divergence (target <= 0.02);
* the cost: median seconds per fit, seconds per 100 effective draws, gradient evaluations
  per draw; and the calibration verdict.

``--false-alarm`` adds the false-alarm check of the correct heights models: 30 blocks of 100
simulations each (disjoint seeds), counting the blocks whose verdict flags the model.

Printed and saved to ``benchmarks/results/health-DATE-HOST.csv`` (and
``false-alarm-DATE-HOST.csv``). Usage::

    python benchmarks/bench_health.py [--simulations 200] [--jobs 2] [--scenarios heights,...]
        [--false-alarm] [--blocks 30] [--block-size 100]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CORRECT: dict[str, tuple[str, ...]] = {
    "heights": ("partial", "partial_bambi", "partial_centred"),
    "school": ("exact", "bambi"),
    "schools": ("partial", "partial_bambi"),
    "districts": ("partial", "partial_bambi"),
    "diploma": ("partial", "partial_bambi"),
    "alberta": ("partial",),
    "examples/eight_schools.py": ("partial",),
    "examples/exposures.py": ("partial", "partial_bambi"),
    "examples/readmissions.py": ("partial", "partial_bambi"),
}
"""Per scenario, the shipped models meant to be calibrated (``partial_centred`` is kept to
show what centring costs and is reported, not held to the targets)."""

DEMONSTRATIONS = {("heights", "partial_centred")}


def _run(scenario_name: str, models: tuple[str, ...], n: int, jobs: int, seed: int) -> list[dict]:
    from sbc import registry
    from sbc.api import run
    from sbc.results.calibration import estimand_table, model_table

    ref = scenario_name
    if not registry.is_registered(ref):  # a user scenario file, relative to the repository
        ref = str(Path(__file__).parent.parent / scenario_name)
    scenario = registry.get(ref)
    settings = scenario.resolve_settings({})
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = run(
            scenario, models=models, simulations=n, out=folder, seed=seed, jobs=jobs,
            progress=False,
        ).results  # fmt: skip
        wall = time.perf_counter() - start
    table = model_table(results, estimand_table(results))
    k = len(scenario.estimands(scenario.design(settings)))
    rows = []
    for m in table.itertuples():
        rows.append(
            {
                "scenario": scenario_name,
                "model": m.model,
                "estimands": k,
                "fits": m.fits,
                "healthy": m.healthy_share,
                "healthy_pairs": m.healthy_pairs,
                "divergent": m.divergent_share,
                "rhat_over_1.01": m.rhat_share,
                "ess_under_400": m.low_ess_share,
                "errors": m.error_share,
                "s_per_fit": m.median_fit_seconds,
                "s_per_100_ess": m.seconds_per_100_ess,
                "grad_evals_per_draw": m.grad_evals,
                "calibrated": m.calibrated,
                "min_p_holm": m.min_p_holm,
                "wall_s": wall,
                "meets_targets": _meets(scenario_name, m, k),
            }
        )
    return rows


def _meets(scenario: str, m, k: int) -> str:
    if (scenario, m.model) in DEMONSTRATIONS:
        return "demonstration"
    healthy = m.healthy_pairs >= 0.99 if k > 20 else m.healthy_share >= 0.95
    return "yes" if healthy and m.divergent_share <= 0.02 and m.error_share == 0 else "no"


def _false_alarm(models: tuple[str, ...], blocks: int, size: int, jobs: int) -> list[dict]:
    """Verdicts of the correct heights models on ``blocks`` disjoint blocks of simulations."""
    from sbc.api import run
    from sbc.results.calibration import model_table
    from scenarios import heights

    scenario = heights.SCENARIO
    with tempfile.TemporaryDirectory() as folder:
        results = run(
            scenario, models=models, simulations=blocks * size, out=folder, seed=7, jobs=jobs,
            progress=False,
        ).results  # fmt: skip
    rows = []
    for model in models:
        mine = results[results["model"] == model]
        flagged = 0
        for b in range(blocks):
            block = mine[(mine["simulation"] >= b * size) & (mine["simulation"] < (b + 1) * size)]
            flagged += not bool(model_table(block)["calibrated"].iloc[0])
        rows.append({"model": model, "blocks": blocks, "block_size": size, "flagged": flagged})
    return rows


def _save(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{dt.date.today().isoformat()}-{platform.node()}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    """Run the health table (and the false-alarm check) and save the CSVs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenarios", default=",".join(CORRECT))
    parser.add_argument("--false-alarm", action="store_true")
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block-size", type=int, default=100)
    args = parser.parse_args()
    rows = []
    for name in filter(None, args.scenarios.split(",")):  # --scenarios "": none
        n = min(args.simulations, 100) if name == "alberta" else args.simulations
        for row in _run(name, CORRECT[name], n, args.jobs, args.seed):
            rows.append(row)
            print(
                " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                ),
                flush=True,
            )
    if rows:
        print(f"saved {_save('health', rows)}")
    if args.false_alarm:
        alarms = _false_alarm(("partial", "partial_bambi"), args.blocks, args.block_size, args.jobs)
        for row in alarms:
            print(row, flush=True)
        print(f"saved {_save('false-alarm', alarms)}")


if __name__ == "__main__":
    sys.exit(main())
