"""One Stan chain, run in this thread: Stan's NUTS called in process, its draws read back.

httpstan's ``stan_services`` module runs ``hmc_nuts_diag_e_adapt`` and its writers send each
draw, as a JSON line, to a Unix socket; the C++ code releases the GIL, so a reader thread
collects the messages while the chain runs. Stan keeps its autodiff tape per thread and only
a process's main thread has one: call :func:`run_chain` from the main thread (see
:mod:`sbc.backends.stan_helper` for the others).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from sbc.backends.stan_build import quiet


@dataclass(frozen=True)
class Chain:
    """One chain's draws: column names (sampler's first), values, Stan's elapsed seconds."""

    columns: list[str]
    values: np.ndarray
    seconds: float


def run_chain(
    module: ModuleType, inputs: dict, seed: int, chain: int, arguments: Mapping[str, Any]
) -> Chain:
    """One chain of ``hmc_nuts_diag_e_adapt``; its messages are read off a Unix socket."""
    with _listening() as (path, messages):
        code = module.hmc_nuts_diag_e_adapt_wrapper(path, inputs, {}, seed, chain, **arguments)
    return _parse(messages(), code)


@contextlib.contextmanager
def _listening() -> Iterator[tuple[str, Callable[[], list[bytes]]]]:
    """A Unix socket and a reader thread collecting each connection's bytes until closed."""
    folder = tempfile.mkdtemp(prefix="sbc-stan-")
    path = os.path.join(folder, "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    wake_read, wake_write = os.pipe()
    received: dict[socket.socket, list[bytes]] = {}

    def read() -> None:
        open_ = []
        while True:
            ready, _, _ = select.select([server, wake_read, *open_], [], [])
            for conn in ready:
                if conn is server:
                    accepted, _ = server.accept()
                    open_.append(accepted)
                    received[accepted] = []
                elif conn is wake_read:
                    os.read(wake_read, 1)
                    if not open_:
                        return
                    os.write(wake_write, b"x")  # again once the open connections close
                elif chunk := conn.recv(1 << 16):
                    received[conn].append(chunk)
                else:
                    open_.remove(conn)
                    conn.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield path, lambda: [b"".join(parts) for parts in received.values()]
    finally:
        os.write(wake_write, b"x")
        reader.join()
        server.close()
        os.close(wake_read)
        os.close(wake_write)
        shutil.rmtree(folder, ignore_errors=True)


def _parse(streams: list[bytes], code: int) -> Chain:
    """Draws, column names and Stan's elapsed time from a chain's JSON messages."""
    import orjson

    rows, columns, seconds, errors = [], None, 0.0, []
    for line in b"\n".join(streams).splitlines():
        if not line:
            continue
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:  # a NaN or infinite draw
            import json

            message = json.loads(line)
        topic, values = message["topic"], message["values"]
        if topic == "sample" and isinstance(values, dict):
            columns = columns or list(values)
            rows.append(list(values.values()))
        elif topic == "logger":
            text = values[0]
            if text.startswith("error:") and text[6:].strip():
                errors.append(text[6:].strip())
            elif match := _TOTAL.search(text):
                seconds += float(match.group(1))
    if code != 0 or columns is None:
        raise RuntimeError(f"Stan failed: {' '.join(errors) or f'return code {code}'}")
    return Chain(columns, np.asarray(rows, dtype=float), seconds)


_TOTAL = re.compile(r"([0-9.eE+-]+) seconds \(Total\)")


def stan_inputs(values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The data block as httpstan reads it: integer and float arrays (booleans as 0/1).

    Raises
    ------
    TypeError
        For a value that is neither numbers nor booleans.
    """
    out = {}
    for name, value in values.items():
        array = np.asarray(value)
        if array.dtype.kind == "b":
            array = array.astype(int)
        if array.dtype.kind not in "iuf":
            raise TypeError(f"Stan data {name!r} must be numeric, got dtype {array.dtype}")
        out[name] = array
    return out


_DEFAULTS: dict[str, Any] = {}


def defaults(module: ModuleType) -> dict[str, Any]:
    """Stan's default arguments of ``hmc_nuts_diag_e_adapt`` (CmdStan's), looked up once."""
    if not _DEFAULTS:
        import httpstan.services.arguments as arguments

        with quiet():
            for name in arguments.function_arguments("hmc_nuts_diag_e_adapt", module):
                if name not in ("data", "init", "random_seed", "chain"):
                    _DEFAULTS[name] = arguments.lookup_default(arguments.Method.SAMPLE, name)
    return dict(_DEFAULTS)
