"""Stan programs as models, compiled once with httpstan and sampled in process.

A :class:`StanModel` is a Stan program (text, or a ``.stan`` file) and a function from the
scenario's design and simulated data to the program's ``data`` block. Compiling it builds
the program's ``stan::services`` extension module with httpstan (PyStan 3's compiler and
Stan headers: the ``stan`` extra, ``pip install "sbc-testbed[stan]"``, plus a C++
compiler). httpstan caches the built module on disk under a name hashed from the program
text and httpstan's (so Stan's) version, so a second run, and every worker after the first,
only loads it; a file lock keeps two workers from building the same program at once.

Every fit calls Stan's own NUTS sampler (``hmc_nuts_diag_e_adapt``) in this process, chain
after chain, and reads its draws from the Unix socket httpstan's writers send them to (the
C++ code releases the GIL while a reader thread collects them). No HTTP server and no
process pool are involved: per fit, only Stan's own work plus parsing its JSON lines. Stan
keeps its autodiff tape per thread and only the main thread has one: every local ``sbc``
worker fits in its main thread; a fit asked from another thread (Dask's workers) runs in a
helper process (:mod:`sbc.backends.stan_helper`).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sbc.backends import Posterior, Sampling
from sbc.errors import SettingError

StanData = Callable[[Any, Mapping[str, np.ndarray]], Mapping[str, Any]]
"""``stan_data(design, data) -> {name: value}``: the Stan program's data block."""

EXTRA = 'the stan extra is not installed (pip install "sbc-testbed[stan]": PyStan 3 and httpstan)'
"""What a Stan model says when httpstan cannot be imported."""


class StanCompileError(SettingError):
    """A Stan program cannot be compiled: stanc's or the C++ compiler's message, one line."""


@dataclass(frozen=True)
class StanModel:
    """A model written as a Stan program.

    Parameters
    ----------
    program : str or pathlib.Path
        The Stan program's text, or the path of a ``.stan`` file (a :class:`~pathlib.Path`,
        or text ending in ``.stan`` without a newline). Give a file's path absolutely
        (``Path(__file__).with_name("model.stan")``): workers resolve it again.
    stan_data : callable
        ``stan_data(design, data) -> {name: value}``: every variable of the ``data`` block,
        from the design and one simulated data set (arrays or numbers; integer arrays stay
        integers, Stan's indices start at 1).
    include : tuple of str, optional
        Stan variables to return (parameters, transformed parameters, generated
        quantities); empty: all of them. The fit returns draws by Stan variable name, each
        of shape ``(chain, draw, *shape)``; the model's estimand function reads them.
    """

    program: str | Path
    stan_data: StanData
    include: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The program's text (read from its file when ``program`` names one)."""
        path = _program_path(self.program)
        if path is None:
            return str(self.program)
        try:
            return path.read_text()
        except OSError as exc:
            raise StanCompileError(f"cannot read the Stan program {path}: {exc}") from None

    def check(self) -> None:
        """Check, in a fraction of a second, that this program can be compiled here.

        Raises
        ------
        StanCompileError
            One line: the extra not installed, no C++ compiler (when the program's module
            is not cached yet), or stanc's message with its line and column.
        """
        code = self.code
        models = _httpstan()
        if _cached(models, code):
            return
        stanc(code)
        compiler = cxx_compiler()
        if shutil.which(compiler) is None:
            raise StanCompileError(
                f"no C++ compiler {compiler!r} on PATH: Stan programs are compiled to C++ "
                "(install g++, e.g. apt-get install g++, or set CXX)"
            )

    def compile(self, design: Any, example: Mapping[str, np.ndarray]) -> StanFitter:
        """Build (or load from httpstan's cache) the program's module for this process."""
        code = self.code
        module = load(code)
        data = stan_inputs(self.stan_data(design, example))
        names = list(module.get_param_names(data))
        dims = [tuple(int(n) for n in d) for d in module.get_dims(data)]
        keep = set(self.include) or set(names)
        unknown = sorted(keep - set(names))
        if unknown:
            raise KeyError(f"the Stan program has no variable {', '.join(unknown)}")
        variables = tuple(zip(names, dims, strict=True))
        return StanFitter(module, code, self.stan_data, design, variables, frozenset(keep))


@dataclass(frozen=True)
class StanRun:
    """The raw output of one fit: draws by Stan variable, sampler statistics, Stan's time.

    Parameters
    ----------
    posterior : Posterior
        Draws of the kept variables, divergences, leapfrog steps and tree depth.
    stan_seconds : float
        Stan's own time for warm-up and sampling, summed over chains, as Stan reports it.
    """

    posterior: Posterior
    stan_seconds: float


