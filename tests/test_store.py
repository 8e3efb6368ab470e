"""sbc.results.store: a run folder's parts, record and results; resume and refusals."""

import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.results.store import RunStore, StoreError
from tests.helpers import run


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "run"
    scenario = registry.get("conjugate")
    run(scenario, scenario.defaults, ["exact"], 6, out, sampling=Sampling(chains=1, draws=100))
    return out


def test_parts_record_and_results_are_read_back(folder):
    """Every finished simulation has a part; the record and the results table read back."""
    store = RunStore(folder)
    assert store.finished() == set(range(6))
    assert store.record()["identity"]["models"] == ["exact"]
    assert sorted(store.results()["simulation"].unique()) == list(range(6))


def test_a_lost_results_file_is_rebuilt_from_the_parts(folder):
    """results.parquet is a cache of the parts: removed, collect() gives the same table."""
    store = RunStore(folder)
    before = store.results()
    store.results_file.unlink()
    store.collect(6)
    assert store.results().equals(before)


def test_resuming_computes_only_missing_simulations(folder):
    """A removed part is the only simulation computed again; the others are kept."""
    store = RunStore(folder)
    before = store.results()
    store.part_file(2).unlink()
    assert store.finished() == {0, 1, 3, 4, 5}
    scenario = registry.get("conjugate")
    again = run(
        scenario, scenario.defaults, ["exact"], 6, folder, sampling=Sampling(chains=1, draws=100)
    )
    cols = [c for c in before.columns if c != "fit_seconds"]
    assert again[cols].reset_index(drop=True).equals(before[cols].reset_index(drop=True))


def test_a_folder_without_a_run_is_refused_in_one_line(tmp_path):
    """No results: one line naming the folder and the file expected."""
    with pytest.raises(StoreError, match="no results in") as caught:
        RunStore(tmp_path).results()
    assert "\n" not in str(caught.value)


def test_a_folder_holding_another_run_is_refused(folder):
    """Opening a folder with another identity (other models) is refused, not mixed."""
    scenario = registry.get("conjugate")
    with pytest.raises(StoreError):
        run(scenario, scenario.defaults, ["biased"], 6, folder)


def test_parts_kept_in_memory_are_compacted_without_changing_rows():
    """Hundreds of one-simulation tables are kept as a few tables holding the same rows."""
    import pyarrow as pa

    from sbc.results.schema import concat_rows, result_rows
    from sbc.results.store import Parts

    parts, originals = Parts(), []
    for simulation in range(600):
        rows = result_rows(
            {"simulation": simulation, "model": "m", "estimand": ["a", "b"], "pit": [0.2, 0.7]}
        )
        originals.append(rows)
        parts.add(rows)
    tables = parts.tables()
    assert len(tables) == 600 // Parts.BATCH + 600 % Parts.BATCH  # two batches, the rest pending
    assert parts.simulations == set(range(600))
    pd.testing.assert_frame_equal(
        pa.concat_tables(tables).to_pandas(), concat_rows(originals).to_pandas()
    )


def _rows(simulation, statistics=True):
    """Result rows of one simulation: scalars broadcast, strings with None, nulls, statistics."""
    from sbc.results.schema import result_rows

    columns = {
        "simulation": simulation,
        "model": "m",
        "estimand": ["a", "b", "c"],
        "kind": "estimand",
        "rank": [3, None, 7],
        "max_rank": 99,
        "pit": [0.2, 0.5, 0.7],
        "error": [None, "ValueError: x", None],
        "converged": [True, None, False],
    }
    return result_rows(columns, {"between_within": 1.5 + simulation} if statistics else None)


