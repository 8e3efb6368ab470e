"""Scenario registry: one module per generative process, each exposing ``SCENARIO``.

:func:`get` resolves a *scenario reference*, which is one of

* a registered name (``heights``; see :data:`MODULES`);
* a Python file defining ``SCENARIO`` (``path/to/my_scenario.py``), or another object in
  it (``path/to/my_scenario.py:OBJECT``);
* an importable module and object (``package.module:OBJECT``).

Workers receive the reference as text and resolve it again, so every process sees the
same scenario. A scenario that is not registered is returned with its ``name`` set to its
canonical reference (the absolute file path, or ``module:OBJECT``): the name keys the
per-process cache of compiled models (:func:`sbc.fitting.compiled`), so two user files
that declare the same ``name`` can never share compiled models, and ``get(s.name)``
returns ``s`` in any process that can read the same path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
from importlib import import_module
from pathlib import Path

from sbc.scenario import Scenario, SettingError

MODULES: dict[str, str] = {
    "heights": "scenarios.heights",
    "conjugate": "scenarios.conjugate",
    "school": "scenarios.school",
    "schools": "scenarios.schools",
    "districts": "scenarios.districts",
    "alberta": "scenarios.alberta",
    "diploma": "scenarios.diploma",
}
"""Scenario name -> module that defines it."""

_LOADED: dict[str, Scenario] = {}
"""User scenarios already resolved in this process, by canonical reference."""


class ScenarioError(SettingError):
    """A scenario reference cannot be resolved, or the scenario it names is broken."""


def names() -> list[str]:
    """Names of every registered scenario."""
    return list(MODULES)


def is_registered(ref: str) -> bool:
    """Whether ``ref`` is the name of a registered scenario."""
    return ref in MODULES


def get(ref: str) -> Scenario:
    """Return the scenario that ``ref`` names (a registered name, file or ``module:object``).

    Raises
    ------
    ScenarioError
        If no scenario has that name, the file or module cannot be loaded, or the object
        it names is not a :class:`~sbc.scenario.Scenario`.
    """
    if ref in MODULES:
        return import_module(MODULES[ref]).SCENARIO
    if not _looks_like_reference(ref):
        raise ScenarioError(
            f"unknown scenario {ref!r} (known: {', '.join(MODULES)}; "
            "or give a file path.py or module:OBJECT)"
        )
    canonical = _canonical(ref)
    if canonical in _LOADED:
        return _LOADED[canonical]
    scenario = _load(ref, canonical)
    if not isinstance(scenario, Scenario):
        raise ScenarioError(
            f"scenario {canonical}: {type(scenario).__name__} is not a sbc.scenario.Scenario"
        )
    scenario = dataclasses.replace(scenario, name=canonical)
    _LOADED[canonical] = scenario
    return scenario


def display_name(scenario: Scenario) -> str:
    """Short name for folders and titles: the registered name, or the declared one."""
    return _DECLARED.get(scenario.name, scenario.name)


_DECLARED: dict[str, str] = {}
"""Canonical reference -> the ``name`` the user's scenario declared."""


def _looks_like_reference(ref: str) -> bool:
    return ref.endswith(".py") or ":" in ref or "/" in ref


def _split(ref: str) -> tuple[str, str]:
    """``(file or module, object name)`` of a reference."""
    source, sep, obj = ref.rpartition(":")
    if not sep or not obj.isidentifier():
        return ref, "SCENARIO"
    return source, obj


def _is_file(source: str) -> bool:
    return source.endswith(".py") or "/" in source


def _canonical(ref: str) -> str:
    """The reference with its file made absolute: the same in every process and folder."""
    source, obj = _split(ref)
    if not _is_file(source):
        return f"{source}:{obj}"
    try:
        path = Path(source).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ScenarioError(f"scenario {source!r}: not a usable file path ({exc})") from None
    return str(path) if obj == "SCENARIO" else f"{path}:{obj}"


def _load(ref: str, canonical: str) -> object:
    """Import the file or module of ``ref`` and return the object it names."""
    source, obj = _split(ref)
    if _is_file(source):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise ScenarioError(f"scenario {source}: no such file")
        module = _import_file(path, source)
    else:
        try:
            module = import_module(source)
        except ImportError as exc:
            raise ScenarioError(f"scenario {ref}: cannot import {source}: {exc}") from None
        except Exception as exc:
            raise ScenarioError(f"scenario {ref}: importing it raised {_text(exc)}") from None
    if not hasattr(module, obj):
        raise ScenarioError(f"scenario {source}: defines no {obj}")
    found = getattr(module, obj)
    if isinstance(found, Scenario):
        _DECLARED[canonical] = found.name
    return found


def _import_file(path: Path, shown: str) -> object:
    """Import a scenario file under a module name stable for its absolute path."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"sbc_user_scenario_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"scenario {shown}: cannot load it as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ScenarioError(f"scenario {shown}: loading it raised {_text(exc)}") from None
    return module


def _text(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
