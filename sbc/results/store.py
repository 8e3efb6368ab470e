"""The results store of one run, in its output folder.

Layout::

    OUT/run.json                 settings, seed, sampler settings, package versions
    OUT/parts/sim-000042.arrow   rows of one finished simulation (written as it finishes)
    OUT/results.parquet          every finished simulation, sorted (rebuilt from the parts)

A part is an Arrow IPC file (:data:`PART_SUFFIX`); folders made by earlier versions hold
Parquet parts (``sim-000042.parquet``), which are still read, so such a run resumes where
it stopped. A simulation is finished when either file is on disk; when both are, the Arrow
one is read. Each part is written to a temporary file (``parts/.sim-000042.arrow.PID.tmp``)
and renamed, so a part on disk is always whole: an interrupted run (even ``kill -9``) loses
at most the simulations that were still running, and re-running the same command computes
only the missing ones. Parts are named by simulation index and only the process that
opened the run writes them, so a simulation can never be stored twice: a retried or
duplicated task just replaces its part with identical rows. Temporary files orphaned by a
killed writer are never read and are removed when the run is next opened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sbc.results.schema import SchemaError, concat_rows, validate

PACKAGES: tuple[str, ...] = (
    "sbc-testbed",
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


OWN_FILES: tuple[str, ...] = (
    "run.json",
    "results.parquet",
    "summary.csv",
    "strata.csv",
    "report.html",
    "reference.npz",
)
"""Files of a run folder that belong to sbc (with ``parts/``): what ``--overwrite`` deletes."""

PART_SUFFIX = ".arrow"
"""Format of the parts this version writes: the Arrow IPC file format.

