"""A small process pool that survives the death of its workers.

Each worker holds exactly one item at a time, so when a worker dies (a signal, a non-zero
exit, or a kill for exceeding the memory cap) the pool knows which item it held: it
replaces the worker and runs that item again, up to ``attempts`` times in all, then hands
the item and what was seen to the caller's ``on_death`` and goes on with the rest.

    pool = get_pool(2, max_memory=2 * 2**30)
    for rows in pool.map_unordered(work, jobs, on_death=error_rows):
        store(rows)

Workers are started with the ``spawn`` method, as daemon processes that ignore SIGINT (the
parent handles Ctrl-C) and exit when the parent process is gone. :func:`get_pool` keeps one
pool between calls, so what workers cache at module level (compiled models) is reused.

The memory cap compares a busy worker's resident set size (``/proc/PID/statm``, shared
pages included; processes the worker starts are not counted) with the cap every
:data:`MEMORY_POLL_SECONDS`. Where ``/proc`` is absent (macOS, Windows) the cap is not
enforced: :class:`Pool` warns (``RuntimeWarning``) and runs without it. ``MB`` in messages
means 2**20 bytes.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any

__all__ = [
    "Death",
    "Pool",
    "RemoteTraceback",
    "WorkerDied",
    "WorkerError",
    "get_pool",
    "release",
]

MEMORY_POLL_SECONDS = 0.2
"""How often the resident memory of each busy worker is read when a cap is set."""

START_FAILURES = 3
"""Workers dying in a row before they are ready (bootstrap, initializer) that end the run."""

STOP_SECONDS = 5.0
"""How long :meth:`Pool.shutdown` with ``wait=True`` lets an idle worker exit before killing it."""

_MB = 2**20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Death:
    """How a worker died while it held an item.

    Attributes
    ----------
    signal : str or None
        Name of the signal that ended it (``"SIGKILL"``, ``"SIGSEGV"``, ...).
    exitcode : int or None
        Its exit code, when it exited rather than being ended by a signal.
    memory : int or None
        Resident bytes seen when the pool killed it for exceeding ``cap``.
    cap : int or None
        The memory cap in bytes, when that was the reason.
    attempts : int
        Attempts made for the item, all ended by a death (this one is the last).
    """

    signal: str | None = None
    exitcode: int | None = None
    memory: int | None = None
    cap: int | None = None
    attempts: int = 1

    @property
    def reason(self) -> str:
        """What was seen, e.g. ``SIGKILL``, ``exit code 3``, ``memory 812 MB above ...``."""
        if self.memory is not None and self.cap is not None:
            return f"memory {self.memory // _MB} MB above the cap of {self.cap // _MB} MB"
        if self.signal is not None:
            return self.signal
        return f"exit code {self.exitcode}"

    @property
    def text(self) -> str:
        """One line for an error row, e.g. ``WorkerDied: SIGKILL``."""
        return f"WorkerDied: {self.reason}"


class WorkerDied(RuntimeError):
    """An item's every attempt ended with its worker's death (raised without ``on_death``)."""

    def __init__(self, item: Any, death: Death) -> None:
        super().__init__(death.reason)
        self.item = item
        self.death = death


class WorkerError(Exception):
    """A failure that is no item's: an exception not sendable as itself, workers not starting."""


