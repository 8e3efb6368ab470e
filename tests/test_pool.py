"""Tests of the fault-tolerant process pool."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sbc.engine import pool
from sbc.engine.pool import Death, Pool, RemoteTraceback, WorkerDied, WorkerError
from tests import pool_helpers as h

HERE = Path(__file__).parent


@pytest.fixture
def make_pool() -> Iterator[Callable[..., Pool]]:
    pools: list[Pool] = []

    def make(workers: int, **options: object) -> Pool:
        pools.append(Pool(workers, **options))
        return pools[-1]

    yield make
    for made in pools:
        made.shutdown(wait=False)


def dead(pid: int, within: float = 2.0) -> bool:
    """Whether process ``pid`` is gone or a zombie within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def as_death(item: object, death: Death) -> tuple[object, Death]:
    return item, death


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_result_once(make_pool: Callable[..., Pool], workers: int) -> None:
    """Every item's result arrives exactly once, whatever the number of workers."""
    results = list(make_pool(workers).map_unordered(h.square, range(20)))
    assert sorted(results) == [x * x for x in range(20)]


def test_tables_cross(make_pool: Callable[..., Pool]) -> None:
    """Tables (pyarrow) come back from the workers intact."""
    tables = sorted(
        make_pool(1).map_unordered(h.table, range(3)), key=lambda t: t["simulation"][0].as_py()
    )
    assert [t.equals(h.table(i)) for i, t in enumerate(tables)] == [True] * 3


def test_item_killing_its_worker(make_pool: Callable[..., Pool]) -> None:
    """An item that SIGKILLs its worker every time is tried 3 times, then goes to on_death."""
    results = list(
        make_pool(2).map_unordered(h.kill_if_negative, [0, 1, -2, 3, 4], on_death=as_death)
    )
    deaths = [r for r in results if isinstance(r, tuple)]
    assert sorted(r for r in results if not isinstance(r, tuple)) == [0, 1, 3, 4]
    assert len(deaths) == 1
    item, death = deaths[0]
    assert (item, death.signal, death.attempts) == (-2, "SIGKILL", 3)
    assert death.text == "WorkerDied: SIGKILL"


def test_death_on_first_attempt_only(make_pool: Callable[..., Pool], tmp_path: Path) -> None:
    """An item whose worker dies on its first attempt only succeeds on the retry."""
    items = [(x, str(tmp_path)) for x in range(4)]
    (tmp_path / "0.tried").touch()
    (tmp_path / "2.tried").touch()
    assert sorted(make_pool(2).map_unordered(h.kill_once, items)) == [0, 1, 2, 3]


def test_worker_killed_from_outside(make_pool: Callable[..., Pool], tmp_path: Path) -> None:
    """A busy worker SIGKILLed from outside: its item is run again, every result arrives."""
    go = str(tmp_path / "go")
    items = [("/", "first"), (go, "held"), ("/", "c"), ("/", "d")]
    the_pool = make_pool(2)
    results = the_pool.map_unordered(h.wait_for_file, items)
    seen = [next(results)]
    (victim,) = the_pool.busy_pids()  # the worker holding "held", which waits for the file
    os.kill(victim, signal.SIGKILL)
    Path(go).touch()
    seen += list(results)
    assert sorted(seen) == ["c", "d", "first", "held"]
    assert victim not in the_pool.pids()


def test_signals_and_exit_codes(make_pool: Callable[..., Pool]) -> None:
    """A segfault, an abort and os._exit(3) are reported with their signal or exit code."""
    kinds = ["segv", "abort", "exit3", "fine"]
    results = make_pool(2).map_unordered(h.crash, kinds, on_death=as_death, attempts=1)
    texts = {r[0]: r[1].text for r in results if isinstance(r, tuple)}
    assert texts == {
        "segv": "WorkerDied: SIGSEGV",
        "abort": "WorkerDied: SIGABRT",
        "exit3": "WorkerDied: exit code 3",
    }


def test_death_without_on_death_raises(make_pool: Callable[..., Pool]) -> None:
    """Without on_death, an item whose attempts all died raises WorkerDied."""
    with pytest.raises(WorkerDied, match="SIGABRT") as caught:
        list(make_pool(1).map_unordered(h.crash, ["abort"], attempts=1))
    assert caught.value.item == "abort"


def test_memory_cap(make_pool: Callable[..., Pool]) -> None:
    """A worker above the memory cap is killed and recorded; the other items still run."""
    the_pool = make_pool(2, max_memory=200 * 2**20)
    start = time.monotonic()
    results = list(the_pool.map_unordered(h.hog, [400, 0, 0, 0], on_death=as_death, attempts=2))
    assert time.monotonic() - start < 8  # killed, not left to sleep 10 s per attempt
    assert results.count(0) == 3
    ((item, death),) = [r for r in results if isinstance(r, tuple)]
    assert (item, death.cap, death.attempts) == (400, 200 * 2**20, 2)
    assert death.memory is not None and death.memory > 200 * 2**20  # seen as it grew
    assert re.fullmatch(r"WorkerDied: memory \d+ MB above the cap of 200 MB", death.text)


