"""Approximate inference against NUTS: cost per fit, and what SBC says of each method.

Two parts, in one invocation (``python benchmarks/bench_approx.py [--simulations 200]
[--parts cost,calibration]``):

1. **Cost per fit** on heights ``partial`` (default design), in this process, the same
   simulated data sets for every method: the fit itself (``fit_seconds``: the backend's
   ``fit``, data swapped in, draws out) and sbc's own work per fit outside it (simulation,
   estimands, test quantities, ranks, summaries, diagnostics, result rows), from the wall
   time of each simulation. Compilation is excluded (a first simulation warms up); the
   process's allocator and thread pools are set as in a worker process.
   Goals: a Laplace or Pathfinder fit cheaper than NUTS, mean-field ADVI at most 2x NUTS.
2. **Calibration** of every method on eight schools (``examples/eight_schools.py``, the
   non-centred ``partial``) and heights (``partial``, normal levels integrated out;
   ``partial_centred`` and ``partial_bambi``, the hierarchy written out): ``sbc run`` with
   ``--inference`` over all methods, each with and without PSIS resampling; the verdict,
   coverage, k-hat share, the verdicts on the fits with k-hat at most 0.7 and above it, and
   the simulations each approximation needs to be flagged (the power machinery of ``sbc
   mutants``, each approximation judged as a planted bug of the NUTS fit on the same data
   sets).

Tables: ``benchmarks/results/approx-cost-DATE.csv`` and ``approx-calibration-DATE.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent
METHODS = ("nuts", "advi", "fullrank_advi", "dadvi", "laplace", "pathfinder")
"""The methods compared (each approximate one also with ``+psis`` in the calibration part)."""


def cost(fits: int) -> pd.DataFrame:
    """Seconds per fit, in the fit and outside it, of every method on heights ``partial``."""
    from sbc.engine.worker import keep_freed_memory, one_blas_thread

    keep_freed_memory()  # as a worker process runs its simulations
    with one_blas_thread():
        return _cost(fits)


def _cost(fits: int) -> pd.DataFrame:
    from sbc import registry
    from sbc.backends import Sampling
    from sbc.engine.task import Task, run_task

    scenario = registry.get("heights")
    settings = tuple(sorted(registry.resolve_settings(scenario, {}).items()))
    rows = []
    for method in METHODS:
        name = registry.with_inference(["partial"], [method])[0]

        def task(i: int, name: str = name) -> Task:
            return Task("heights", settings, (name,), i, 0, Sampling())

        run_task(task(fits))  # compile (and pytensor's first-call compilation) not timed
        fit, outside = [], []
        for i in range(fits):
            start = time.perf_counter()
            table = run_task(task(i)).to_pandas()
            wall = time.perf_counter() - start
            seconds = float(table["fit_seconds"].iloc[0])
            fit.append(seconds)
            outside.append(wall - seconds)
        rows.append(
            {
                "scenario": "heights",
                "model": name,
                "fits": fits,
                "fit_ms": 1000 * float(np.median(fit)),
                "outside_ms": 1000 * float(np.median(outside)),
            }
        )
    table = pd.DataFrame(rows)
    nuts = table.loc[table["model"] == "partial", "fit_ms"].iloc[0]
    table["fit_over_nuts"] = table["fit_ms"] / nuts
    return table


def calibration(simulations: int) -> pd.DataFrame:
    """The verdict of every method and its k-hat split on eight schools and heights."""
    from sbc.results.calibration import model_table
    from sbc.results.detection import analyse
    from sbc.results.store import RunStore
    from sbc.results.strata import health_table

    methods = [*METHODS, *(f"{m}+psis" for m in METHODS[1:])]
    rows = []
    studies = {
        str(ROOT / "examples" / "eight_schools.py"): "partial",
        # heights: the model with its normal levels integrated out, and the hierarchy
        # written out (centred in PyMC; non-centred by Bambi)
        "heights": "partial,partial_centred,partial_bambi",
    }
    for scenario, models in studies.items():
        with tempfile.TemporaryDirectory() as out:
            command = [
                sys.executable, "-m", "sbc.cli", "run", scenario, "--models", models,
                "--inference", ",".join(methods), "-n", str(simulations), "--out", out,
                "--quiet",
            ]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(command, check=True)
            seconds = time.perf_counter() - start
            results = RunStore(out).results()
        models = model_table(results)
        split = health_table(results).set_index(["model", "subset"])
        # each approximation judged as a planted bug of its NUTS fit: simulations needed
        names = list(models["model"])
        bases = [n.partition("+")[0] for n in names]
        catalogue = pd.DataFrame(
            {
                "model": names,
                "role": ["hand-written" if "+" in n else "correct" for n in names],
                "base": bases,
                "operator": "",
                "target": "",
                "description": "",
                "equivalent": "",
            }
        )
        detection = analyse(results, catalogue).table.set_index("model")
        for m in models.itertuples():
            row = {
                "scenario": Path(scenario).stem,
                "model": m.model,
                "simulations": simulations,
                "verdict": m.verdict,
                "worst": m.worst,
                "coverage90": m.coverage90,
                "coverage90_min": m.coverage90_min,
                "rel_rmse": m.rel_rmse,
                "khat_share": m.khat_share,
                "unconverged_share": m.unconverged_share,
                "median_fit_seconds": m.median_fit_seconds,
                "run_seconds": seconds,
                "needed": detection.loc[m.model, "needed"],
                "first_flagged_at": detection.loc[m.model, "first_flagged_at"],
            }
            for subset in ("healthy", "unhealthy"):
                key = (m.model, subset)
                found = key in split.index
                row[f"{subset}_fits"] = int(split.loc[key, "fits"]) if found else 0
                row[f"{subset}_calibrated"] = split.loc[key, "calibrated"] if found else None
                row[f"{subset}_coverage90"] = split.loc[key, "coverage90"] if found else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    """Run both parts and write their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--fits", type=int, default=100, help="fits per method for the cost")
    parser.add_argument(
        "--parts", default="cost,calibration", help="comma-separated: cost, calibration"
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    RESULTS.mkdir(exist_ok=True)
    day = dt.date.today().isoformat()
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        if "cost" in parts:
            costs = cost(args.fits)
            costs.to_csv(RESULTS / f"approx-cost-{day}.csv", index=False)
            print(costs.to_string(index=False))
        if "calibration" not in parts:
            return
        table = calibration(args.simulations)
        table.to_csv(RESULTS / f"approx-calibration-{day}.csv", index=False)
        shown = ["scenario", "model", "verdict", "coverage90", "khat_share"]
        print(table[[*shown, "healthy_calibrated", "unhealthy_calibrated"]].to_string(index=False))


if __name__ == "__main__":
    main()