@dataclass(frozen=True)
class StanFitter:
    """A loaded Stan module, refitted on each simulated data set.

    Parameters
    ----------
    module : module
        The program's ``stan_services`` extension module.
    code : str
        The program's text (a helper process loads the module by it).
    stan_data : callable
        Makes the data block from the design and a data set.
    design : object
        The scenario's design.
    variables : tuple of (str, tuple of int)
        Every Stan variable written per draw, in Stan's order, with its shape.
    keep : set of str
        The variables returned.
    """

    module: ModuleType
    code: str
    stan_data: StanData
    design: Any
    variables: tuple[tuple[str, tuple[int, ...]], ...]
    keep: frozenset[str] | set[str]

    def fit(self, data: Mapping[str, np.ndarray], seed: int, sampling: Sampling) -> Posterior:
        """Sample the program given ``data`` with Stan's NUTS (see :meth:`run`)."""
        return self.run(data, seed, sampling).posterior

    def run(self, data: Mapping[str, np.ndarray], seed: int, sampling: Sampling) -> StanRun:
        """Run ``sampling.chains`` chains one after another and collect their draws.

        Chain ``k`` (1-based) uses Stan's stream ``(seed, k)``; ``seed`` is taken modulo
        2**31 (httpstan passes it as a C ``int``). Warm-up is ``sampling.tune`` iterations,
        ``adapt_delta`` is ``sampling.target_accept``; Stan adapts a diagonal mass matrix.

        A fit asked from a thread other than the main one (Dask's workers) runs in a helper
        process (:mod:`sbc.backends.stan_helper`): Stan's autodiff tape lives in the main
        thread only.

        Raises
        ------
        ValueError
            For ``adaptation="low_rank"``, which Stan's sampler here does not offer.
        RuntimeError
            If Stan fails (initialisation, a data block error): Stan's first error message.
        """
        sampling = sampling.resolve()
        if sampling.adaptation != "diag":
            raise ValueError(
                f"adaptation {sampling.adaptation!r}: Stan models adapt a diagonal mass matrix"
            )
        inputs = stan_inputs(self.stan_data(self.design, data))
        arguments = {
            **_defaults(self.module),
            "num_warmup": int(sampling.tune),
            "num_samples": int(sampling.draws),
            # adapt_delta is the run's target_accept (default 0.95), the same for Stan and
            # its PyMC twins so that they are compared on equal terms. Heights partial_stan
            # at 0.95: 200 fits, none divergent, 99.5% healthy, 7.3 leapfrog steps a draw;
            # at 0.8: 100 fits, none divergent, 98% healthy, 6.4 steps; its centred slip
            # (mutant_unused_hyperparameter_stan) diverged in 5% of fits at 0.8, none at 0.95.
            "delta": float(sampling.target_accept),
            "refresh": 0,
            "save_warmup": False,
        }
        seed = int(seed) % 2**31
        if threading.current_thread() is threading.main_thread():
            chains = [
                _run_chain(self.module, inputs, seed, chain, arguments)
                for chain in range(1, sampling.chains + 1)
            ]
        else:  # Stan's autodiff tape lives in the main thread only (see sbc.backends.stan_helper)
            from sbc.backends.stan_helper import run_chains

            chains = run_chains(self.code, inputs, seed, sampling.chains, arguments)
        return self._collect(chains)

    def _collect(self, chains: list[_Chain]) -> StanRun:
        columns = chains[0].columns
        values = np.stack([c.values for c in chains])  # (chain, draw, column)
        draws = {}
        start = sum(1 for c in columns if c.endswith("__"))  # sampler columns come first
        for name, shape in self.variables:
            size = int(np.prod(shape, dtype=int))
            if name in self.keep:
                block = values[:, :, start : start + size]
                # Stan writes arrays column-major
                draws[name] = block.reshape(*block.shape[:2], *shape[::-1]).transpose(
                    0, 1, *range(len(shape) + 1, 1, -1)
                )
            start += size
        stat = {name: values[:, :, columns.index(name)] for name in _STATS}
        return StanRun(
            Posterior(
                draws=draws,
                divergences=int(stat["divergent__"].sum()),
                grad_evals=float(stat["n_leapfrog__"].mean()),
                tree_depth=float(stat["treedepth__"].mean()),
            ),
            stan_seconds=sum(c.seconds for c in chains),
        )


_STATS = ("divergent__", "n_leapfrog__", "treedepth__")


@dataclass(frozen=True)
class _Chain:
    columns: list[str]
    values: np.ndarray
    seconds: float


