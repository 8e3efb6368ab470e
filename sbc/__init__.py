"""sbc: simulation-based calibration of hierarchical Bayesian models.

The pipeline, one layer per folder, dependencies pointing down::

    cli/, testing/, api.py   the ``sbc`` command, calibration assertions, the Python API
    workflows/               run, posterior SBC, mutants, sweeps, real-data fits, loading
    engine/  |  report/      tasks, workers, runner, fail-fast  |  HTML pages and figures
    results/                 schema, store, calibration, strata, detection power
    registry.py              scenarios and models by name (the catalogue: scenarios/)
    mutate/                  generated mutants (graph rewriting)
    scenario.py              the model interface: settings, design, process, models
    backends/                compile a model once, refit it on new data
    stats/, seeding.py       pure functions; random streams

``sbc.run(...)`` and ``sbc.load(folder)`` are the Python interface (:mod:`sbc.api`).
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {"run": "sbc.api", "load": "sbc.api", "Run": "sbc.api"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sbc' has no attribute {name!r}")
