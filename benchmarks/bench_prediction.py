"""Held-out prediction and PSIS-LOO under simulation: what they cost and what they show.

Two parts, in one invocation (``python benchmarks/bench_prediction.py [--simulations 200]
[--parts cost,sweep]``):

1. **Cost per fit** of the prediction columns on heights ``partial`` (NUTS), in this
   process, on the default design (4 x 20 heights) and the scarce one (8 x 3): sbc's own
   work per fit outside the sampler with prediction (held-out replicates, in-sample,
   held-out and new-group elpd, PSIS-LOO and leave-one-group-out, RMSE, the differences
   between models) and without it (the same code with the prediction step skipped), against
   the NUTS fit itself. Compilation is excluded (a first simulation warms up).
2. **The seed's claim, measured**: the sweep ``scenarios/sweeps/heights_prediction.toml``
   (complete, none and partial pooling; 8 countries of 2 to 50 people), and per cell and
   model the in-sample, held-out and new-group elpd, each model's paired difference to the
   best, and PSIS-LOO checked against the held-out truth (bias, RMSE, coverage of +/- 1.96
   SE, k-hat, how often it picks the best model; per pair of models the coverage of the
   difference +/- 1.96 SE).

Tables: ``benchmarks/results/prediction-cost-DATE.csv``, ``prediction-heights-DATE.csv``
and ``prediction-pairs-DATE.csv``; the sweep page's prediction figure as
``prediction-heights-DATE.svg`` (shown in the README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent
DESIGNS = {"default (4 x 20)": {}, "scarce (8 x 3)": {"n_groups": 8, "n_per_group": 3}}


def cost(fits: int) -> pd.DataFrame:
    """Milliseconds per fit outside the sampler, with and without prediction."""
    from sbc.engine.worker import keep_freed_memory, one_blas_thread

    keep_freed_memory()  # as a worker process runs its simulations
    with one_blas_thread():
        return pd.DataFrame([_cost(label, design, fits) for label, design in DESIGNS.items()])


def _cost(label: str, design: dict, fits: int) -> dict:
    from sbc import registry
    from sbc.backends import Sampling
    from sbc.engine import task as task_module
    from sbc.engine.task import Task, run_task

    scenario = registry.get("heights")
    settings = tuple(sorted(registry.resolve_settings(scenario, design).items()))

    def timed(i: int) -> tuple[float, float]:
        start = time.perf_counter()
        table = run_task(Task("heights", settings, ("partial",), i, 0, Sampling()))
        wall = time.perf_counter() - start
        seconds = float(table.column("fit_seconds")[0].as_py())
        return seconds, wall - seconds

    timed(fits)  # compile (and pytensor's first-call compilation) not timed
    with_prediction = [timed(i) for i in range(fits)]
    original = task_module._prediction
    task_module._prediction = lambda *args, **kwargs: ({}, None)
    try:
        without = [timed(i) for i in range(fits)]
    finally:
        task_module._prediction = original
    fit_ms = 1000 * float(np.median([f for f, _ in with_prediction]))
    outside = 1000 * float(np.median([o for _, o in with_prediction]))
    outside_without = 1000 * float(np.median([o for _, o in without]))
    return {
        "design": label,
        "model": "partial",
        "fits": fits,
        "fit_ms": fit_ms,
        "outside_ms_with_prediction": outside,
        "outside_ms_without_prediction": outside_without,
        "prediction_ms": outside - outside_without,
        "prediction_over_fit": (outside - outside_without) / fit_ms,
    }


def sweep(simulations: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cell and model of the heights prediction sweep; per cell and pair of models."""
    text = (ROOT / "scenarios" / "sweeps" / "heights_prediction.toml").read_text()
    text = re.sub(r"(?m)^simulations = \d+", f"simulations = {simulations}", text)
    with tempfile.TemporaryDirectory() as out:
        spec = Path(out) / "spec.toml"
        spec.write_text(text)
        command = [
            sys.executable, "-m", "sbc.cli", "sweep", str(spec), "--jobs", "2", "--out",
            str(Path(out) / "sweep"), "--quiet",
        ]  # fmt: skip
        subprocess.run(command, check=True)
        (RESULTS / f"prediction-heights-{dt.date.today().isoformat()}.svg").write_text(
            figure(Path(out) / "sweep")
        )
        return summarise(Path(out) / "sweep")


def figure(folder: Path) -> str:
    """The sweep page's prediction figure (SVG) of a finished prediction sweep folder."""
    from sbc.report.sweep_html import SweepPage, prediction_figure

    summary = pd.read_csv(folder / "sweep.csv")
    grid = {"n_per_group": sorted(summary["n_per_group"].unique().tolist())}
    models = list(dict.fromkeys(summary["model"]))
    page = SweepPage("heights", "heights", grid, "n_per_group", {}, models, 0, 0)
    return prediction_figure(page, summary)


def summarise(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables of a finished prediction sweep folder (``--from`` reads one)."""
    from sbc.results.prediction import comparison_table, loo_picks_best, prediction_table
    from sbc.results.store import RunStore

    models, pairs = [], []
    for cell in sorted(folder.iterdir()):
        if not (cell / "results.parquet").exists():
            continue
        results = RunStore(cell).results()
        n_per_group = int(cell.name.split("n_per_group=")[1].split(",")[0])
        table = prediction_table(results)
        table.insert(0, "n_per_group", n_per_group)
        share, _ = loo_picks_best(results)
        table["loo_picks_best_overall"] = share
        models.append(table)
        pair = comparison_table(results)
        pair.insert(0, "n_per_group", n_per_group)
        pairs.append(pair)
    by_model = pd.concat(models, ignore_index=True).sort_values(["n_per_group", "model"])
    by_pair = pd.concat(pairs, ignore_index=True).sort_values(["n_per_group", "model_a"])
    return by_model, by_pair


def main() -> None:
    """Run the chosen parts and write their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--fits", type=int, default=60)
    parser.add_argument("--parts", default="cost,sweep")
    parser.add_argument("--from", dest="folder", help="summarise this finished sweep folder")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.date.today().isoformat()
    if "cost" in parts:
        table = cost(args.fits)
        table.to_csv(RESULTS / f"prediction-cost-{stamp}.csv", index=False)
        print(table.round(2).to_string(index=False))
    if "sweep" in parts:
        if args.folder:
            by_model, by_pair = summarise(Path(args.folder))
            (RESULTS / f"prediction-heights-{stamp}.svg").write_text(figure(Path(args.folder)))
        else:
            by_model, by_pair = sweep(args.simulations)
        by_model.to_csv(RESULTS / f"prediction-heights-{stamp}.csv", index=False)
        by_pair.to_csv(RESULTS / f"prediction-pairs-{stamp}.csv", index=False)
        shown = [
            "n_per_group", "model", "elpd_in_vs_best", "elpd_heldout_vs_best",
            "elpd_heldout_groups_vs_best", "loo_bias", "loo_coverage", "khat_high_share",
            "loo_pick_share", "best_heldout_share",
        ]  # fmt: skip
        print(by_model[shown].round(2).to_string(index=False))
        print(by_pair.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
