"""Stop a run as soon as a model cannot be fitted, from the results as they arrive.

There is no separate check before the run (it would add a compile and a fit to every
run's fixed cost): each worker's first simulation is the check. :class:`FailureWatch`
reads every simulation's rows as the runner receives them and raises :class:`ModelFailure`

* at once when a model's compile raised (``error`` starting with
  :data:`sbc.results.schema.COMPILE_FAILED`): compiling uses a fixed example data set, so every
  later fit would raise the same;
* when the first :data:`FIRST_FITS` fits of a model to arrive all raised (fewer if the run
  has fewer simulations).

A model that has fitted once is never stopped: isolated failures are recorded in the
``error`` column and the run goes on. A simulation the simulator could not produce
(``simulation failed: ...``) counts for no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from sbc.results.schema import COMPILE_FAILED, SIMULATION_FAILED
from sbc.scenario import SettingError

FIRST_FITS = 5
"""A model whose first this many fits all raise stops the run."""

MAX_ERROR_CHARS = 300
"""Longest error text quoted in the one-line message."""


class ModelFailure(SettingError):
    """A model cannot be fitted: its compile raised, or its first fits all raised."""

    def __init__(self, message: str, model: str, simulations: tuple[int, ...]) -> None:
        super().__init__(message)
        self.model = model
        self.simulations = simulations


@dataclass
class FailureWatch:
    """Watch the rows of each finished simulation for a model that cannot be fitted.

    Parameters
    ----------
    scenario : str
        The scenario's name as the user wrote it (for the message).
    first : int
        How many first fits of a model must all raise to stop the run.
    """

    scenario: str
    first: int = FIRST_FITS
    _fitted: set[str] = field(default_factory=set)
    _failed: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def check(self, rows: pa.Table) -> None:
        """Take one simulation's result rows; raise if a model in it cannot be fitted.

        Raises
        ------
        ModelFailure
            Naming the scenario, the model and the exception, on one line; ``simulations``
            holds the simulations whose fits of that model raised.
        """
        models = rows.column("model").to_pylist()
        if self._fitted.issuperset(models):
            return  # every model here has fitted once: nothing to stop (the common case)
        first: dict[str, int] = {}
        for i, model in enumerate(models):
            first.setdefault(model, i)
        fits = rows.take(list(first.values()))  # each model's first row
        for simulation, model, error in zip(
            fits["simulation"].to_pylist(),
            fits["model"].to_pylist(),
            fits["error"].to_pylist(),
            strict=True,
        ):
            if model in self._fitted:
                continue
            if error is None:
                self._fitted.add(model)
                self._failed.pop(model, None)
                continue
            if error.startswith(SIMULATION_FAILED):
                continue
            failed = self._failed.setdefault(model, [])
            failed.append((int(simulation), error))
            where = f"scenario {self.scenario}, model {model}"
            if error.startswith(COMPILE_FAILED):
                text = _short(error.removeprefix(COMPILE_FAILED))
                raise ModelFailure(
                    f"{where}: compiling it raised {text}", model, (int(simulation),)
                )
            if len(failed) >= self.first:
                n = len(failed)
                many = f"its first {n} fits all raised" if n > 1 else "its first fit raised"
                raise ModelFailure(
                    f"{where}: {many} {_short(failed[0][1])}",
                    model,
                    tuple(s for s, _ in failed),
                )


def _short(error: str) -> str:
    """The error on one line, cut to :data:`MAX_ERROR_CHARS`."""
    text = " ".join(error.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."