Chosen for what a part costs the run (12 rows x 50 columns of a heights fit, measured on
one machine): the Arrow file serialises in 0.03 ms against 0.57 ms for Parquet
(uncompressed, no statistics or dictionaries), and one ``os.write`` of it plus the rename
costs 0.16 ms against 0.23 ms through pathlib, so ``RunStore.write_part`` fell from 0.87 ms
(Parquet) to 0.28-0.34 ms in a micro-benchmark (1.3-1.9 ms in situ before). Reading one
back costs 0.05 ms against 1.5 ms. A part is only ever read whole, by sbc itself, so
Parquet's compression and statistics buy nothing here; ``results.parquet``, which users
read, stays Parquet.
"""

LEGACY_SUFFIXES: tuple[str, ...] = (".parquet",)
"""Formats of parts written by earlier versions, still read (a run made by one resumes)."""

_PART = re.compile(r"sim-(\d+)(\.arrow|\.parquet)")
_TMP = re.compile(r"\..+\.(\d+)\.tmp")
_FRESH = "; `sbc run --overwrite` starts that folder afresh (or use another --out folder)"


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (``None`` when it is not installed)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _temporary(path: Path) -> Path:
    """The temporary name ``path`` is written under before being renamed (``.NAME.PID.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_atomic(path: Path, write: Any) -> None:
    tmp = _temporary(path)
    write(tmp)
    os.replace(tmp, path)


def _write_bytes_atomic(path: Path, data: pa.Buffer) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (no partial file).

    Plain ``os`` calls: 0.16 ms a part against 0.23 ms through ``Path.write_bytes``. A
    temporary file left by a failed write is removed.
    """
    tmp = _temporary(path)
    view = memoryview(data)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        if self.out.exists() and not self.out.is_dir():
            raise StoreError(f"{self.out} is a file, not a folder")
        if self.run_file.exists() or self.run_file.is_symlink():
            record = self.record()
            previous, wall_seconds = record["identity"], record.get("wall_seconds", 0.0)
            if not isinstance(wall_seconds, int | float):
                wall_seconds = 0.0
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
        elif self.finished():
            raise StoreError(
                f"{self.parts} holds simulations but {self.run_file} is missing{_FRESH}"
            )
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise StoreError(f"cannot create output folder {self.out}: {reason}") from None
        self.remove_orphans()
        self.check_parts()
        try:
            self._write_record({"identity": identity, **extra, "wall_seconds": wall_seconds})
        except OSError as exc:
            raise StoreError(f"cannot write {self.run_file}: {exc.strerror}") from None

    def clear(self) -> None:
        """Delete sbc's own files in the folder (``parts/`` and :data:`OWN_FILES`) only.

        Raises
        ------
        StoreError
            If the output path is a file, or a file cannot be removed.
        """
        if self.out.exists() and not self.out.is_dir():
            raise StoreError(f"{self.out} is a file, not a folder")
        try:
            if self.parts.is_dir() and not self.parts.is_symlink():
                shutil.rmtree(self.parts)
            elif self.parts.exists() or self.parts.is_symlink():
                self.parts.unlink()
            for name in OWN_FILES:
                (self.out / name).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot clear {self.out}: {exc}") from None

    def remove_orphans(self) -> None:
        """Remove temporary files left by writers that no longer run (``kill -9``)."""
        for path in [*self.parts.glob(".*.tmp"), *self.out.glob(".*.tmp")]:
            match = _TMP.fullmatch(path.name)
            if match and not _alive(int(match.group(1))):
                path.unlink(missing_ok=True)

    def check_parts(self) -> None:
        """Check that every stored part is readable.

        An Arrow part is read whole and validated (0.05 ms a part); of a Parquet part
        (earlier versions) the footer is read, as those versions did.

        Raises
        ------
        StoreError
            Naming the first unreadable part.
        """
        for _, path in sorted(self.stored_parts().items()):
            if path.suffix == PART_SUFFIX:
                _read_part(path)
            else:
                _guarded(path, pq.read_metadata)

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
            raise StoreError(f"cannot read {self.run_file}: {_first_line(exc)}{_FRESH}") from None
        if not isinstance(record, dict) or not isinstance(record.get("identity"), dict):
            raise StoreError(f"{self.run_file} is not an sbc run record{_FRESH}")
        return record

    def add_wall_seconds(self, seconds: float) -> None:
        """Add the wall time of one invocation to the run's total in ``run.json``."""
        record = self.record()
        record["wall_seconds"] = record.get("wall_seconds", 0.0) + seconds
        self._write_record(record)

    def annotate(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` in ``run.json`` (a fact, not part of the identity)."""
        record = self.record()
        record[key] = value
        self._write_record(record)

    def _write_record(self, record: Mapping[str, Any]) -> None:
        text = json.dumps(record, indent=2) + "\n"
        _write_atomic(self.run_file, lambda p: p.write_text(text))

    def results(self) -> pd.DataFrame:
        """The run's ``results.parquet``.

        Raises
        ------
        StoreError
            If it is missing, unreadable, or not a results table
            (:func:`sbc.results.schema.validate`).
        """
        if not self.results_file.exists():
            raise StoreError(f"no results in {self.out} (expected {self.results_file})")
        try:
            table = pd.read_parquet(self.results_file)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {self.results_file}: {_first_line(exc)}") from None
        try:
            return validate(table)
        except SchemaError as exc:
            raise StoreError(f"{self.results_file}: {exc}") from None

    def part_file(self, simulation: int) -> Path:
        """Path that simulation ``simulation``'s part is written to (:data:`PART_SUFFIX`)."""
        return self.parts / f"sim-{simulation:06d}{PART_SUFFIX}"

    def stored_parts(self) -> dict[int, Path]:
        """The part file read for each finished simulation.

        An Arrow part, or else a Parquet part written by an earlier version; a simulation
        with both (a folder resumed by this version) is read from its Arrow part.
        """
        found: dict[int, Path] = {}
        for path in self.parts.glob("sim-*"):
            match = _PART.fullmatch(path.name)
            if match and (match.group(2) == PART_SUFFIX or int(match.group(1)) not in found):
                found[int(match.group(1))] = path
        return found

    def finished(self) -> set[int]:
        """Indices of the simulations whose part (of either format) is on disk."""
        return set(self.stored_parts())

    def remove_part(self, simulation: int) -> None:
        """Delete simulation ``simulation``'s part, in every format it is stored in."""
        for suffix in (PART_SUFFIX, *LEGACY_SUFFIXES):
            self.part_file(simulation).with_suffix(suffix).unlink(missing_ok=True)

    def write_part(self, rows: pa.Table) -> None:
        """Store the result rows of one finished simulation, as an Arrow IPC file.

        Serialised in memory, then written in one call and renamed into place (about
        0.3 ms a part, see :data:`PART_SUFFIX`).
        """
        (simulation,) = pc.unique(rows.column("simulation")).to_pylist()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, rows.schema) as writer:
            writer.write_table(rows)
        _write_bytes_atomic(self.part_file(simulation), sink.getvalue())

    def collect(self, simulations: int, known: Parts | None = None) -> pd.DataFrame:
        """Gather the parts of simulations ``0..simulations-1`` into ``results.parquet``.

        Parameters
        ----------
        simulations : int
            Number of simulations of the run.
        known : Parts, optional
            Parts already in memory (the ones this process just wrote): used instead of
            reading their files back (an Arrow part reads in 0.05 ms, a Parquet one of an
            earlier version in 1.5 ms).

        Returns
        -------
        pandas.DataFrame
            Rows sorted by simulation, then in each simulation's model and estimand order.
        """
        stored = self.stored_parts()
        known = known or Parts()
        tables = known.tables()
        for i in sorted(stored):
            if i < simulations and i not in known.simulations:
                tables.append(_read_part(stored[i]))
        if not tables:
            return pd.DataFrame()
        results = concat_rows(tables)
        results = results.filter(pc.less(results.column("simulation"), simulations))
        # a stable sort: each simulation's rows keep their model and estimand order
        results = results.take(pc.sort_indices(results, [("simulation", "ascending")]))
        _write_atomic(self.results_file, lambda p: pq.write_table(results, p))
        return results.to_pandas()


class Parts:
    """Result rows of finished simulations kept in memory, compacted as they come.

    A part received from a worker is a small Arrow table that costs about 145 kB of memory
    (its buffers and schema, for 12 rows of 34 columns); 5000 of them took 726 MB. Every
    :data:`BATCH` parts are copied into one contiguous table, so the parts kept cost about
    what their rows do.
    """

    BATCH = 256

    def __init__(self) -> None:
        self.simulations: set[int] = set()
        self._compact: list[pa.Table] = []
        self._pending: list[pa.Table] = []

    def add(self, rows: pa.Table) -> None:
        """Keep the rows of one simulation."""
        self.simulations.update(pc.unique(rows.column("simulation")).to_pylist())
        self._pending.append(rows)
        if len(self._pending) >= self.BATCH:
            self._compact.append(concat_rows(self._pending).combine_chunks())
            self._pending = []

    def tables(self) -> list[pa.Table]:
        """The kept rows, as a few tables (in the order they came)."""
        return [*self._compact, *self._pending]


def _read_part(path: Path) -> pa.Table:
    """The rows of one part file, Arrow or (earlier versions) Parquet.

    Raises
    ------
    StoreError
        If the file is unreadable (truncated, not a part), naming it.
    """
    if path.suffix == PART_SUFFIX:
        return _guarded(path, _read_arrow)
    return _guarded(path, pq.read_table)


def _read_arrow(path: Path) -> pa.Table:
    """An Arrow IPC file read whole into memory and validated (the file is closed).

    Read as bytes, not memory-mapped: collecting thousands of parts would otherwise hold a
    mapping per part until the results are written.
    """
    with open(path, "rb") as file:
        data = file.read()
    table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    table.validate()
    return table


def _guarded(path: Path, read: Any) -> Any:
    """``read(path)``, an unreadable file raised as a one-line StoreError naming it."""
    try:
        return read(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read {path}: {_first_line(exc)}{_FRESH}") from None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a writer that may yet rename its file)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
