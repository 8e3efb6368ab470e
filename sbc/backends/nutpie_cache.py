"""nutpie compilation whose C entry points are cached on disk across processes.

:func:`nutpie.compile_pymc_model` (numba backend) turns a PyMC model into two PyTensor
functions, the log density with its gradient and the "expand" function that computes the
stored variables, and wraps each in a ``numba.cfunc`` that the Rust sampler calls. PyTensor
caches its own functions on disk (``config.numba__cache``), so in a new process they load in
milliseconds. nutpie's wrappers cannot be cached: they close over the PyTensor dispatcher
and over the shared data arrays ("dynamic globals"), so numba retypes and recompiles the
whole chain in every worker of every run. For heights ``partial`` that is about 4 of the
6 s a worker spends compiling (see ``benchmarks/bench_throughput.py``).

:func:`compile_pymc_model` runs nutpie's own compilation with wrappers generated as source
code instead. A wrapper reads the shared arrays' addresses and shapes from nutpie's
``user_data`` record at fixed word offsets written into its source, so it holds no
dynamic global; its cache key is the PyTensor function's own cache key together with that
source. Everything else (the PyTensor functions, ``user_data``, ``with_data``, the initial
points, the sampler) is nutpie's, unchanged: the model compiled here returns the same log
density, gradient and draws as nutpie's (``tests/test_nutpie_cache.py``).

Models are compiled with numba's fastmath off, so that code just compiled and code loaded
from the cache compute the same bits (see :func:`compile_pymc_model`): a run's results do
not depend on which process compiled a model first.

Where PyTensor cannot key a function (``numba__cache`` off, or an Op without a cache key),
or a private nutpie name this relies on is missing, compilation is nutpie's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from hashlib import sha256
from typing import Any

import numpy as np

_LOCK = threading.Lock()

FORMAT = "sbc-wrapper-2"
"""Part of every cache key: changed whenever what a cached wrapper holds changes."""

LOGP_SOURCE = """\
def logp_wrapper(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        words = carray(user_data_, ({n_words},), uint64)
        x = carray(x_, ({n_dim},))
        out = carray(out_, ({n_dim},))
{arrays}
        logp_value, grad = inner(x{arguments})
        carray(logp_, (1,))[0] = logp_value
        finite = True
        for i in range({n_dim}):
            out[i] = grad[i]
            if not isfinite(grad[i]):
                finite = False
        if not finite:
            return 3
        if not isfinite(logp_value):
            return 4
    except Exception:
        return 1
    return 0
"""

EXPAND_SOURCE = """\
def expand_wrapper(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        words = carray(user_data_, ({n_words},), uint64)
        x = carray(x_, ({n_dim},))
        out = carray(out_, ({n_expanded},))
{arrays}
        (values,) = inner(x{arguments})
        for i in range({n_expanded}):
            out[i] = values[i]
    except Exception:
        return -2
    return 0
"""
"""The wrappers' source: nutpie's ``logp_numba`` and ``expand_numba`` with the same return
codes, the arrays read from ``user_data`` words, and element loops in place of
``out[...] = ...`` (whose numba implementation alone took 1.6 s to compile)."""


def compile_pymc_model(model: Any, var_names: Iterable[str] | None = None) -> Any:
    """``nutpie.compile_pymc_model(model, var_names=...)`` with disk-cached C wrappers.

    Parameters
    ----------
    model : pymc.Model
        The model, its data in shared variables.
    var_names : iterable of str, optional
        Variables to store in the draws (nutpie's ``var_names``).

    Returns
    -------
    nutpie.CompiledPyMCModel
        The compiled model, used exactly as nutpie's.
    """
    import nutpie
    import nutpie.compile_pymc as nutpie_pymc
    from pytensor import config

    # numba's fastmath is off. With it on, code numba has just compiled and the same code
    # loaded from its cache differ in the last bits (heights `complete`: log density 2e-10
    # apart, draws 3e-14, R-hat 2e-4 through a tie among ranks), so the first run of a
    # model, or the worker that compiled it, gave other results than later runs and other
    # workers. Off, they are bit-identical. Cost, ms per fit (2 x (300 + 1000) draws,
    # fastmath on / off): heights `partial` 36-39 / 38-39, `complete` 18-20 / 23, schools
    # `partial` 70 / 71, `partial_bambi` 562 / 577, districts `partial` 110 / 99, school
    # `exact` 22 / 21 (one compiled model refitted on 20-100 simulated data sets, each
    # setting in its own process, 2 cores, 2026-11-26).
    with config.change_flags(numba__fastmath=False):
        if not config.numba__cache or not _nutpie_has(nutpie_pymc):
            return nutpie.compile_pymc_model(model, var_names=var_names)
        with _LOCK, _wrappers(nutpie_pymc):
            return nutpie.compile_pymc_model(model, var_names=var_names, cache=True)


_NAMES = ("_make_c_logp_func", "_make_c_expand_func", "address_as_void_pointer")


def _nutpie_has(module: Any) -> bool:
    """Whether nutpie's compile module still has the private names this module replaces."""
    return all(hasattr(module, name) for name in _NAMES)


@contextmanager
def _wrappers(module: Any) -> Any:
    """Swap nutpie's wrapper factories for the cacheable ones for one compilation."""
    logp, expand = module._make_c_logp_func, module._make_c_expand_func

    def make_logp(n_dim, logp_fn, user_data, shared_keys, shared_data):
        made = _wrapper(LOGP_SOURCE, {"n_dim": n_dim}, logp_fn, user_data, shared_keys, shared_data)
        return made or logp(n_dim, logp_fn, user_data, shared_keys, shared_data)

    def make_expand(n_dim, n_expanded, expand_fn, user_data, shared_keys, shared_data):
        made = _wrapper(
            EXPAND_SOURCE,
            {"n_dim": n_dim, "n_expanded": n_expanded},
            expand_fn,
            user_data,
            shared_keys,
            shared_data,
        )
        return made or expand(n_dim, n_expanded, expand_fn, user_data, shared_keys, shared_data)

    module._make_c_logp_func, module._make_c_expand_func = make_logp, make_expand
    try:
        yield
    finally:
        module._make_c_logp_func, module._make_c_expand_func = logp, expand


def _wrapper(
    template: str,
    sizes: dict[str, int],
    inner: Any,
    user_data: np.ndarray,
    shared_keys: Sequence[str],
    shared_data: dict[str, np.ndarray],
) -> tuple[Any, Any] | None:
    """The cacheable wrapper of ``inner`` and its C signature, or None (nutpie's is used).

    None where PyTensor gave ``inner`` no cache key, or nutpie's ``user_data`` record is
    not made of 8-byte words at the fields this module reads.
    """
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    py_func = getattr(inner, "py_func", None)
    inner_key = None if py_func is None else CACHED_SRC_FUNCTIONS.get(py_func)
    if inner_key is None:
        return None
    try:
        lines, env = array_lines(user_data.dtype, shared_keys, shared_data)
    except (KeyError, ValueError):  # a user_data record not laid out as this module reads it
        return None
    name = template.split("(", 1)[0].removeprefix("def ")
    source = template.format(
        **sizes,
        n_words=user_data.dtype.itemsize // 8,
        arrays="\n".join(lines),
        arguments="".join(f", a{i}" for i in range(len(shared_keys))),
    )
    key = sha256(
        "\n".join((FORMAT, source, inner_key, numba.__version__, _nutpie_version())).encode()
    ).hexdigest()
    function = compile_numba_function_src(
        source,
        name,
        global_env={
            "__name__": __name__,  # numba rebuilds a cached function's environment from it
            **env,
            "carray": numba.carray,
            "uint64": np.uint64,
            "isfinite": np.isfinite,
            "as_pointer": address_as_void_pointer,
            "inner": inner,
        },
        cache_key=f"sbc_{name}_{key}",
    )
    signature = _signature(numba, logp=name == "logp_wrapper")
    return function, signature


def array_lines(
    record: np.dtype, shared_keys: Sequence[str], shared_data: dict[str, np.ndarray]
) -> tuple[list[str], dict[str, np.dtype]]:
    """Source lines reading each shared array from nutpie's ``user_data`` record.

    nutpie's record holds, for every shared variable's key, the data address
    (``shared.data.KEY``), its size (``shared.size.KEY``) and its shape
    (``shared.shape.KEY``), all 8-byte unsigned words. The lines read the address and shape
    at their word offsets, so they hold no pointer and no array.

    Parameters
    ----------
    record : numpy.dtype
        The dtype of nutpie's ``user_data``.
    shared_keys : sequence of str
        The keys of the function's shared inputs, in its argument order.
    shared_data : dict
        Key -> current value (gives the dtype and the number of dimensions).

    Returns
    -------
    lines : list of str
        ``aI = carray(as_pointer(words[W]), (int(words[S]), ...), dtype_I)`` per input.
    env : dict
        ``dtype_I`` -> the input's NumPy dtype, for the source's globals.
    """
    lines, env = [], {}
    for i, key in enumerate(shared_keys):
        data = _word(record, "data", key)
        shape = _word(record, "shape", key)
        ndim = shared_data[key].ndim
        dims = "".join(f"int(words[{shape + d}]), " for d in range(ndim))
        lines.append(f"        a{i} = carray(as_pointer(words[{data}]), ({dims}), dtype_{i})")
        env[f"dtype_{i}"] = np.dtype(shared_data[key].dtype)
    return lines, env


def _word(record: np.dtype, part: str, key: str) -> int:
    """The 8-byte word offset of ``shared.<part>.<key>`` in nutpie's user-data record."""
    shared, offset = record.fields["shared"]
    block, block_offset = shared.fields[part]
    field_offset = block.fields[key][1]
    byte = offset + block_offset + field_offset
    if byte % 8 or record.itemsize % 8:
        raise ValueError(f"user_data field {part}.{key} is not word aligned")
    return byte // 8


def _signature(numba: Any, *, logp: bool) -> Any:
    """The C signatures nutpie gives the log-density and expand callbacks."""
    types = numba.types
    double = types.CPointer(types.double)
    if logp:
        return types.int64(types.uint64, double, double, double, types.voidptr)
    return types.int64(types.uint64, types.uint64, double, double, types.voidptr)


def _nutpie_version() -> str:
    """The installed nutpie version, part of every cache key."""
    from importlib.metadata import version

    return version("nutpie")
