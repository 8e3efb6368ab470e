"""The shipped scenarios: one module per generative process, each exposing ``SCENARIO``.

This package holds the scenario modules and their catalogue only; finding a scenario by
name, file or ``module:OBJECT`` is :mod:`sbc.registry`'s work.
"""

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
