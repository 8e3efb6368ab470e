"""Building Stan programs: stanc's check, httpstan's on-disk module cache, one load a process.

httpstan (PyStan 3's back end, the ``stan`` extra) ships stanc and the Stan headers; with a
C++ compiler it builds a program's ``stan::services`` extension module into its cache
(``~/.cache/httpstan/<version>/models/<id>``, the id a hash of the program text, httpstan's
version and the Python executable). :func:`load` builds a program once per machine, under a
file lock so that two workers never build it at once, and imports it once per process.
:func:`stanc` translates a program in a fraction of a second and gives its error in one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sysconfig
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from sbc.errors import SettingError


class StanCompileError(SettingError):
    """A Stan program cannot be compiled: stanc's or the C++ compiler's message, one line."""


EXTRA = 'the stan extra is not installed (pip install "sbc-testbed[stan]": PyStan 3 and httpstan)'
"""What a Stan model says when httpstan cannot be imported."""


def stanc(code: str) -> str:
    """Translate ``code`` with httpstan's stanc; raise its message on one line if it fails.

    Runs httpstan's ``stanc`` binary as httpstan does (pedantic warnings), with a longer
    time limit than httpstan's 1 s, which a loaded machine can exceed.

    Returns
    -------
    str
        The warnings of stanc (pedantic mode), empty if none.

    Raises
    ------
    StanCompileError
        ``Stan program: line L, column C: <stanc's message>``.
    """
    import importlib.resources
    import tempfile

    httpstan_models()  # the extra, or its one-line error
    binary = importlib.resources.files("httpstan") / "stanc"
    with tempfile.TemporaryDirectory(prefix="sbc-stanc-") as folder:
        path = Path(folder) / "sbc_check.stan"
        path.write_text(code)
        try:
            done = subprocess.run(
                [str(binary), "--name", "sbc_check", "--warn-pedantic", str(path)],
                capture_output=True,
                text=True,
                timeout=STANC_SECONDS,
                cwd=folder,
            )
        except subprocess.TimeoutExpired:
            raise StanCompileError(
                f"Stan program: stanc took more than {STANC_SECONDS} s"
            ) from None
    if done.returncode != 0:
        raise StanCompileError(f"Stan program: {stanc_message(done.stderr)}")
    return done.stderr.strip()


STANC_SECONDS = 60
"""Time limit of one stanc translation (it takes well under a second)."""


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


def httpstan_models() -> ModuleType:
    """``httpstan.models``, or the one-line error saying which extra to install."""
    try:
        import httpstan.models
    except ImportError:
        raise StanCompileError(EXTRA) from None
    return httpstan.models


def is_built(models: ModuleType, code: str) -> bool:
    """Whether httpstan's cache holds the program's built module."""
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
    models = httpstan_models()
    name = models.calculate_model_name(code)
    if name in _MODULES:
        return _MODULES[name]
    directory = _directory(models, code)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with _locked(directory.parent / f"{directory.name}.lock"), quiet():
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
        with quiet():
            output = asyncio.run(models.build_services_extension_module(code))
    except Exception as exc:
        httpstan.cache.delete_model_directory(name)
        lines = [line for line in str(exc).splitlines() if "error" in line.lower()]
        first = lines[0] if lines else str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise StanCompileError(f"compiling the Stan program's C++ failed: {first}") from None
    httpstan.cache.dump_services_extension_module_compiler_output(output, name)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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