def _run_chain(
    module: ModuleType, inputs: dict, seed: int, chain: int, arguments: Mapping[str, Any]
) -> _Chain:
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


def _parse(streams: list[bytes], code: int) -> _Chain:
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
    return _Chain(columns, np.asarray(rows, dtype=float), seconds)


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


def stanc(code: str) -> str:
    """Translate ``code`` with httpstan's stanc; raise its message on one line if it fails.

    Returns
    -------
    str
        The warnings of stanc (pedantic mode), empty if none.

    Raises
    ------
    StanCompileError
        ``Stan program: line L, column C: <stanc's message>``.
    """
    import httpstan.compile

    try:
        with _quiet():
            return httpstan.compile.compile(code, "sbc_check")[1]
    except ValueError as exc:
        raise StanCompileError(f"Stan program: {stanc_message(str(exc))}") from None
    except subprocess.TimeoutExpired:
        raise StanCompileError("Stan program: stanc took too long (over 1 s)") from None


def stanc_message(text: str) -> str:
    """The multi-line error of stanc as one line: where (line, column) and what."""
    lines = [line.strip() for line in text.splitlines()]
    where = ""
    for line in lines:
        if match := re.search(r"line (\d+), column (\d+)", line):
            where = f"line {match.group(1)}, column {match.group(2)}: "
            break
    # the message follows the excerpt of the program (between rules of dashes)
    rules = [i for i, line in enumerate(lines) if set(line) == {"-"}]
    body = lines[rules[-1] + 1 :] if rules else lines[1:] if where else lines
    what = " ".join(line for line in body if line) or (lines[0] if lines else "")
    return f"{where}{what}"


def cxx_compiler() -> str:
    """The C++ compiler setuptools will call: ``$CXX``, else Python's configured one."""
    command = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++"
    return command.split()[0]


def _httpstan() -> ModuleType:
    try:
        import httpstan.models
    except ImportError:
        raise StanCompileError(EXTRA) from None
    return httpstan.models


def _program_path(program: str | Path) -> Path | None:
    if isinstance(program, Path):
        return program
    if program.endswith(".stan") and "\n" not in program:
        return Path(program)
    return None


def _cached(models: ModuleType, code: str) -> bool:
    try:
        return any(p.suffix == ".so" for p in _directory(models, code).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False


def _directory(models: ModuleType, code: str) -> Path:
    import httpstan.cache

    return httpstan.cache.model_directory(models.calculate_model_name(code))


_MODULES: dict[str, ModuleType] = {}
"""Loaded extension modules of this process, by httpstan model name."""


def load(code: str) -> ModuleType:
    """The program's extension module: loaded once per process, built once per machine.

    Raises
    ------
    StanCompileError
        If stanc or the C++ compiler fails (its first error line).
    """
    models = _httpstan()
    name = models.calculate_model_name(code)
    if name in _MODULES:
        return _MODULES[name]
    directory = _directory(models, code)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with _locked(directory.parent / f"{directory.name}.lock"), _quiet():
        try:
            module = models.import_services_extension_module(name)
        except KeyError:
            _build(models, code)
            module = models.import_services_extension_module(name)
    _MODULES[name] = module
    return module


def _build(models: ModuleType, code: str) -> None:
    """Build as httpstan's server does, logs included, so PyStan can use the cache too."""
    import asyncio

    import httpstan.cache

    name = models.calculate_model_name(code)
    httpstan.cache.delete_model_directory(name)
    httpstan.cache.dump_stanc_warnings(stanc(code), name)
    try:
        with _quiet():
            output = asyncio.run(models.build_services_extension_module(code))
    except Exception as exc:
        httpstan.cache.delete_model_directory(name)
        lines = [line for line in str(exc).splitlines() if "error" in line.lower()]
        first = lines[0] if lines else str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise StanCompileError(f"compiling the Stan program's C++ failed: {first}") from None
    httpstan.cache.dump_services_extension_module_compiler_output(output, name)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence httpstan's and setuptools' deprecation notices (not the user's concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        yield


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_DEFAULTS: dict[str, Any] = {}


def _defaults(module: ModuleType) -> dict[str, Any]:
    """Stan's default arguments of ``hmc_nuts_diag_e_adapt`` (CmdStan's), looked up once."""
    if not _DEFAULTS:
        import httpstan.services.arguments as arguments

        with _quiet():
            for name in arguments.function_arguments("hmc_nuts_diag_e_adapt", module):
                if name not in ("data", "init", "random_seed", "chain"):
                    _DEFAULTS[name] = arguments.lookup_default(arguments.Method.SAMPLE, name)
    return dict(_DEFAULTS)
