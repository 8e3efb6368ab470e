"""Executors: where a run's simulations are computed, one result table per simulation.

:func:`execute` turns a list of tasks into a generator of result tables in the order they
finish: in this process, in local worker processes, or on a Dask cluster. A worker that
dies (a signal, the kernel's OOM killer, a memory cap) costs a retry, not the run; a
simulation that kills its worker every time becomes error rows of its fits
(``WorkerDied: ...``) and the run goes on.
"""

from __future__ import annotations

from collections.abc import Generator

import pyarrow as pa

from sbc.engine.pool import Death, get_pool, release
from sbc.engine.spec import Execution
from sbc.engine.task import Task
from sbc.engine.worker import Job, died, work
from sbc.errors import SettingError, one_line


class RunError(RuntimeError):
    """The run stopped for a reason outside the scenario (its Dask cluster failed)."""


def execute(tasks: list[Task], execution: Execution) -> Generator[pa.Table, None, None]:
    """Result rows of ``tasks``, one table per simulation, in the order they finish.

    Closing the generator stops the work still running.
    """
    jobs = [Job(task, execution.fit_timeout) for task in tasks]
    if not jobs:
        return _empty()
    if execution.backend == "dask":
        return _dask(jobs, execution.scheduler)
    if execution.in_process:
        return (work(job) for job in jobs)
    return _local(jobs, execution)


def _empty() -> Generator[pa.Table, None, None]:
    yield from ()


def _local(jobs: list[Job], execution: Execution) -> Generator[pa.Table, None, None]:
    """Local worker processes (:mod:`sbc.engine.pool`), kept between runs of this process.

    A simulation whose worker dies is run again in a new worker, up to
    :data:`ATTEMPTS` times in all; then its fits are recorded as errors
    (``WorkerDied: SIGKILL``, ``WorkerDied: memory 2100 MB above the cap of 2048 MB`` ...).
    """
    workers = get_pool(execution.jobs, execution.max_worker_memory)
    yield from workers.map_unordered(work, jobs, on_death=_died, attempts=ATTEMPTS)


def _died(job: Job, death: Death) -> pa.Table:
    """Error rows of a simulation that killed its worker on every attempt."""
    return died(job.task, f"{death.text} ({death.attempts} attempts)")


def _dask(jobs: list[Job], scheduler: str | None) -> Generator[pa.Table, None, None]:
    """Run ``jobs`` on the Dask cluster at ``scheduler``, one Dask task per simulation.

    Dask retries a task whose worker died (its ``allowed-failures``, default 3); a task
    that still fails (``KilledWorker``) becomes error rows of that simulation and the run
    goes on.
    """
    try:
        from distributed import Client, KilledWorker, as_completed
    except ImportError:
        raise SettingError(
            "the dask backend needs the distributed package: pip install 'sbc-testbed[dask]'"
        ) from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SettingError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from None
    with client:
        futures = {
            client.submit(work, job, key=f"sbc-{job.task.simulation}-{id(job)}", pure=False): job
            for job in jobs
        }
        try:
            for future in as_completed(futures):
                job = futures.pop(future)
                try:
                    yield future.result()
                except KilledWorker as exc:
                    yield died(job.task, f"WorkerDied: {one_line(exc)}")
                except OSError as exc:
                    raise RunError(
                        f"the Dask cluster at {scheduler} failed ({one_line(exc)}); finished "
                        "simulations are saved: run the same command again to resume"
                    ) from None
        finally:
            for future in futures:
                future.cancel()


ATTEMPTS = 3
"""Times a simulation is run before its worker's deaths are recorded as its fits' error.

A worker killed from outside (the OOM killer taking the largest process, a user's kill)
loses one attempt of whatever it held; a simulation that kills its worker itself (a
segfault in compiled model code, memory above the cap) does so every time."""


def release_workers(wait: bool = False) -> None:
    """Stop this process's local workers.

    By default at once, without waiting for their teardown: for the end of an ``sbc``
    command, when every result is collected, since waiting for the workers to unload PyMC
    and numba delayed the exit of ``sbc run heights -n 1 --jobs 2`` by 1.4 s (11.6 s ->
    10.2 s). ``wait=True`` lets them exit cleanly and waits (a benchmark that then reads
    its children's resource usage). Not for library use, where later calls reuse the
    workers and the models compiled in them.
    """
    release(wait)
