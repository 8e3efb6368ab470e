"""Calibration by data stratum: false alarms of correct models, detection of concentrated bugs.

Each experiment is one SBC run split into independent blocks of consecutive simulations
(simulations draw from their own seed streams, so blocks are independent runs). Per block:

* **false alarms**: whether a correct model is flagged by the marginal verdict (pot_c, Holm
  over quantities at 0.01) and by the stratified verdict (Holm over quantities x data
  statistics x tertiles). The exact conjugate backend (100 blocks of 100, one observation
  per data set) and the heights ``partial`` model (10 blocks of 100); for contrast, the
  same exact model split by tertiles of the *true* theta (not valid: flagged although
  correct);
* **detection**: the smallest N (checked every ``--step`` simulations) from which on a model
  stays flagged, marginal against stratified, for models whose miscalibration sits in part
  of the data space: heights ``partial_eb`` (the empirical-Bayes plug-in of between_sd),
  ranked with and without test quantities, and heights ``partial_centred`` sampled with
  target_accept 0.8 (the centred funnel, which the sampler fails in the strong-pooling data).

Each run is also split by sampler health (:func:`sbc.results.strata.health_table`), including
the exact backend with short chains (2 x 100 draws), where R-hat exceeds 1.01 by chance.

Writes ``benchmarks/results/strata-DATE.csv`` (one row per experiment, model, block and
verdict), ``strata-DATE-summary.csv``, ``strata-DATE-health.csv`` and ``strata-DATE.png``
(median smallest Holm p against N); with ``--only``, the names of the experiments run
follow the date. The runs are kept under ``--out`` and resume if interrupted.

Usage: ``python benchmarks/bench_strata.py [--jobs 2] [--quick] [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Experiment:
    """One SBC run split into blocks, and what to measure on it."""

    name: str
    scenario: str
    models: tuple[str, ...]
    blocks: int
    block: int
    seed: int
    settings: dict = field(default_factory=dict)
    target_accept: float = 0.95
    draws: int = 1000
    test_quantities: bool = True
    correct: tuple[str, ...] = ()


EXPERIMENTS = (
    Experiment(  # one observation: the posterior halves the prior's pull (strong shrinkage)
        "conjugate_exact_n1",
        "conjugate",
        ("exact",),
        100,
        100,
        11,
        settings={"n": 1},
        correct=("exact",),
    ),
    Experiment("heights", "heights", ("partial", "partial_eb"), 10, 100, 3, correct=("partial",)),
    Experiment("heights_no_tq", "heights", ("partial_eb",), 8, 150, 4, test_quantities=False),
    Experiment(  # health split with exact draws: R-hat > 1.01 by chance in short chains
        "conjugate_exact_short", "conjugate", ("exact",), 20, 100, 12, draws=100, correct=("exact",)
    ),
    Experiment(
        "heights_centred_ta08",
        "heights",
        ("partial_centred",),
        4,
        400,
        5,
        target_accept=0.8,
    ),
)


def _run(exp: Experiment, out: Path, jobs: int, quick: bool) -> pd.DataFrame:
    from sbc import registry
    from sbc.api import run
    from sbc.backends import Sampling

    scenario = registry.get(exp.scenario)
    blocks = max(2, exp.blocks // 3) if quick else exp.blocks
    return run(
        scenario,
        settings=exp.settings,
        models=exp.models,
        simulations=blocks * exp.block,
        out=out / exp.name,
        seed=exp.seed,
        sampling=Sampling(target_accept=exp.target_accept, draws=exp.draws),
        jobs=jobs,
        test_quantities=exp.test_quantities,
    ).results


def _min_p(rows: pd.DataFrame, verdict: str) -> float:
    from sbc.results.calibration import model_table
    from sbc.results.strata import strata_table, stratified_verdict

    if verdict == "marginal":
        return float(model_table(rows)["min_p_holm"].iloc[0])
    if verdict == "stratified":
        return float(stratified_verdict(strata_table(rows))["stratified_min_p_holm"].iloc[0])
    # invalid contrast: strata of the true value of the first estimand, Holm over quantities
    from sbc.results.calibration import ok_fits
    from sbc.stats.strata import assign_strata, stratified_pvalues
    from sbc.stats.uniformity import holm

    ok = ok_fits(rows)
    first = ok[ok["kind"] == "estimand"]["estimand"].iloc[0]
    truth = ok[ok["estimand"] == first].set_index("simulation")["true_value"]
    strata = pd.Series(assign_strata(truth.to_numpy()), index=truth.index)
    p = [
        stratified_pvalues(g["pit"].to_numpy(), strata.reindex(g["simulation"]).to_numpy())
        for _, g in ok.groupby("estimand", sort=False)
    ]
    return float(np.nanmin(holm(np.concatenate(p))))


def measure(exp: Experiment, results: pd.DataFrame, step: int) -> tuple[list, list]:
    """Per (model, block, verdict): min Holm p at every checked N and the first flagged N."""
    from sbc.results.calibration import ALPHA

    rows, curves = [], []
    sims = sorted(results["simulation"].unique())
    verdicts = ["marginal", "stratified"] + (["by_truth"] if exp.scenario == "conjugate" else [])
    for model in exp.models:
        mine = results[results["model"] == model]
        for b in range(len(sims) // exp.block):
            block = mine[
                (mine["simulation"] >= b * exp.block) & (mine["simulation"] < (b + 1) * exp.block)
            ]
            block = block.assign(simulation=block["simulation"] - b * exp.block)
            checks = list(range(step, exp.block + 1, step))
            for verdict in verdicts:
                ps = [_min_p(block[block["simulation"] < n], verdict) for n in checks]
                first = None
                for n, p in zip(reversed(checks), reversed(ps), strict=True):
                    if not p < ALPHA:
                        break
                    first = n
                rows.append(
                    {
                        "experiment": exp.name,
                        "model": model,
                        "correct": model in exp.correct,
                        "block": b,
                        "block_size": exp.block,
                        "verdict": verdict,
                        "flagged": bool(ps[-1] < ALPHA),
                        "min_p_holm": ps[-1],
                        "first_flagged_at": first,
                    }
                )
                curves += [
                    {
                        "experiment": exp.name,
                        "model": model,
                        "block": b,
                        "verdict": verdict,
                        "n": n,
                        "p": p,
                    }
                    for n, p in zip(checks, ps, strict=True)
                ]
    return rows, curves


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, model, verdict): flagged share with a 95% interval, detection N."""
    from sbc.stats.coverage import binomial_interval

    out = []
    for (exp, model, verdict), g in table.groupby(["experiment", "model", "verdict"], sort=False):
        k, n = int(g["flagged"].sum()), len(g)
        lo, hi = binomial_interval(k, n)
        first = pd.to_numeric(g["first_flagged_at"], errors="coerce")
        out.append(
            {
                "experiment": exp,
                "model": model,
                "correct": bool(g["correct"].iloc[0]),
                "verdict": verdict,
                "blocks": n,
                "block_size": int(g["block_size"].iloc[0]),
                "flagged": k,
                "flagged_share": k / n,
                "share_low95": lo,
                "share_high95": hi,
                "median_first_flagged_at": float(first.median()) if first.notna().any() else np.nan,
                "first_flagged_at": " ".join("-" if v != v else str(int(v)) for v in first),
            }
        )
    return pd.DataFrame(out)


