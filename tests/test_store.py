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