def _write_parquet_part(store, rows):
    """A part as sbc wrote them before parts were Arrow files (sim-NNNNNN.parquet)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    (simulation,) = pc.unique(rows.column("simulation")).to_pylist()
    path = store.parts / f"sim-{simulation:06d}.parquet"
    pq.write_table(rows, path, compression="none", use_dictionary=False, write_statistics=False)
    return path


def _store(path):
    store = RunStore(path)
    store.parts.mkdir(parents=True)
    return store


def _assert_same_table(left, right):
    """Same schema (pandas metadata included) and the same rows, NaN equal to NaN."""
    assert left.schema.equals(right.schema, check_metadata=True)
    pd.testing.assert_frame_equal(left.to_pandas(), right.to_pandas())


def test_a_part_is_an_arrow_file_that_reads_back_the_same_rows(tmp_path):
    """write_part stores sim-NNNNNN.arrow (no temporary file left) holding the rows exactly."""
    from sbc.results.store import _read_part

    store = _store(tmp_path)
    rows = _rows(7)
    store.write_part(rows)
    assert [p.name for p in store.parts.iterdir()] == ["sim-000007.arrow"]
    assert store.finished() == {7} and store.stored_parts() == {7: store.part_file(7)}
    store.check_parts()
    _assert_same_table(_read_part(store.part_file(7)), rows)


def test_collect_from_arrow_parts_equals_collect_from_parquet_parts(tmp_path):
    """results.parquet is the same table (schema, dtypes, rows) whatever the format of the parts."""
    import pyarrow.parquet as pq

    arrow, parquet = _store(tmp_path / "arrow"), _store(tmp_path / "parquet")
    for simulation in range(4):
        rows = _rows(simulation, statistics=simulation != 2)  # sim 2: no statistic columns
        arrow.write_part(rows)
        _write_parquet_part(parquet, rows)
    from_arrow, from_parquet = arrow.collect(4), parquet.collect(4)
    _assert_same_table(pq.read_table(arrow.results_file), pq.read_table(parquet.results_file))
    pd.testing.assert_frame_equal(from_arrow, from_parquet)
    assert from_arrow["model"].dtype == "string" and from_arrow["rank"].dtype == "Int64"
    assert from_arrow["converged"].dtype == "boolean"
    assert from_arrow["error"].isna().tolist() == [True, False, True] * 4


def test_a_run_with_parquet_parts_of_an_earlier_version_resumes_and_collects(folder, tmp_path):
    """Old .parquet parts count as finished; the resumed run computes only the rest as .arrow."""
    import shutil

    from sbc.results.store import _read_part

    out = tmp_path / "old"
    shutil.copytree(folder, out)
    store = RunStore(out)
    before = store.results()
    for simulation in range(6):
        path = store.part_file(simulation)
        if simulation < 4:
            _write_parquet_part(store, _read_part(path))
        path.unlink()
    store.results_file.unlink()
    assert store.finished() == {0, 1, 2, 3}
    kept = {p.name: p.stat().st_mtime_ns for p in store.parts.iterdir()}
    scenario = registry.get("conjugate")
    again = run(
        scenario, scenario.defaults, ["exact"], 6, out, sampling=Sampling(chains=1, draws=100)
    )
    names = sorted(p.name for p in store.parts.iterdir())
    assert names == [
        *(f"sim-{i:06d}.parquet" for i in range(4)),
        "sim-000004.arrow",
        "sim-000005.arrow",
    ]
    assert {name: (store.parts / name).stat().st_mtime_ns for name in kept} == kept
    cols = [c for c in before.columns if c != "fit_seconds"]
    assert again[cols].reset_index(drop=True).equals(before[cols].reset_index(drop=True))
    assert store.results().equals(again)


def test_a_mixed_folder_reads_each_simulation_once_preferring_its_arrow_part(tmp_path):
    """Parquet-only, Arrow-only and both: all finished, the Arrow part read; removal takes both."""
    import pyarrow as pa

    store = _store(tmp_path)
    _write_parquet_part(store, _rows(0))
    store.write_part(_rows(1))
    rows = _rows(2)
    stale = rows.set_column(4, rows.schema.field(4), pa.array([9.0, 9.0, 9.0]))  # older rows
    _write_parquet_part(store, stale)
    store.write_part(_rows(2))
    assert store.finished() == {0, 1, 2}
    assert {i: p.suffix for i, p in store.stored_parts().items()} == {
        0: ".parquet",
        1: ".arrow",
        2: ".arrow",
    }
    store.check_parts()
    results = store.collect(3)
    assert results.groupby("simulation").size().tolist() == [3, 3, 3]
    assert results["true_value"].isna().all()  # simulation 2 read from its Arrow part
    store.remove_part(2)
    store.remove_part(0)
    assert store.finished() == {1} and len(list(store.parts.iterdir())) == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_arrow_part_is_a_one_line_error_naming_it(tmp_path, damage):
    """check_parts and collect refuse a damaged .arrow part in one line naming the file."""
    store = _store(tmp_path)
    store.write_part(_rows(0))
    store.write_part(_rows(1))
    path = store.part_file(1)
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"ARROW1 broken"}.get(damage, b"")
    )
    for action in (store.check_parts, lambda: store.collect(2)):
        with pytest.raises(StoreError, match="cannot read") as caught:
            action()
        message = str(caught.value)
        assert "\n" not in message and "sim-000001.arrow" in message and "--overwrite" in message


def test_orphaned_temporary_arrow_parts_are_ignored_and_removed(tmp_path):
    """A dead writer's .sim-N.arrow.PID.tmp is no part and is removed; a live writer's stays."""
    import os
    import subprocess
    import sys

    store = _store(tmp_path)
    store.write_part(_rows(0))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    orphan = store.parts / f".sim-000001.arrow.{dead}.tmp"
    orphan.write_bytes(b"ARROW1 half")
    live = store.parts / f".sim-000002.arrow.{os.getpid()}.tmp"
    live.write_bytes(b"ARROW1 half")
    assert store.finished() == {0}
    store.remove_orphans()
    assert not orphan.exists() and live.exists()
    store.check_parts()
    assert store.collect(3)["simulation"].unique().tolist() == [0]


def test_a_failed_part_write_leaves_no_file(tmp_path, monkeypatch):
    """A write that fails (disk full) raises and leaves neither a part nor a temporary file."""
    import errno
    import os

    store = _store(tmp_path)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        store.write_part(_rows(0))
    monkeypatch.undo()
    assert list(store.parts.iterdir()) == []
