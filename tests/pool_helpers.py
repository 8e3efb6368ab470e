"""Functions the tests run in pool workers (importable, since spawned workers import them)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

_calls = 0  # a module-level cache, as compiled models are in sbc's workers
_initialized: Any = None


def square(x: int) -> int:
    """The item squared."""
    return x * x


def table(x: int) -> Any:
    """A one-row pyarrow table holding the item (results in sbc are tables)."""
    import pyarrow as pa

    return pa.table({"simulation": [x], "value": [x * 0.5]})


def kill_if_negative(x: int) -> int:
    """SIGKILL this worker for a negative item, on every attempt; else the item."""
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def kill_once(item: tuple[int, str]) -> int:
    """SIGKILL this worker on the first attempt of the item (a marker file remembers)."""
    x, folder = item
    marker = Path(folder) / f"{x}.tried"
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def crash(kind: str) -> str:
    """Die as ``kind`` says: ``segv`` (null pointer read), ``abort``, ``exit3``; else return."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files
    if kind == "segv":
        ctypes.string_at(0)
    elif kind == "abort":
        os.abort()
    elif kind == "exit3":
        sys.stderr.flush()
        os._exit(3)
    return kind


def hog(megabytes: int) -> int:
    """Allocate and touch ``megabytes`` MB, then hold them for 10 s (0: return at once)."""
    if megabytes == 0:
        return 0
    block = b"x" * (megabytes * 2**20)  # filled, so every page is resident
    time.sleep(10)
    return len(block)


def fail(message: str) -> None:
    """Raise ValueError(message)."""
    raise ValueError(message)


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # args do not rebuild it: unpickling fails
        super().__init__(f"needs {a} and {b}")


def fail_unpicklable(x: int) -> None:
    """Raise an exception that cannot be sent back as itself."""
    raise _Unpicklable(x, x)


def sleep_then(item: tuple[float, Any]) -> Any:
    """Sleep ``item[0]`` seconds, then return ``item[1]``."""
    time.sleep(item[0])
    return item[1]


def wait_for_file(item: tuple[str, Any]) -> Any:
    """Wait until the file ``item[0]`` exists, then return ``item[1]``."""
    while not os.path.exists(item[0]):
        time.sleep(0.02)
    return item[1]


def counted(_: object) -> tuple[int, int]:
    """The worker's pid and how many items it has run (a module-level counter)."""
    global _calls
    _calls += 1
    return os.getpid(), _calls


def initialize(value: Any) -> None:
    """Pool initializer: remember ``value`` in the worker."""
    global _initialized
    _initialized = value


def initialized(_: object) -> Any:
    """What the initializer remembered in this worker."""
    return _initialized


def exiting_initializer() -> None:
    """Pool initializer that ends its worker (as a failed bootstrap would)."""
    os._exit(1)


def broken_initializer() -> None:
    """Pool initializer that fails."""
    raise RuntimeError("initializer broke")


def interrupted_run() -> None:
    """Parent side of the Ctrl-C test: print the busy pids, then iterate until interrupted."""
    from sbc.engine.pool import get_pool

    pool = get_pool(3)
    results = pool.map_unordered(sleep_then, [(0, "first"), (60, "a"), (60, "b")])
    next(results)
    print("busy", *pool.busy_pids(), flush=True)
    print("all", *pool.pids(), flush=True)
    for _ in results:
        pass


def orphaned_run() -> None:
    """Parent side of the parent-death test: print a busy worker's pid, then block."""
    from sbc.engine.pool import get_pool

    pool = get_pool(2)
    results = pool.map_unordered(sleep_then, [(0, "first"), (60, "a")])
    next(results)
    print("busy", *pool.busy_pids(), flush=True)
    for _ in results:
        pass
