"""Cost of ``sbc report`` against the number of simulations: time, size, peak memory.

Runs the exact conjugate scenario (no sampler: what is measured is the report) at 500 and
5000 simulations into ``--out`` (resumed if there), then times ``sbc report`` of each in a
fresh process, ``--repeats`` times, with its peak resident memory (GNU time's maximum RSS,
``/usr/bin/time``) and the size of ``report.html``.
The ratios 5000 : 500 are what issue 21 set a target on (time at most 1.5x, file at most
2 MB).

Writes ``benchmarks/results/report-cost-DATE.csv``, one row per (simulations, repeat).

Usage: ``python benchmarks/bench_report.py [--jobs 2] [--repeats 3] [--out DIR]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"
SIZES = (500, 5000)


def sbc(*args: str) -> float:
    """Run the ``sbc`` command of this interpreter's environment; its peak RSS in MB."""
    command = ["/usr/bin/time", "-f", "peak_kb=%M", sys.executable, "-m", "sbc.cli", *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stderr.rsplit("peak_kb=", 1)[1].split()[0]) / 1024


def main() -> None:
    """Run, time the reports, write the CSV and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-report"))
    args = parser.parse_args()
    rows = []
    for n in SIZES:
        folder = args.out / f"conjugate-{n}"
        sbc(
            "run",
            "conjugate",
            "-n",
            str(n),
            "--jobs",
            str(args.jobs),
            "--quiet",
            "--out",
            str(folder),
        )
        for repeat in range(args.repeats):
            start = time.perf_counter()
            peak = sbc("report", str(folder))
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "simulations": n,
                    "repeat": repeat,
                    "seconds": round(seconds, 2),
                    "report_mb": round((folder / "report.html").stat().st_size / 1e6, 3),
                    "peak_rss_mb": round(peak),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"report-cost-{dt.date.today().isoformat()}.csv"
    table.to_csv(path, index=False)
    medians = table.groupby("simulations")[["seconds", "report_mb"]].median()
    ratio = medians.loc[SIZES[1], "seconds"] / medians.loc[SIZES[0], "seconds"]
    print(medians.to_string())
    print(f"time {SIZES[1]} : {SIZES[0]} = {ratio:.2f}x; written {path}")


if __name__ == "__main__":
    main()
