"""The dask backend: the same simulations on an existing Dask cluster, identical results."""

import textwrap

import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.results.schema import TIMING_COLUMNS
from sbc.results.store import RunStore
from tests.helpers import run

distributed = pytest.importorskip("distributed")

CONJUGATE = registry.get("conjugate")
SAMPLING = Sampling(chains=2, draws=100)


@pytest.fixture(scope="module")
def scheduler():
    """Address of a two-process Dask cluster on the loopback interface."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    ) as cluster:
        yield cluster.scheduler_address


def _comparable(frame):
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_dask_run_equals_a_local_run(tmp_path, scheduler):
    """A run on a Dask cluster gives the local run's table (apart from timings)."""
    models = ["exact", "biased", "flaky"]
    kwargs = {"seed": 5, "sampling": SAMPLING}
    local = run(CONJUGATE, CONJUGATE.defaults, models, 30, tmp_path / "local", jobs=1, **kwargs)
    remote = run(
        CONJUGATE,
        CONJUGATE.defaults,
        models,
        30,
        tmp_path / "dask",
        backend="dask",
        scheduler=scheduler,
        **kwargs,
    )
    pd.testing.assert_frame_equal(_comparable(local), _comparable(remote))


DIES = """
import dataclasses
import os
from pathlib import Path

from scenarios.conjugate import SCENARIO as BASE
from sbc.backends.exact import ExactNormal

MARK = Path({mark!r})


@dataclasses.dataclass(frozen=True)
class DiesOnce:
    \"\"\"The exact posterior, but the first fit of simulation 3 kills its worker process.\"\"\"

    def compile(self, design, example):
        return self

    def fit(self, data, seed, sampling):
        if abs(data["y"].mean() - {mean!r}) < 1e-12 and not MARK.exists():
            MARK.write_text("died")
            os._exit(1)
        return ExactNormal(0.0, 1.0, 1.0).fit(data, seed, sampling)


SCENARIO = dataclasses.replace(
    BASE, models=(dataclasses.replace(BASE.models[0], backend=DiesOnce()),)
)
"""


def test_a_worker_dying_mid_run_loses_and_duplicates_nothing(tmp_path, scheduler):
    """A worker killed mid-fit: Dask retries its simulation; every simulation is stored once."""
    from sbc import seeding

    y = CONJUGATE.simulate(CONJUGATE.design(CONJUGATE.defaults), seeding.data_rng(5, 3)).data["y"]
    mark = tmp_path / "died"
    path = tmp_path / "dies.py"
    path.write_text(textwrap.dedent(DIES.format(mark=str(mark), mean=float(y.mean()))))
    scenario = registry.get(str(path))
    kwargs = {"seed": 5, "sampling": SAMPLING}
    remote = run(
        scenario,
        scenario.defaults,
        ["exact"],
        12,
        tmp_path / "dask",
        backend="dask",
        scheduler=scheduler,
        **kwargs,
    )
    assert mark.exists()  # a worker did die
    assert RunStore(tmp_path / "dask").finished() == set(range(12))
    local = run(CONJUGATE, CONJUGATE.defaults, ["exact"], 12, tmp_path / "local", **kwargs)
    pd.testing.assert_frame_equal(_comparable(local), _comparable(remote))


ALWAYS_DIES = """
import dataclasses
import os
import signal

from scenarios.conjugate import SCENARIO as BASE
from sbc.backends.exact import ExactNormal


@dataclasses.dataclass(frozen=True)
class AlwaysDies:
    \"\"\"The exact posterior, but every fit of one simulation kills its worker process.\"\"\"

    def compile(self, design, example):
        return self

    def fit(self, data, seed, sampling):
        if abs(data["y"].mean() - {mean!r}) < 1e-12:
            os.kill(os.getpid(), signal.SIGKILL)
        return ExactNormal(0.0, 1.0, 1.0).fit(data, seed, sampling)


SCENARIO = dataclasses.replace(
    BASE, models=(dataclasses.replace(BASE.models[0], backend=AlwaysDies()),)
)
"""


def test_a_simulation_that_always_kills_its_dask_worker_is_an_error_not_the_end(
    tmp_path, scheduler
):
    """Dask gives up on a task after its allowed failures; its fits record it, the run goes on."""
    from sbc import seeding

    y = CONJUGATE.simulate(CONJUGATE.design(CONJUGATE.defaults), seeding.data_rng(5, 2)).data["y"]
    path = tmp_path / "always.py"
    path.write_text(textwrap.dedent(ALWAYS_DIES.format(mean=float(y.mean()))))
    scenario = registry.get(str(path))
    kwargs = {"seed": 5, "sampling": SAMPLING, "backend": "dask", "scheduler": scheduler}
    results = run(scenario, scenario.defaults, ["exact"], 6, tmp_path / "dask", **kwargs)
    assert RunStore(tmp_path / "dask").finished() == set(range(6))
    errors = results.set_index("simulation")["error"]
    assert errors.loc[2].startswith("WorkerDied: ") and "KilledWorker" in errors.loc[2]
    assert errors.drop(index=2).isna().all()
