"""The scenario registry: find a scenario by its reference, its models by name, its settings.

The catalogue of shipped scenarios (name -> module) is :data:`scenarios.MODULES`; this module
is the one place in ``sbc`` that reads it. :func:`get` resolves a *scenario reference*,
which is one of

* a registered name (``heights``; see :data:`scenarios.MODULES`);
* a Python file defining ``SCENARIO`` (``path/to/my_scenario.py``), or another object in
  it (``path/to/my_scenario.py:OBJECT``);
* an importable module and object (``package.module:OBJECT``).

Workers receive the reference as text and resolve it again, so every process sees the
same scenario. :func:`resolve` also accepts a :class:`~sbc.scenario.Scenario` object or a
module defining ``SCENARIO`` and finds the reference a worker can load it by, and
:func:`resolve_settings` merges and validates a scenario's settings: scenario resolution
lives here, not in the command line. :func:`model` finds a model by name, generated mutants
(``operator:variable[@model]``, :mod:`sbc.mutate`) included, and :func:`models` checks a list
of model names the same way for the command line, sweep specs and ``sbc.testing``.
``MODEL+METHOD`` names a declared model fitted by an approximate method
(:func:`approximate_model`); :func:`with_inference` makes those names from a list of methods.

A scenario that is not registered is returned with its ``name`` set to its canonical
reference (the absolute file path, or ``module:OBJECT``): the name keys the
per-process cache of compiled models (:func:`sbc.engine.task.compiled`), so two user files
that declare the same ``name`` can never share compiled models, and ``get(s.name)``
returns ``s`` in any process that can read the same path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Mapping, Sequence
from importlib import import_module
from pathlib import Path

from sbc.scenario import Model, Scenario, SettingError
from scenarios import MODULES

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
    if ref in _LOADED:
        return _LOADED[ref]
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


def reference(scenario: Scenario) -> str:
    """The reference :func:`get` resolves the scenario by (its ``name`` inside ``sbc``).

    A registered name (``heights``), an absolute file path (``/x/my.py`` or
    ``/x/my.py:OBJECT``), ``package.module:OBJECT``, or, for an object :func:`resolve`
    registered in this process only, ``<object>:NAME@ID``.
    """
    return scenario.name


def is_portable(scenario: Scenario | str) -> bool:
    """Whether another process can load the scenario (or reference) by its reference."""
    ref = scenario if isinstance(scenario, str) else scenario.name
    return not ref.startswith(_IN_PROCESS)


_DECLARED: dict[str, str] = {}
"""Canonical reference -> the ``name`` the user's scenario declared."""

_IN_PROCESS = "<object>:"
"""Prefix of the references of scenario objects that only this process can resolve."""


def resolve(scenario: str | Scenario | types.ModuleType) -> Scenario:
    """The scenario as ``sbc`` uses it, from a reference, a ``Scenario`` or a module.

    Parameters
    ----------
    scenario : str, Scenario or module
        A reference (see :func:`get`); a scenario object (a registered one, one :func:`get`
        returned, or a user's own object); or a module defining ``SCENARIO``.

    Returns
    -------
    Scenario
        A scenario whose ``name`` is its reference. A user's object is looked up among the
        top-level names of loaded modules: found in an importable module it becomes
        ``module:OBJECT``, in another file ``/path/file.py:OBJECT``, so worker processes
        load it like a scenario file; found nowhere (built inside a function), it is
        registered in this process only (:func:`is_portable` is false: run it with one job).

    Raises
    ------
    ScenarioError
        If ``scenario`` is none of these.
    """
    if isinstance(scenario, types.ModuleType):
        if not isinstance(getattr(scenario, "SCENARIO", None), Scenario):
            raise ScenarioError(f"module {scenario.__name__} defines no SCENARIO")
        scenario = scenario.SCENARIO
    if isinstance(scenario, str):
        return get(scenario)
    if not isinstance(scenario, Scenario):
        raise ScenarioError(
            f"{type(scenario).__name__} is not a scenario (give a sbc.scenario.Scenario, "
            "a name, a file path.py or module:OBJECT)"
        )
    if scenario.name in MODULES and get(scenario.name) is scenario:
        return scenario
    if _LOADED.get(scenario.name) is scenario:
        return scenario
    if id(scenario) in _OBJECTS:
        return _OBJECTS[id(scenario)][1]
    ref = _find(scenario) or f"{_IN_PROCESS}{scenario.name}@{id(scenario):x}"
    if ref not in _LOADED:
        _LOADED[ref] = dataclasses.replace(scenario, name=ref)
        _DECLARED[ref] = scenario.name
    _OBJECTS[id(scenario)] = (scenario, _LOADED[ref])  # holding it keeps its id unique
    return _LOADED[ref]


_OBJECTS: dict[int, tuple[Scenario, Scenario]] = {}
"""id of a user's scenario object -> (that object, the scenario :func:`resolve` made)."""


def _find(scenario: Scenario) -> str | None:
    """``module:OBJECT`` or ``/path/file.py:OBJECT`` of a module-level binding of ``scenario``."""
    for module in list(sys.modules.values()):
        names = getattr(module, "__dict__", None)
        if not isinstance(names, dict) or module.__name__ == "__main__":
            continue
        attr = next((k for k, v in list(names.items()) if v is scenario and k.isidentifier()), None)
        if attr is None:
            continue
        spec = getattr(module, "__spec__", None)
        file = getattr(module, "__file__", None)
        user_file = module.__name__.startswith(_USER_MODULE)
        if not user_file and spec is not None and spec.name == module.__name__:
            if _importable(module.__name__):
                return f"{module.__name__}:{attr}"
        if isinstance(file, str) and file.endswith(".py"):
            path = Path(file).resolve()
            return str(path) if attr == "SCENARIO" else f"{path}:{attr}"
    return None


