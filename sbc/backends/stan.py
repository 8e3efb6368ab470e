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

Building and loading live in :mod:`sbc.backends.stan_build`, one chain in
:mod:`sbc.backends.stan_chains`; this module turns chains into a fit's :class:`Posterior`.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sbc.backends import Posterior, Sampling
from sbc.backends.stan_build import (
    StanCompileError,
    cxx_compiler,
    httpstan_models,
    is_built,
    load,
    stanc,
)
from sbc.backends.stan_chains import Chain, defaults, run_chain, stan_inputs
from sbc.errors import SettingError, one_line

__all__ = ["StanCompileError", "StanFitter", "StanModel", "StanRun"]

StanData = Callable[[Any, Mapping[str, np.ndarray]], Mapping[str, Any]]
"""``stan_data(design, data) -> {name: value}``: the Stan program's data block."""


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

    def check(self, design: Any, example: Mapping[str, np.ndarray]) -> None:
        """Check, in a fraction of a second, that this model can be compiled and fed here.

        The optional ``Backend.check`` the pre-run check calls (:mod:`sbc.engine.preflight`).

        Raises
        ------
        StanCompileError
            One line: the extra not installed, no C++ compiler (when the program's module
            is not built yet), stanc's message with its line and column, or ``stan_data``
            failing on ``example``.
        """
        try:
            self._check(design, example)
        except SettingError:
            raise
        except Exception as exc:
            raise StanCompileError(f"checking the Stan model raised {one_line(exc)}") from None

    def _check(self, design: Any, example: Mapping[str, np.ndarray]) -> None:
        try:
            stan_inputs(self.stan_data(design, example))
        except Exception as exc:
            raise StanCompileError(f"stan_data(design, data) raised {one_line(exc)}") from None
        code = self.code
        models = httpstan_models()
        if is_built(models, code):
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
            **defaults(self.module),
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
                run_chain(self.module, inputs, seed, chain, arguments)
                for chain in range(1, sampling.chains + 1)
            ]
        else:  # Stan's autodiff tape lives in the main thread only (see sbc.backends.stan_helper)
            from sbc.backends.stan_helper import run_chains

            chains = run_chains(self.code, inputs, seed, sampling.chains, arguments)
        return self._collect(chains)

    def _collect(self, chains: list[Chain]) -> StanRun:
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


def _program_path(program: str | Path) -> Path | None:
    if isinstance(program, Path):
        return program
    if program.endswith(".stan") and "\n" not in program:
        return Path(program)
    return None
