"""Cost of a Stan fit in sbc: Stan's own time, sbc's wall time, nutpie and PyStan's route.

On the heights default design (4 countries x 20 people, default sampler settings: 2 chains,
300 warm-up, 1000 draws, adapt_delta 0.95), for the same simulated data sets:

* ``stan_own``: the Stan sampler's own time per fit, as Stan reports it (``Elapsed Time
  ... (Total)``, summed over the chains);
* ``sbc_stan``: sbc's wall time per Stan fit (:meth:`sbc.backends.stan.StanFitter.fit`: the
  data block, the sampler called in process, its messages read and parsed into arrays);
* ``sbc_stan_end_to_end``: a whole ``sbc`` run of the model with one worker, wall time over
  fits (simulation, fit, ranks, R-hat and ESS, the parts written);
* ``nutpie``: the same model's PyMC twin fitted with nutpie (sbc's wall time per fit);
* ``pystan``: PyStan's public route (``stan.build(program, data)`` then ``sample``: an
  httpstan server in process, chains in forked workers), wall time per fit, the model
  cached;
* ``simuk``: simuk 0.3's SBC of the same heights model, PyMC (``partial_centred``: simuk needs
  an observed variable; the same posterior as ``partial_stan``), seconds per simulation
  (``bench`` extra; skipped when simuk is not installed);
* ``compile_first`` / ``load_cached``: building a new program once per machine, and loading
  a built one in a fresh process.

Printed and saved to ``benchmarks/results/stan-DATE-HOST.csv``. Usage::

    python benchmarks/bench_stan.py [--fits 30] [--models partial,complete,none]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _row(route: str, model: str, seconds: list[float], stan: list[float] | None = None) -> dict:
    median = statistics.median(seconds)
    own = statistics.median(stan) if stan else float("nan")
    return {
        "route": route,
        "model": model,
        "fits": len(seconds),
        "median_seconds": round(median, 4),
        "median_stan_seconds": round(own, 4),
        "wall_over_stan": round(median / own, 3) if stan else "",
    }


def _in_process(model: str, fits: int) -> list[dict]:
    from sbc import registry, seeding
    from sbc.backends import Sampling

    heights = registry.get("heights")
    design = heights.design(heights.defaults)
    example = heights.simulate(design, seeding.example_rng()).data
    stan = heights.model(f"{model}_stan").backend.compile(design, example)
    twin = heights.model(model).backend.compile(design, example)
    sampling = Sampling().resolve()
    wall, own, nutpie = [], [], []
    for i in range(fits):
        data = heights.simulate(design, seeding.data_rng(0, i)).data
        start = time.perf_counter()
        run = stan.run(data, 1000 + i, sampling)
        wall.append(time.perf_counter() - start)
        own.append(run.stan_seconds)
        start = time.perf_counter()
        twin.fit(data, 1000 + i, sampling)
        nutpie.append(time.perf_counter() - start)
    return [
        _row("stan_own", f"{model}_stan", own),
        _row("sbc_stan", f"{model}_stan", wall, own),
        _row("nutpie", model, nutpie),
    ]


def _end_to_end(model: str, fits: int) -> dict:
    from sbc.api import run

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = run(
            "heights", models=[f"{model}_stan"], simulations=fits, out=folder, jobs=1,
            progress=False,
        ).results  # fmt: skip
        wall = time.perf_counter() - start
    per_fit = results.drop_duplicates("simulation")["fit_seconds"]
    row = _row("sbc_stan_end_to_end", f"{model}_stan", [wall / fits])
    row["fits"] = fits
    row["median_stan_seconds"] = round(float(per_fit.median()), 4)  # the fitter's own wall
    return row


def _pystan(model: str, fits: int) -> dict:
    """PyStan's public route: build with the data (cached program), then sample."""
    import stan

    from sbc import registry, seeding
    from sbc.backends.stan_chains import stan_inputs

    heights = registry.get("heights")
    design = heights.design(heights.defaults)
    backend = heights.model(f"{model}_stan").backend
    wall = []
    for i in range(fits):
        data = heights.simulate(design, seeding.data_rng(0, i)).data
        inputs = {k: v.tolist() for k, v in stan_inputs(backend.stan_data(design, data)).items()}
        start = time.perf_counter()
        posterior = stan.build(backend.code, data=inputs, random_seed=1000 + i)
        posterior.sample(num_chains=2, num_warmup=300, num_samples=1000, delta=0.95)
        wall.append(time.perf_counter() - start)
    return _row("pystan", f"{model}_stan", wall)


def _simuk(simulations: int) -> list[dict]:
    """Seconds per simulation of simuk on the heights model (bench_throughput's measurement)."""
    from bench_throughput import _simuk as simuk_run

    try:
        wall = simuk_run(simulations)["wall"] if simulations else None
    except ImportError:  # simuk not installed
        return []
    if not wall:
        return []
    return [_row("simuk", "partial_centred", [wall / simulations]) | {"fits": simulations}]


def _compile_costs() -> list[dict]:
    """A new program built once (seconds), then loaded from the cache in a fresh process."""
    from sbc.backends import stan_build

    program = f"// {uuid.uuid4()}\nparameters {{ real y; }}\nmodel {{ y ~ normal(0, 1); }}\n"
    start = time.perf_counter()
    stan_build.load(program)
    first = time.perf_counter() - start
    code = (
        "import time, sys; from sbc.backends import stan_build; t = time.perf_counter(); "
        "stan_build.load(sys.stdin.read()); print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=program, capture_output=True, text=True, check=True
    )
    return [
        _row("compile_first", "new program", [first]),
        _row("load_cached", "new program", [float(done.stdout.strip())]),
    ]


def main() -> None:
    """Measure and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=30)
    parser.add_argument("--models", default="partial,complete,none")
    parser.add_argument("--no-pystan", action="store_true", help="skip PyStan's public route")
    parser.add_argument("--simuk", type=int, default=10, help="simuk simulations (0: none)")
    args = parser.parse_args()
    rows = []
    for model in args.models.split(","):
        rows += _in_process(model, args.fits)
        rows.append(_end_to_end(model, args.fits))
        if not args.no_pystan:
            rows.append(_pystan(model, min(args.fits, 10)))
        print(*rows[-5:], sep="\n", flush=True)
    rows += _simuk(args.simuk)
    rows += _compile_costs()
    print(*rows[-3:], sep="\n")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"stan-{dt.date.today()}-{platform.node() or 'host'}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
