"""Scenario registry: one module per generative process, each exposing ``SCENARIO``."""

from __future__ import annotations

from importlib import import_module

from sbc.scenario import Scenario, SettingError

MODULES: dict[str, str] = {
    "heights": "scenarios.heights",
    "conjugate": "scenarios.conjugate",
}
"""Scenario name -> module that defines it."""


def names() -> list[str]:
    """Names of every registered scenario."""
    return list(MODULES)


def get(name: str) -> Scenario:
    """Return the scenario called ``name``.

    Raises
    ------
    SettingError
        If no scenario has that name.

    """
    if name not in MODULES:
        raise SettingError(f"unknown scenario {name!r} (known: {', '.join(MODULES)})")
    return import_module(MODULES[name]).SCENARIO
