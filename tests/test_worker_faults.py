"""A lost worker costs a retry, not the run: injected faults in local workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sbc import registry, seeding
from sbc.backends import Sampling
from sbc.cli import main
from sbc.engine.execute import release_workers
from sbc.results.schema import TIMING_COLUMNS
from sbc.results.store import RunStore
from tests.helpers import run

FAULTY = '''
import dataclasses
import os
import signal
import time

import numpy as np

from scenarios.conjugate import SCENARIO as BASE
from sbc.backends.exact import ExactNormal
from sbc.scenario import Model, Setting


@dataclasses.dataclass(frozen=True)
class Faulty:
    """The exact posterior; a fit whose y[0] is above the design's bar does harm first."""

    harm: str = "kill"
    above: float = 99.0
    inner: object = None

    def compile(self, design, example):
        inner = ExactNormal().compile(design, example)
        return dataclasses.replace(self, above=design["harm_above"], inner=inner)

    def fit(self, data, seed, sampling):
        if data["y"][0] > self.above:
            if self.harm == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.harm == "segfault":
                os.abort()
            if self.harm == "hog":
                hoard = np.ones(2**27)  # 1 GiB, touched
                time.sleep(5)
                return hoard
        if self.harm == "slow":
            time.sleep(0.15)
        return self.inner.fit(data, seed, sampling)


def theta(draws, design):
    return {"theta": draws["theta"]}


SCENARIO = dataclasses.replace(
    BASE,
    name="faulty",
    settings=(*BASE.settings, Setting("harm_above", 99.0, "y[0] above which a fit does harm")),
    models=(
        Model("exact", "the analytic posterior", ExactNormal(), theta),
        Model("killer", "kills its process above the bar", Faulty("kill"), theta),
        Model("aborts", "aborts (SIGABRT) above the bar", Faulty("segfault"), theta),
        Model("hog", "takes 1 GiB above the bar", Faulty("hog"), theta),
        Model("slow", "0.15 s a fit", Faulty("slow"), theta),
    ),
)
'''

SAMPLING = Sampling(draws=100)


@pytest.fixture
def faulty(tmp_path):
    path = tmp_path / "faulty.py"
    path.write_text(textwrap.dedent(FAULTY))
    yield registry.get(str(path))
    release_workers(wait=True)  # the next test's workers load its own file


def _first(seed: int, simulations: int) -> np.ndarray:
    """y[0] of the first simulations of ``seed`` (what decides where a fit does harm)."""
    scenario = registry.get("conjugate")
    design = scenario.design(scenario.defaults)
    return np.array(
        [
            scenario.simulate(design, seeding.data_rng(seed, i)).data["y"][0]
            for i in range(simulations)
        ]
    )


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


@pytest.mark.parametrize(("model", "death"), [("killer", "SIGKILL"), ("aborts", "SIGABRT")])
def test_a_simulation_that_kills_its_worker_is_an_error_and_the_run_goes_on(
    faulty, tmp_path, model, death
):
    """Its fits record WorkerDied after three attempts; every other simulation is unchanged."""
    first = _first(3, 16)
    bar = float(np.sort(first)[-3])  # the two largest y[0] kill their worker
    killed = set(np.flatnonzero(first > bar))
    kwargs = {"seed": 3, "sampling": SAMPLING, "jobs": 2}
    results = run(faulty, {"harm_above": bar}, ["exact", model], 16, tmp_path / "a", **kwargs)
    assert RunStore(tmp_path / "a").finished() == set(range(16))
    dead = results[results["simulation"].isin(killed)]
    assert (dead["error"] == f"WorkerDied: {death} (3 attempts)").all()
    calm = run(faulty, {"harm_above": 99.0}, ["exact", model], 16, tmp_path / "b", **kwargs)
    alive = ~results["simulation"].isin(killed)
    pd.testing.assert_frame_equal(
        _comparable(results[alive]), _comparable(calm[~calm["simulation"].isin(killed)])
    )


def test_a_fit_above_the_memory_cap_is_an_error_of_its_simulation(faulty, tmp_path, capsys):
    """--max-worker-memory stops a runaway fit's worker; the run finishes with exit 0."""
    first = _first(0, 8)
    bar = float(np.sort(first)[-2])
    out = tmp_path / "out"
    argv = ["run", faulty.name, "--models", "hog", "-n", "8", "-j", "2", "--quiet"]
    argv += ["--set", f"harm_above={bar}", "--max-worker-memory", "400M", "--out", str(out)]
    assert main(argv) == 0
    results = RunStore(out).results()
    errors = results.set_index("simulation")["error"]
    assert errors.loc[int(np.argmax(first))].startswith("WorkerDied: memory")
    assert "above the cap of 400 MB" in errors.loc[int(np.argmax(first))]
    assert errors.drop(index=int(np.argmax(first))).isna().all()


def _children(pid: int) -> list[int]:
    """Process ids of the children of ``pid`` (Linux)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(p) for p in text.split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_worker_killed_from_outside_costs_a_retry_not_the_run(faulty, tmp_path):
    """SIGKILL to a busy worker of `sbc run`: exit 0, no traceback, every simulation stored."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sbc.cli", "run", faulty.name, "--models", "slow"]
    command += ["-n", "40", "-j", "2", "--quiet", "--draws", "100", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while len(RunStore(out).finished()) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [p for p in _children(process.pid) if "spawn_main" in _cmdline(p)]
    assert workers, "no worker found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    results = RunStore(out).results()
    assert results["simulation"].nunique() == 40 and results["error"].isna().all()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