class RemoteTraceback(Exception):
    """The worker's traceback, attached as ``__cause__`` of an exception raised there."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


@dataclass(eq=False)
class _Task:
    item: Any
    deaths: int = 0


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    task: _Task | None = None  # the item it holds; None when idle
    ready: bool = False  # it has started and run the initializer
    memory: Death | None = None  # set when killed for the memory cap


class Pool:
    """Worker processes that run one item each at a time and are replaced when they die.

    Parameters
    ----------
    workers : int
        Number of worker processes (started when first needed, then kept).
    max_memory : int, optional
        Resident memory cap per busy worker in bytes; a worker above it is killed
        (SIGKILL) and the death is recorded with the memory seen. Linux only (``/proc``).
    initializer : callable, optional
        Module-level function each worker calls with ``initargs`` once it starts. If it
        raises, :meth:`map_unordered` re-raises the exception.
    initargs : tuple
        Arguments for ``initializer``.

    Notes
    -----
    A pool serves one :meth:`map_unordered` iteration at a time, from one thread.
    """

    def __init__(
        self,
        workers: int,
        *,
        max_memory: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if max_memory is not None and _resident(os.getpid()) is None:
            warnings.warn(
                "no /proc/PID/statm on this system: the memory cap is not enforced",
                RuntimeWarning,
                stacklevel=2,
            )
            max_memory = None
        self.workers = workers
        self.max_memory = max_memory
        self.initializer = initializer
        self.initargs = initargs
        self._context = multiprocessing.get_context("spawn")
        self._pool: list[_Worker] = []
        self._running = False
        self._closed = False
        self._start_failures = 0

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=False)

    def pids(self) -> list[int]:
        """Process ids of the live workers, busy or idle."""
        return [w.process.pid for w in self._pool if w.process.pid is not None]

    def busy_pids(self) -> list[int]:
        """Process ids of the workers holding an item."""
        return [w.process.pid for w in self._pool if w.task is not None and w.process.pid]

    def map_unordered[T, R, D](
        self,
        function: Callable[[T], R],
        items: Iterable[T],
        *,
        on_death: Callable[[T, Death], D] | None = None,
        attempts: int = 3,
    ) -> Iterator[R | D]:
        """Run ``function(item)`` for every item in the workers; results as they finish.

        Parameters
        ----------
        function : callable
            Module-level function (sent to the workers by reference).
        items : iterable
            Picklable items, read as workers become free.
        on_death : callable, optional
            ``on_death(item, death)`` gives what to yield for an item whose every attempt
            ended with its worker's death. Without it, :class:`WorkerDied` is raised.
        attempts : int
            Attempts per item in all (the first run and the retries after deaths).

        Yields
        ------
        object
            Each item's result (or ``on_death``'s value) once, in completion order.

        Raises
        ------
        Exception
            An exception raised by ``function`` in a worker, as itself (or
            :class:`WorkerError` when it cannot be pickled), its ``__cause__`` a
            :class:`RemoteTraceback` with the worker's traceback.

        Notes
        -----
        Closing the iterator early (``close()``, an exception in the consumer, Ctrl-C)
        kills the busy workers at once; idle ones stay for the next call.
        """
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        return self._run(function, iter(items), on_death, attempts)

    def _run(
        self,
        function: Callable[[Any], Any],
        source: Iterator[Any],
        on_death: Callable[[Any, Death], Any] | None,
        attempts: int,
    ) -> Iterator[Any]:
        if self._closed:
            raise RuntimeError("the pool is shut down")
        if self._running:
            raise RuntimeError("the pool is running another map_unordered call: close it first")
        self._running = True
        retries: deque[_Task] = deque()
        next_poll = 0.0
        try:
            while True:
                self._dispatch(function, source, retries)
                busy = [w for w in self._pool if w.task is not None]
                if not busy:
                    return
                timeout = None
                if self.max_memory is not None:
                    now = time.monotonic()
                    if now >= next_poll:
                        self._check_memory(busy, self.max_memory)
                        next_poll = now + MEMORY_POLL_SECONDS
                    timeout = max(0.0, next_poll - now)
                owners = {w.process.sentinel: w for w in self._pool}
                owners.update({w.conn: w for w in busy})
                for worker in dict.fromkeys(owners[r] for r in wait(list(owners), timeout)):
                    if self._closed:
                        raise RuntimeError("the pool was shut down during map_unordered")
                    outcome = self._collect(worker)
                    if outcome is None:
                        continue
                    kind, task, payload = outcome
                    if kind == "ok":
                        yield payload
                    elif kind == "error":
                        raise _rebuild(*payload)
                    elif kind == "unstarted":
                        retries.appendleft(task)  # its worker died before it could start it
                    elif task.deaths < attempts:
                        retries.appendleft(task)
                    else:
                        death = replace(payload, attempts=task.deaths)
                        if on_death is None:
                            raise WorkerDied(task.item, death)
                        yield on_death(task.item, death)
        finally:
            self._running = False
            for worker in [w for w in self._pool if w.task is not None]:
                self._discard(worker, kill=True)  # their results are not wanted

    def _dispatch(
        self, function: Callable[[Any], Any], source: Iterator[Any], retries: deque[_Task]
    ) -> None:
        """Give items to idle workers, starting workers up to the pool's size."""
        while True:
            idle = [w for w in self._pool if w.task is None]
            if not idle and len(self._pool) >= self.workers:
                return
            if retries:
                task = retries.popleft()
            else:
                item = next(source, _END)
                if item is _END:
                    return
                task = _Task(item)
            worker = self._usable(idle) or self._start()
            worker.task = task  # busy before sending: an interruption now kills it
            try:
                worker.conn.send((function, task.item))
            except (BrokenPipeError, ConnectionResetError, EOFError):
                retries.appendleft(task)  # it died idle: not the item's fault
                self._discard(worker, kill=True)

    def _usable(self, idle: list[_Worker]) -> _Worker | None:
        """An idle worker still alive (idle ones found dead are dropped), or None."""
        for worker in idle:
            if worker.process.is_alive():
                return worker
            self._discard(worker, kill=False)
        return None

    def _start(self) -> _Worker:
        """Start a worker; SIGINT is blocked meanwhile so the new process inherits it blocked."""
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child_conn, self.initializer, self.initargs),
            name=f"pool-worker-{next(_numbers)}",
            daemon=True,
        )
        mask = _sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
            worker = _Worker(process, parent_conn)
            self._pool.append(worker)
        finally:
            child_conn.close()  # the worker holds the only other end
            _sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C meanwhile is raised here
        return worker

    def _collect(self, worker: _Worker) -> tuple[str, _Task, Any] | None:
        """What a ready worker has to say: ``(kind, task, payload)``, or None.

        ``kind`` is ``"ok"`` (payload: the result), ``"error"`` (payload: exception and
        traceback), ``"died"`` (payload: :class:`Death`, counted on the task) or
        ``"unstarted"`` (the worker died before it was ready: not counted on the task). A
        message that arrived whole is taken even if the worker died after sending it.
        """
        task = worker.task
        message = None
        if task is not None and worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                pass  # dead, perhaps in the middle of sending
        if message is not None and message[0] == "ready":
            worker.ready = True
            self._start_failures = 0
            return None
        if message is not None:
            worker.task = None
            if message[0] == "init-error":
                self._discard(worker, kill=True)
                raise _rebuild(*message[1])
            return message[0], task, message[1]
        if worker.process.is_alive():
            return None  # exiting but not yet reaped: seen again on the next wait
        self._discard(worker, kill=False)
        if task is None:
            return None  # died idle: nothing to retry
        death = worker.memory or _death(worker.process.exitcode)
        if not worker.ready:
            self._start_failures += 1
            if self._start_failures >= START_FAILURES:
                raise WorkerError(
                    f"{START_FAILURES} workers in a row died while starting, the last with "
                    f"{death.reason} (its output, if any, is above)"
                )
            return "unstarted", task, None
        task.deaths += 1
        return "died", task, death

    def _check_memory(self, busy: list[_Worker], cap: int) -> None:
        """Kill the busy workers whose resident memory is above ``cap``."""
        for worker in busy:
            resident = _resident(worker.process.pid)
            if resident is not None and resident > cap and worker.memory is None:
                worker.memory = Death(memory=resident, cap=cap)
                worker.process.kill()

    def _discard(self, worker: _Worker, *, kill: bool) -> None:
        """Forget a worker; with ``kill``, SIGKILL it without waiting (reaped later)."""
        if kill and worker.process.exitcode is None:
            worker.process.kill()
        worker.conn.close()
        worker.task = None
        self._pool.remove(worker)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers; the pool cannot be used afterwards.

        Parameters
        ----------
        wait : bool
            True: ask idle workers to exit and wait for them (killed after
            :data:`STOP_SECONDS`); busy ones are killed. False: kill all at once, no waiting.
        """
        self._closed = True
        workers, self._pool = self._pool, []
        for worker in workers:
            if wait and worker.task is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            else:
                worker.process.kill()
            worker.conn.close()
        if wait:
            deadline = time.monotonic() + STOP_SECONDS
            for worker in workers:
                worker.process.join(max(0.0, deadline - time.monotonic()))
                if worker.process.exitcode is None:
                    worker.process.kill()
                    worker.process.join()


_END = object()
_numbers = itertools.count(1)
_reusable: Pool | None = None
_lock = threading.Lock()


def get_pool(
    workers: int,
    max_memory: int | None = None,
    *,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Pool:
    """The module's reusable pool, kept between calls so workers keep their caches.

    A call with another ``workers``, ``max_memory`` or initializer shuts the previous pool
    down (its workers are killed) and returns a new one.

    Parameters
    ----------
    workers : int
        Number of worker processes.
    max_memory : int, optional
        Resident memory cap per busy worker in bytes (see :class:`Pool`).
    initializer : callable, optional
        Module-level function each worker calls with ``initargs`` when it starts.
    initargs : tuple
        Arguments for ``initializer``.

    Returns
    -------
    Pool
        The reusable pool.
    """
    global _reusable
    with _lock:
        pool = _reusable
        config = (workers, max_memory, initializer, initargs)
        if pool is not None and (
            pool._closed
            or (pool.workers, pool.max_memory, pool.initializer, pool.initargs) != config
        ):
            pool.shutdown(wait=False)
            pool = None
        if pool is None:
            pool = _reusable = Pool(
                workers, max_memory=max_memory, initializer=initializer, initargs=initargs
            )
        return pool


def release(wait: bool = False) -> None:
    """Shut the reusable pool down (see :meth:`Pool.shutdown`); the next call starts afresh.

    Parameters
    ----------
    wait : bool
        Let idle workers exit cleanly and wait for them, rather than kill them at once.
    """
    global _reusable
    with _lock:
        pool, _reusable = _reusable, None
    if pool is not None:
        pool.shutdown(wait=wait)


atexit.register(release)


def _resident(pid: int | None) -> int | None:
    """Resident bytes of process ``pid`` from ``/proc``, or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _death(exitcode: int | None) -> Death:
    if exitcode is not None and exitcode < 0:
        try:
            return Death(signal=signal.Signals(-exitcode).name)
        except ValueError:
            return Death(signal=f"signal {-exitcode}")
    return Death(exitcode=exitcode)


