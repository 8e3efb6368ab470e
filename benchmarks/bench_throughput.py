"""Throughput of sbc against simuk on the heights partial-pooling model.

Same work for both: the heights ``partial`` model (same priors, PyMC, non-centred), 2 chains
x 1000 tune + 1000 draws, target_accept 0.95. Each configuration runs in its own child
process (so peak memory is its own), one after the other, in this one invocation.

Printed and saved to ``benchmarks/results/throughput-DATE-HOST.csv``:

* seconds per simulation for simuk 0.3 and for sbc with ``--jobs 1`` and ``--jobs 2``, and
  the ratios (target: sbc ``--jobs 2`` at least 25x simuk; ``--jobs 2`` at least 1.7x
  ``--jobs 1``);
* the share of sbc's wall time spent outside the sampler at 1000 simulations (target < 15%);
* 1000 simulations x 3 pooling levels with ``--jobs 2`` (target < 10 minutes);
* peak memory at 250 and 1000 simulations (target: flat);
* how the cost per simulation grows with 4, 40, 400 countries and with 20 vs 200 people;
* the cost of the test quantities (log-likelihood etc.): the same run without them.

Usage: ``python benchmarks/bench_throughput.py [--simulations 1000] [--simuk 10] [--quick]``
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _child(config: dict) -> dict:
    """Run one configuration in this (child) process and measure it."""
    import nutpie

    from sbc.backends import Sampling
    from sbc.runner import run
    from scenarios import heights

    sampling = Sampling()
    out: dict = {}
    if config["kind"] == "simuk":
        import logging
        import warnings

        import simuk

        from sbc import seeding

        logging.getLogger("pymc").setLevel(logging.ERROR)
        scenario = heights.SCENARIO
        design = scenario.design(scenario.defaults)
        model = heights._build_partial(
            design, scenario.simulate(design, seeding.example_rng()).data
        )
        sbc_run = simuk.SBC(
            model,
            num_simulations=config["simulations"],
            sample_kwargs={
                "chains": sampling.chains,
                "tune": sampling.tune,
                "draws": sampling.draws,
                "cores": 1,
                "target_accept": sampling.target_accept,
            },
            seed=1,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sbc_run.run_simulations()
        out["wall"] = time.perf_counter() - start
    else:
        scenario = heights.SCENARIO
        settings = scenario.resolve_settings(config.get("settings", {}))
        sampler = {"seconds": 0.0}
        out["compile"] = 0.0
        if config["jobs"] == 1:
            from sbc import fitting

            start = time.perf_counter()  # compile outside the timed run: its cost is reported apart
            for name in config["models"]:
                fitting.compiled(
                    scenario, settings, scenario.model(name), scenario.design(settings)
                )
            out["compile"] = time.perf_counter() - start
            original = nutpie.sample

            def timed(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    sampler["seconds"] += time.perf_counter() - t0

            nutpie.sample = timed
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            results = run(
                scenario,
                settings,
                config["models"],
                config["simulations"],
                folder,
                seed=0,
                sampling=sampling,
                jobs=config["jobs"],
            )
            out["wall"] = time.perf_counter() - start
        fits = results.drop_duplicates(["simulation", "model"])
        out["fit_seconds"] = float(fits["fit_seconds"].sum())
        out["sampler_seconds"] = sampler["seconds"] if config["jobs"] == 1 else None
        out["divergent_share"] = float((fits["divergences"] > 0).mean())
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["peak_mb"] = max(self_kb, children_kb) / 1024
    return out


def _measure(config: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed: {config}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> str:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown cpu"
    return f"{platform.node()} ({cpu}, {len(__import__('os').sched_getaffinity(0))} cores)"


def main() -> None:
    """Run every configuration and print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--simuk", type=int, default=10, help="simulations for simuk")
    parser.add_argument("--scaling", type=int, default=20, help="simulations per scaling row")
    parser.add_argument("--quick", action="store_true", help="200 simulations, 5 for simuk")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    n = 200 if args.quick else args.simulations
    n_simuk = 5 if args.quick else args.simuk
    rows: list[tuple[str, float, str, str]] = []

    def add(metric: str, value: float, unit: str, target: str = "") -> None:
        rows.append((metric, value, unit, target))
        print(f"{metric:<58} {value:>10.3f} {unit:<8} {target}", flush=True)

    print(f"machine: {_machine()}\nheights/partial, 2 chains x 1000 tune + 1000 draws\n")
    simuk = _measure({"kind": "simuk", "simulations": n_simuk})
    add(f"simuk 0.3: seconds per simulation ({n_simuk} sims)", simuk["wall"] / n_simuk, "s")
    one = _measure({"kind": "sbc", "models": ["partial"], "simulations": n, "jobs": 1})
    whole = one["wall"] + one["compile"]
    add("sbc: compile once (per worker)", one["compile"], "s")
    add(f"sbc --jobs 1: seconds per simulation ({n} sims, incl. compile)", whole / n, "s")
    two = _measure({"kind": "sbc", "models": ["partial"], "simulations": n, "jobs": 2})
    add(f"sbc --jobs 2: seconds per simulation ({n} sims, incl. compile)", two["wall"] / n, "s")
    ratio = simuk["wall"] / n_simuk / (two["wall"] / n)
    add("throughput ratio sbc --jobs 2 / simuk", ratio, "x", ">= 25")
    add("throughput ratio sbc --jobs 1 / simuk", simuk["wall"] / n_simuk / (whole / n), "x")
    add("speed-up --jobs 2 over --jobs 1", whole / two["wall"], "x", ">= 1.7")
    inside = one["sampler_seconds"]
    add("--jobs 1: share of wall time inside nutpie.sample", inside / whole, "share")
    add(
        "--jobs 1: share outside the sampler, compile included",
        1 - inside / whole,
        "share",
        "< 0.15",
    )
    add("--jobs 1: share outside the sampler, compile excluded", 1 - inside / one["wall"], "share")
    add(
        "--jobs 2: share outside fits (1 - fit time / (2 x wall))",
        1 - two["fit_seconds"] / (2 * two["wall"]),
        "share",
    )
    add("--jobs 1: share of fits with divergences", one["divergent_share"], "share")
    bare = _measure(
        {
            "kind": "sbc",
            "models": ["partial"],
            "simulations": max(n // 4, 10),
            "jobs": 1,
            "test_quantities": False,
        }
    )
    add(
        "--jobs 1 without test quantities: seconds per simulation (compile excluded)",
        bare["wall"] / max(n // 4, 10),
        "s",
    )
    add(
        "--jobs 1 without test quantities: share outside the sampler",
        1 - bare["sampler_seconds"] / bare["wall"],
        "share",
    )
    three = _measure(
        {"kind": "sbc", "models": ["complete", "none", "partial"], "simulations": n, "jobs": 2}
    )
    add(f"{n} sims x complete/none/partial, --jobs 2: wall time", three["wall"], "s", "< 600")
    small = _measure(
        {"kind": "sbc", "models": ["partial"], "simulations": max(n // 4, 10), "jobs": 1}
    )
    add(f"peak memory, --jobs 1, {max(n // 4, 10)} sims", small["peak_mb"], "MB")
    add(f"peak memory, --jobs 1, {n} sims", one["peak_mb"], "MB", "flat")
    add(f"peak memory, --jobs 2, {n} sims (largest process)", two["peak_mb"], "MB")
    add("peak memory, simuk", simuk["peak_mb"], "MB")
    for groups, per in ((4, 20), (40, 20), (400, 20), (4, 200)):
        cell = _measure(
            {
                "kind": "sbc",
                "models": ["partial"],
                "simulations": args.scaling,
                "jobs": 1,
                "settings": {"n_groups": groups, "n_per_group": per},
            }
        )
        label = f"--jobs 1, {groups} countries x {per} people"
        add(f"{label}: compile", cell["compile"], "s")
        add(f"{label}: seconds per simulation (compile excluded)", cell["wall"] / args.scaling, "s")
        outside = 1 - cell["sampler_seconds"] / cell["wall"]
        add(f"{label}: share outside the sampler", outside, "share")

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"throughput-{dt.date.today().isoformat()}-{platform.node()}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "value", "unit", "target", "machine", "date"])
        for metric, value, unit, target in rows:
            writer.writerow(
                [metric, f"{value:.6g}", unit, target, _machine(), dt.date.today().isoformat()]
            )
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