def figure(curves: pd.DataFrame, path: Path) -> None:
    """Median over blocks of log10 smallest Holm p against N, marginal vs stratified."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(curves.groupby(["experiment", "model"], sort=False).groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.0), squeeze=False)
    for ax, (exp, model) in zip(axes[0], keys, strict=True):
        mine = curves[(curves["experiment"] == exp) & (curves["model"] == model)]
        for verdict, g in mine.groupby("verdict", sort=False):
            med = g.groupby("n")["p"].median().clip(lower=1e-16)
            ax.plot(med.index, np.log10(med), marker="o", markersize=3, label=verdict)
        ax.axhline(np.log10(0.01), color="black", linewidth=0.6, linestyle="--")
        ax.set_title(f"{exp}: {model}", fontsize=9)
        ax.set_xlabel("simulations N", fontsize=8)
        ax.tick_params(labelsize=8)
    axes[0, 0].set_ylabel("log10 smallest Holm p (median over blocks)", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    """Run (or resume) the experiments and write the tables and the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-strata"))
    parser.add_argument("--quick", action="store_true", help="a third of the blocks")
    parser.add_argument("--only", nargs="*", default=None, help="experiment names")
    args = parser.parse_args()
    from sbc.results.strata import health_table

    rows, curves, health = [], [], []
    for exp in EXPERIMENTS:
        if args.only and exp.name not in args.only:
            continue
        results = _run(exp, args.out, args.jobs, args.quick)
        r, c = measure(exp, results, args.step)
        rows += r
        curves += c
        health.append(health_table(results).assign(experiment=exp.name))
    stamp = dt.date.today().isoformat() + ("-" + "+".join(args.only) if args.only else "")
    RESULTS.mkdir(exist_ok=True)
    pd.concat(health).to_csv(RESULTS / f"strata-{stamp}-health.csv", index=False)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / f"strata-{stamp}.csv", index=False)
    summary = summarize(table)
    summary.to_csv(RESULTS / f"strata-{stamp}-summary.csv", index=False)
    figure(pd.DataFrame(curves), RESULTS / f"strata-{stamp}.png")
    with pd.option_context("display.width", 220, "display.max_colwidth", 60):
        print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
