"""SBC of the discrete-outcome scenarios: verdicts, planted-bug detection and cost per fit.

Runs, one after the other (default sampler: 2 chains x 1000 tune + 1000 draws):

* ``diploma`` (pass counts, schools within authorities): every default model (complete,
  none, partial, each in PyMC and Bambi), then ``sbc mutants diploma`` (partial and its
  four planted bugs);
* ``examples/exposures.py`` (poisson with exposures) and ``examples/readmissions.py``
  (bernoulli with a risk-score offset): the Bambi model, its PyMC twin and the Bambi
  mutant that forgets the offset.

Printed and saved to ``benchmarks/results/families-DATE-HOST.csv``: per (scenario, model)
the verdict, the smallest Holm-adjusted p, 90% coverage, RMSE / prior sd, the share of fits
that raised or diverged, and the median seconds per fit; for the mutants run, whether each
bug is flagged and from how many simulations on.

Usage: ``python benchmarks/bench_families.py [--simulations 200] [--jobs 1] [--seed 0]``
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
EXAMPLES = Path(__file__).parents[1] / "examples"

RUNS = (
    ("diploma", None),
    (str(EXAMPLES / "exposures.py"), ("partial_bambi", "partial", "mutant_no_offset")),
    (str(EXAMPLES / "readmissions.py"), ("partial_bambi", "partial", "mutant_no_offset")),
)


def main() -> None:
    """Run every configuration and write the table."""
    from sbc import registry
    from sbc.api import run
    from sbc.results.calibration import model_table
    from sbc.results.detection import detection_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (ref, models) in enumerate(RUNS):
            scenario = registry.get(ref)
            chosen = list(models or scenario.default_models)
            start = time.perf_counter()
            results = run(
                scenario, models=chosen, simulations=args.simulations, out=Path(tmp) / str(i),
                seed=args.seed, jobs=args.jobs, progress=False,
            ).results  # fmt: skip
            wall = time.perf_counter() - start
            name = registry.display_name(scenario)
            for row in model_table(results).itertuples():
                rows.append(_row(name, row, args.simulations, wall))
            print(f"{name}: {wall:.0f} s", flush=True)
        scenario = registry.get("diploma")
        models = ["partial", *scenario.mutants]
        start = time.perf_counter()
        results = run(
            scenario, models=models, simulations=args.simulations, out=Path(tmp) / "mutants",
            seed=args.seed, jobs=args.jobs, progress=False,
        ).results  # fmt: skip
        wall = time.perf_counter() - start
        detection = detection_table(results, models).set_index("model")
        for row in model_table(results).itertuples():
            found = detection.loc[row.model]
            extra = {k: found[k] for k in ("first_flagged_at", "revealed_by")}
            rows.append(_row("diploma mutants", row, args.simulations, wall) | extra)
        print(f"diploma mutants: {wall:.0f} s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"families-{dt.date.today()}-{platform.node()}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0] | rows[-1]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(", ".join(f"{k}={v}" for k, v in row.items()))
    print(f"saved {path}")


def _row(scenario: str, row: object, simulations: int, wall: float) -> dict:
    return {
        "scenario": scenario,
        "model": row.model,
        "simulations": simulations,
        "verdict": row.verdict,
        "min_p_holm": f"{row.min_p_holm:.3g}",
        "coverage90": f"{row.coverage90:.3f}",
        "rel_rmse": f"{row.rel_rmse:.3f}",
        "error_share": f"{row.error_share:.3f}",
        "divergent_share": f"{row.divergent_share:.3f}",
        "median_fit_seconds": f"{row.median_fit_seconds:.3f}",
        "run_wall_seconds": f"{wall:.0f}",
    }


if __name__ == "__main__":
    main()
