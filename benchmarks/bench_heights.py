"""Per-simulation cost of the heights ``partial`` model, and where the time goes.

Runs in one process (``--jobs 1``) so that times add up:

* compile once (nutpie, numba) -- paid once per worker;
* per simulation through the whole runner path (simulate, swap data in, sample, thin, rank,
  summarise, write the Parquet part), with the time spent inside ``nutpie.sample`` measured
  separately, giving the share of wall time spent outside the sampler;
* a peer in the same script: ``pymc.sample`` on the same model and data (what a
  hand-written SBC loop pays per fit), reported as a ratio.

Usage: ``python benchmarks/bench_heights.py [--simulations 100] [--peer-fits 5]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import nutpie

from sbc import fitting, seeding
from sbc.runner import DEFAULT_SAMPLING, run
from scenarios import heights


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--peer-fits", type=int, default=5)
    args = parser.parse_args()

    scenario, settings = heights.SCENARIO, heights.SCENARIO.defaults
    model = scenario.model("partial")
    design = scenario.design(settings)
    sampling = DEFAULT_SAMPLING

    start = time.perf_counter()
    fitting.compiled(scenario, settings, model, design)
    compile_s = time.perf_counter() - start

    sampler_s = 0.0
    original = nutpie.sample

    def timed_sample(*a, **k):
        nonlocal sampler_s
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            sampler_s += time.perf_counter() - t0

    nutpie.sample = timed_sample
    try:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run(scenario, settings, ["partial"], args.simulations, out, sampling=sampling, jobs=1)
            wall_s = time.perf_counter() - start
    finally:
        nutpie.sample = original
    per_sim = wall_s / args.simulations

    import pymc as pm

    peer_s = 0.0
    for i in range(args.peer_fits):
        sim = scenario.simulate(design, seeding.data_rng(0, i))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm_model = heights._build_partial(design, sim.data)
            start = time.perf_counter()
            with pm_model:
                pm.sample(
                    draws=sampling.draws,
                    tune=sampling.tune,
                    chains=sampling.chains,
                    cores=1,
                    target_accept=sampling.target_accept,
                    random_seed=i,
                    progressbar=False,
                    compute_convergence_checks=False,
                )
            peer_s += time.perf_counter() - start
    peer_per_fit = peer_s / args.peer_fits

    print(
        f"heights/partial, {sampling.chains} chains x {sampling.tune} tune + {sampling.draws} draws"
    )
    print(f"compile once (per worker):            {compile_s:8.2f} s")
    print(
        f"sbc wall time per simulation:         {per_sim:8.3f} s  ({args.simulations} simulations)"
    )
    print(f"  inside nutpie.sample:               {sampler_s / args.simulations:8.3f} s")
    print(f"  share outside the sampler:          {1 - sampler_s / wall_s:8.1%}")
    print(f"peer: pymc.sample per fit:            {peer_per_fit:8.3f} s  ({args.peer_fits} fits)")
    print(f"ratio pymc.sample / sbc per sim:      {peer_per_fit / per_sim:8.1f} x")
    break_even = compile_s / max(peer_per_fit - per_sim, 1e-9)
    print(f"simulations before compile pays off:  {break_even:8.1f}")


if __name__ == "__main__":
    main()
