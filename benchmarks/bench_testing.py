"""How long sbc.testing checks take: is a calibration assertion fit for a unit-test tier.

All in one process, in this order, so the per-process cache of compiled models (and
joblib's reused loky workers) shows as the difference between a first and a second call:

* ``conjugate/exact`` (analytic posterior, no sampler): the machinery alone;
* ``heights/partial`` (PyMC, nutpie, default sampler settings): first call (compiles),
  second call (another seed: cached model), ``--jobs 1`` and ``--jobs 2``;
* a failing ``assert_calibrated`` (``heights/complete``): the check, and the report it writes;
* a hypothesis property over ``n_groups`` (each example a new design: a new compile).

Printed and saved to ``benchmarks/results/testing-DATE-HOST.csv``.

Usage: ``python benchmarks/bench_testing.py [--simulations 20] [--examples 3]``
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    """Run every measurement and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=20)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()
    from hypothesis import given

    from sbc.testing import (
        assert_calibrated,
        bonferroni,
        check_calibration,
        property_settings,
        scenario_settings,
    )

    n = args.simulations
    rows = []

    def timed(label: str, call, simulations: int) -> object:
        start = time.perf_counter()
        try:
            value = call()
        except AssertionError:  # a failing assertion is timed like a passing one
            value, label = None, f"{label} (raised)"
        seconds = time.perf_counter() - start
        rows.append({"case": label, "simulations": simulations, "seconds": round(seconds, 2)})
        print(f"{label:<58} {simulations:>5} sims {seconds:8.2f} s", flush=True)
        return value

    for call in ("first", "second"):
        timed(
            f"conjugate/exact, jobs 1, {call} call",
            lambda c=call: check_calibration(
                "conjugate", "exact", simulations=100, seed=int(c == "second")
            ),
            100,
        )
    for jobs in (1, 2):
        for call in ("first", "second"):
            timed(
                f"heights/partial, jobs {jobs}, {call} call",
                lambda c=call, j=jobs: check_calibration(
                    "heights", "partial", simulations=n, seed=10 * j + (c == "second"), jobs=j
                ),
                n,
            )
    result = timed(
        "heights/complete check (a failing one), jobs 2",
        lambda: check_calibration("heights", "complete", simulations=n, jobs=2),
        n,
    )
    timed("  its report (write_report)", result.write_report, n)
    again = "assert_calibrated of that result (writes it again)"
    timed(again, lambda: assert_calibrated(result), n)
    examples = args.examples

    @property_settings(max_examples=examples)
    @given(settings=scenario_settings("heights", n_groups=(2, 6), others="default"))
    def partial_over_designs(settings: dict) -> None:
        assert_calibrated(
            "heights",
            "partial",
            settings=settings,
            simulations=n,
            jobs=2,
            alpha=bonferroni(0.01, examples),
        )

    timed(f"hypothesis: {examples} designs of heights/partial, jobs 2", partial_over_designs, n)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.date.today().isoformat()
    path = RESULTS / f"testing-{stamp}-{platform.node() or 'host'}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["case", "simulations", "seconds", "load_1min"])
        writer.writeheader()
        load = round(os.getloadavg()[0], 2)
        writer.writerows([row | {"load_1min": load} for row in rows])
    print(f"saved {path} (1-minute load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