def _importable(name: str) -> bool:
    """Whether a fresh process with this ``sys.path`` could import module ``name``."""
    top = name.partition(".")[0]
    try:
        return importlib.machinery.PathFinder.find_spec(top, sys.path) is not None
    except (ImportError, ValueError):
        return False


def resolve_settings(scenario: Scenario, overrides: Mapping[str, object]) -> dict[str, int | float]:
    """The scenario's settings: defaults merged with ``overrides``, validated.

    ``overrides`` holds values or command-line text (``"12"``). Values too large for NumPy
    are reported like any impossible value.

    Raises
    ------
    sbc.scenario.SettingError
        One line naming the scenario and the problem.
    """
    try:
        return scenario.resolve_settings(overrides)
    except (TypeError, OverflowError) as exc:
        name = display_name(scenario)
        raise SettingError(f"scenario {name}: a setting value is out of range ({exc})") from None


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
    name = f"{_USER_MODULE}{digest}"
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


_USER_MODULE = "sbc_user_scenario_"
"""Prefix of the module names scenario files are imported under."""


def _text(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def model(scenario: Scenario, name: str) -> Model:
    """The model called ``name``: a declared one, or a generated mutant built on demand.

    A name of the form ``operator:variable[@model]`` is a generated mutant of one of the
    declared models (see :mod:`sbc.mutate`); the name alone defines it, so any process
    builds the same model.

    Raises
    ------
    sbc.scenario.SettingError
        One line naming the scenario and the unknown or impossible model.
    """
    for declared in scenario.models:
        if declared.name == name:
            return declared
    if "+" in name:  # MODEL+METHOD: an approximate fit (sbc.backends.approximate)
        return approximate_model(scenario, name)
    if ":" in name:  # operator:variable[@model] (sbc.mutate.is_generated)
        from sbc.mutate import MutationError, generated_model  # builds on the backends

        try:
            return generated_model(scenario, name)
        except MutationError as exc:
            raise SettingError(f"scenario {display_name(scenario)}: {exc}") from None
    return scenario.model(name)  # raises, naming the known models


def approximate_model(scenario: Scenario, name: str) -> Model:
    """The model ``MODEL+METHOD``: model ``MODEL`` fitted by an approximate ``METHOD``.

    ``METHOD`` is one of :func:`sbc.backends.approximate.method_names` (``advi``,
    ``laplace``, ``pathfinder+psis`` ...); the model keeps the estimands, sampler settings
    and mutant mark of ``MODEL``.

    Raises
    ------
    sbc.scenario.SettingError
        One line naming the scenario, the model and the method that does not apply to it.
    """
    from sbc.backends.approximate import Approximate, NotApplicable

    base_name, method = split_method(name)
    base = model(scenario, base_name)
    try:
        backend = Approximate(base.backend, method)
    except NotApplicable as exc:
        raise SettingError(
            f"scenario {display_name(scenario)}, model {base_name}, method {method}: {exc}"
        ) from None
    return dataclasses.replace(
        base,
        name=name,
        description=f"{base.description} (fitted by {method})",
        backend=backend,
    )


def split_method(name: str) -> tuple[str, str | None]:
    """``MODEL+METHOD`` as ``(MODEL, METHOD)``; a plain model name as ``(name, None)``."""
    model_name, plus, method = name.partition("+")
    return (model_name, method) if plus else (name, None)


def with_inference(names: Sequence[str], inference: Sequence[str] | None) -> list[str]:
    """Each model name fitted by each inference method: ``partial`` and ``partial+advi`` ...

    ``nuts`` keeps a model's own name (its own backend); any other method ``m`` makes
    ``MODEL+m``. Without ``inference`` the names are unchanged.

    Raises
    ------
    sbc.scenario.SettingError
        For an empty list, an unknown method or a method named twice.
    """
    if inference is None:
        return list(names)
    from sbc.backends.approximate import NUTS, NotApplicable, check_method

    methods = [m.strip() if isinstance(m, str) else m for m in inference]
    if not methods or not all(isinstance(m, str) and m for m in methods):
        raise SettingError(f"inference must be non-empty method names, got {list(inference)!r}")
    if len(set(methods)) < len(methods):
        raise SettingError(f"inference names the method {_twice(methods)} twice")
    for method in methods:
        try:
            check_method(method)
        except NotApplicable as exc:
            raise SettingError(str(exc)) from None
    return [n if m == NUTS else f"{n}+{m}" for n in names for m in methods]


def _twice(names: Sequence[str]) -> str:
    return next(n for n in names if names.count(n) > 1)


def models(
    scenario: Scenario, names: Sequence[str] | None, inference: Sequence[str] | None = None
) -> list[str]:
    """Checked model names of a run: the scenario's default models when ``names`` is empty.

    With ``inference``, every model is fitted by every method named (:func:`with_inference`).

    Raises
    ------
    sbc.scenario.SettingError
        For an empty name, a model named twice, or a model the scenario does not have.
    """
    if names is None:
        return with_inference(scenario.default_models, inference)
    names = list(names)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise SettingError(f"models must be non-empty model names, got {names!r}")
    names = with_inference([n.strip() for n in names], inference)
    if len(set(names)) < len(names):
        raise SettingError(f"models name the model {_twice(names)} twice")
    for name in names:
        model(scenario, name)
    return names
