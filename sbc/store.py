"""The results store of one run, in its output folder.

Layout::

    OUT/run.json               settings, seed, sampler settings, package versions
    OUT/parts/sim-000042.parquet   rows of one finished simulation (written as it finishes)
    OUT/results.parquet        every finished simulation, sorted (rebuilt from the parts)

Each part is written to a temporary file and renamed, so a part on disk is always whole: an
interrupted run loses at most the simulations that were still running, and re-running the
same command computes only the missing ones.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES: tuple[str, ...] = (
    "sbc",
    "numpy",
    "pandas",
    "pymc",
    "pytensor",
    "bambi",
    "nutpie",
    "arviz",
    "arviz-stats",
)


class StoreError(RuntimeError):
    """The output folder cannot hold this run (another run's results, unreadable files)."""


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (``None`` when it is not installed)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class RunStore:
    """Reads and writes one run's results in ``out``.

    Parameters
    ----------
    out : path
        Output folder; created if missing.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.parts = self.out / "parts"
        self.run_file = self.out / "run.json"
        self.results_file = self.out / "results.parquet"

    def open(self, identity: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        """Create the folder, or check that the run already in it is this one.

        Parameters
        ----------
        identity : mapping
            Everything that determines the results (scenario, settings, models, seed,
            sampler and thinning settings). A folder holding a run with another identity is
            refused rather than mixed.
        extra : mapping
            Recorded but free to change between resumptions (simulation count, versions).

        Raises
        ------
        StoreError
            If the folder holds a different run or its ``run.json`` is unreadable.
        """
        identity = json.loads(json.dumps(identity))
        wall_seconds = 0.0
        if self.run_file.exists():
            record = self.record()
            previous, wall_seconds = record["identity"], record.get("wall_seconds", 0.0)
            if previous != identity:
                changed = sorted(
                    k
                    for k in identity.keys() | previous.keys()
                    if identity.get(k) != previous.get(k)
                )
                raise StoreError(
                    f"{self.out} holds a run with other {', '.join(changed)}; "
                    "use another --out folder or the same settings to resume"
                )
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create output folder {self.out}: {exc.strerror}") from None
        self._write_record({"identity": identity, **extra, "wall_seconds": wall_seconds})

    def record(self) -> dict[str, Any]:
        """The run's ``run.json``.

        Raises
        ------
        StoreError
            If it is missing or unreadable.
        """
        try:
            record = json.loads(self.run_file.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {self.run_file}: {exc}") from None
        if not isinstance(record, dict) or "identity" not in record:
            raise StoreError(f"{self.run_file} is not an sbc run record")
        return record

    def add_wall_seconds(self, seconds: float) -> None:
        """Add the wall time of one invocation to the run's total in ``run.json``."""
        record = self.record()
        record["wall_seconds"] = record.get("wall_seconds", 0.0) + seconds
        self._write_record(record)

    def _write_record(self, record: Mapping[str, Any]) -> None:
        text = json.dumps(record, indent=2) + "\n"
        _write_atomic(self.run_file, lambda p: p.write_text(text))

    def results(self) -> pd.DataFrame:
        """The run's ``results.parquet``.

        Raises
        ------
        StoreError
            If it is missing or unreadable.
        """
        if not self.results_file.exists():
            raise StoreError(f"no results in {self.out} (expected {self.results_file})")
        try:
            return pd.read_parquet(self.results_file)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {self.results_file}: {exc}") from None

    def part_file(self, simulation: int) -> Path:
        """Path of simulation ``simulation``'s part."""
        return self.parts / f"sim-{simulation:06d}.parquet"

    def finished(self) -> set[int]:
        """Indices of the simulations whose part is on disk."""
        return {int(p.stem.removeprefix("sim-")) for p in self.parts.glob("sim-*.parquet")}

    def write_part(self, frame: pd.DataFrame) -> None:
        """Store the rows of one finished simulation."""
        (simulation,) = frame["simulation"].unique()
        _write_atomic(self.part_file(int(simulation)), lambda p: frame.to_parquet(p, index=False))

    def collect(self, simulations: int) -> pd.DataFrame:
        """Gather the parts of simulations ``0..simulations-1`` into ``results.parquet``.

        Returns
        -------
        pandas.DataFrame
            Rows sorted by simulation, then in each simulation's model and estimand order.
        """
        done = sorted(i for i in self.finished() if i < simulations)
        frames = []
        for i in done:
            try:
                frames.append(pd.read_parquet(self.part_file(i)))
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read {self.part_file(i)}: {exc}") from None
        if not frames:
            return pd.DataFrame()
        results = pd.concat(frames, ignore_index=True)
        _write_atomic(self.results_file, lambda p: results.to_parquet(p, index=False))
        return results