def _sigmask(how: int, signals: set[signal.Signals]) -> set[signal.Signals]:
    """``signal.pthread_sigmask`` where it exists (POSIX), else nothing."""
    if hasattr(signal, "pthread_sigmask"):
        return signal.pthread_sigmask(how, signals)
    return set()


def _rebuild(exc: BaseException, text: str) -> BaseException:
    exc.__cause__ = RemoteTraceback(text)
    return exc


def _portable(exc: BaseException) -> tuple[BaseException, str]:
    """The exception (or a :class:`WorkerError` when it does not pickle) and its traceback."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = WorkerError(f"{type(exc).__qualname__}: {exc}")
    return exc, text


def _serve(
    conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker's life: take ``(function, item)``, send back the result, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a Ctrl-C pending since the start is dropped
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception as exc:
            conn.send(("init-error", _portable(exc)))
            return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        except Exception as exc:  # the function's module failed to import here
            conn.send(("error", _portable(exc)))
            continue
        if task is None:
            return
        function, item = task
        try:
            message = ForkingPickler.dumps(("ok", function(item)))
        except Exception as exc:
            message = ForkingPickler.dumps(("error", _portable(exc)))
        try:
            conn.send_bytes(message)
        except OSError:
            return


def _exit_with(parent: BaseProcess) -> None:
    """End this worker as soon as its parent process is gone (even while it is busy)."""
    parent.join()
    os._exit(1)
