"""Posterior SBC against prior SBC on the real Alberta design: what each needs to flag a bug.

Runs the alberta scenario twice with the same seed and models (the correct ``partial`` and
the planted bugs ``mutant_swapped_ab``, the seed's swapped Beta shape parameters, and
``mutant_variance_as_sd``): prior SBC (parameters from the prior) and posterior SBC
(parameters from ``partial``'s posterior given the real school means, refits on real + new
means). For each mode and model: flagged or not at the end, the quantities that revealed
it, and the smallest N (checked every ``--step`` simulations) from which on it stays
flagged (:func:`sbc.mutants.detection_table`), the smallest Holm-adjusted p-value after 2,
5 and 10 simulations, and the median seconds per fit.

Writes ``benchmarks/results/posterior-DATE.csv``; the runs stay under ``--out`` (each with
its report) and resume if interrupted.

Usage: ``python benchmarks/bench_posterior.py --data diploma-multiyear-sch-list-annual.xlsx
[--simulations 100] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"
MODELS = ("partial", "mutant_swapped_ab", "mutant_variance_as_sd")


def main() -> None:
    """Run both modes and write the detection table."""
    from sbc import registry
    from sbc.api import run
    from sbc.backends import Sampling
    from sbc.results.detection import detection_table, pit_matrix
    from sbc.stats.power import holm_min, pvalues

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the diploma results xlsx")
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-posterior"))
    args = parser.parse_args()
    alberta = registry.get("alberta")
    settings = alberta.resolve_settings({"data": args.data})
    frames = []
    for mode, reference in (("prior", None), ("posterior", "partial")):
        out = args.out / mode
        results = run(
            alberta,
            models=MODELS,
            settings=settings,
            simulations=args.simulations,
            out=out,
            seed=args.seed,
            sampling=Sampling(),
            jobs=args.jobs,
            posterior=reference,
        ).results
        table = detection_table(results, list(MODELS), step=args.step)
        for n in (2, 5, 10):  # how decisive each mode is with few simulations
            table[f"min_p_holm_at_{n}"] = [
                holm_min(pvalues(pit_matrix(results, m)[2][:n].T)) for m in table["model"]
            ]
        seconds = results.drop_duplicates(["simulation", "model"]).groupby("model")["fit_seconds"]
        table["median_fit_seconds"] = table["model"].map(seconds.median())
        table.insert(0, "mode", mode)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"posterior-{dt.date.today().isoformat()}.csv"
    table.to_csv(path, index=False)
    with pd.option_context("display.width", 220, "display.max_colwidth", 70):
        print(table.to_string(index=False))
    print(f"\n{path}")


if __name__ == "__main__":
    main()