def test_exception_reraised(make_pool: Callable[..., Pool]) -> None:
    """An exception raised in a worker is re-raised in the parent with the worker's traceback."""
    the_pool = make_pool(1)
    with pytest.raises(ValueError, match="boom") as caught:
        list(the_pool.map_unordered(h.fail, ["boom"]))
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert "in fail" in caught.value.__cause__.text
    with pytest.raises(WorkerError, match="_Unpicklable: needs 1 and 1"):
        list(the_pool.map_unordered(h.fail_unpicklable, [1]))
    assert list(the_pool.map_unordered(h.square, [3])) == [9]


def test_close_early(make_pool: Callable[..., Pool]) -> None:
    """Closing the iterator kills busy workers at once, keeps idle ones, and the pool goes on."""
    the_pool = make_pool(3)
    results = the_pool.map_unordered(h.sleep_then, [(0, "first"), (30, "a"), (30, "b")])
    assert next(results) == "first"
    busy = the_pool.busy_pids()
    (idle,) = set(the_pool.pids()) - set(busy)
    with pytest.raises(RuntimeError, match="running another"):
        next(the_pool.map_unordered(h.square, [1]))
    start = time.monotonic()
    results.close()
    assert time.monotonic() - start < 0.2
    assert len(busy) == 2 and all(dead(pid) for pid in busy)
    assert the_pool.pids() == [idle]
    assert sorted(the_pool.map_unordered(h.square, range(4))) == [0, 1, 4, 9]
    assert idle in the_pool.pids()


def test_consumer_exception_kills_busy(make_pool: Callable[..., Pool]) -> None:
    """An exception in the consumer's loop stops the busy workers; the pool stays usable."""
    the_pool = make_pool(2)
    with pytest.raises(KeyError):
        for _ in the_pool.map_unordered(h.sleep_then, [(0, "first"), (30, "a")]):
            busy = the_pool.busy_pids()
            raise KeyError("stop")
    assert len(busy) == 1 and dead(busy[0])
    assert list(the_pool.map_unordered(h.square, [2])) == [4]


def test_reuse_between_calls() -> None:
    """get_pool keeps its workers between calls: same pids, module caches survive."""
    pool.release()
    try:
        first = list(pool.get_pool(2).map_unordered(h.counted, range(6)))
        pids = sorted(pool.get_pool(2).pids())
        second = list(pool.get_pool(2).map_unordered(h.counted, range(6)))
        assert sorted(pool.get_pool(2).pids()) == pids
        for pid in {p for p, _ in first + second}:
            counts = sorted(n for p, n in first + second if p == pid)
            assert counts == list(range(1, len(counts) + 1))  # counting went on, no reset
        assert pool.get_pool(2) is pool.get_pool(2)
        assert pool.get_pool(1) is not pool.get_pool(2)
    finally:
        pool.release()


def test_initializer(make_pool: Callable[..., Pool]) -> None:
    """Each worker runs the initializer; one that fails is re-raised in the parent."""
    assert list(
        make_pool(1, initializer=h.initialize, initargs=(7,)).map_unordered(h.initialized, [None])
    ) == [7]
    with pytest.raises(RuntimeError, match="initializer broke"):
        list(make_pool(1, initializer=h.broken_initializer).map_unordered(h.square, [1]))


def test_workers_failing_to_start(make_pool: Callable[..., Pool]) -> None:
    """Workers dying before they are ready end the run with WorkerError, blaming no item."""
    the_pool = make_pool(1, initializer=h.exiting_initializer)
    with pytest.raises(WorkerError, match=r"3 workers in a row died while starting.*exit code 1"):
        list(the_pool.map_unordered(h.square, [1, 2], on_death=as_death))


def test_function_not_importable_in_worker(make_pool: Callable[..., Pool]) -> None:
    """A function whose module fails to import in the worker raises that error in the parent."""
    from tests import pool_parent_only as parent_only

    the_pool = make_pool(1)
    with pytest.raises(ImportError, match="cannot be imported in a worker"):
        list(the_pool.map_unordered(parent_only.identity, [1], on_death=as_death))
    assert list(the_pool.map_unordered(h.square, [3])) == [9]


def _start(function: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Run ``pool_helpers.<function>()`` in a new session; its first line, split."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    process = subprocess.Popen(
        [sys.executable, "-c", f"from tests import pool_helpers; pool_helpers.{function}()"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().split()


def test_ctrl_c() -> None:
    """Ctrl-C (SIGINT to the process group): KeyboardInterrupt in the parent only, workers gone."""
    process, busy = _start("interrupted_run")
    assert process.stdout is not None
    workers = process.stdout.readline().split()[1:]
    assert busy[0] == "busy" and len(busy) == 3 and len(workers) == 3
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert stderr.count("Traceback") == 1, stderr
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert all(dead(int(pid)) for pid in workers)


def test_workers_end_with_parent() -> None:
    """A busy worker exits when its parent is SIGKILLed."""
    process, busy = _start("orphaned_run")
    assert busy[0] == "busy" and len(busy) == 2
    process.kill()
    process.communicate(timeout=10)
    assert dead(int(busy[1]))


def test_shutdown(make_pool: Callable[..., Pool]) -> None:
    """Shutting down with wait=True lets idle workers exit; the pool refuses further calls."""
    the_pool = make_pool(2)
    assert list(the_pool.map_unordered(h.square, [5])) == [25]
    (pid,) = the_pool.pids()
    the_pool.shutdown(wait=True)
    assert dead(pid, within=0) and the_pool.pids() == []
    with pytest.raises(RuntimeError, match="shut down"):
        next(the_pool.map_unordered(h.square, [1]))
