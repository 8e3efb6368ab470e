"""Where calibration checks keep their results, and the failures a test session collects.

One :data:`STATE` per process. Without the pytest plugin, checks write under a temporary
folder and a failure is only raised; with it (:mod:`sbc.testing.plugin`), checks write
under the session's reports folder, grouped by test, and the failures of failed tests are
gathered for the end-of-session summary and ``index.html``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Failure:
    """A failed calibration assertion.

    Parameters
    ----------
    test : str or None
        The pytest node id of the test that made it (``None`` outside the plugin).
    scenario, model : str
        Scenario (declared name) and model checked.
    headline : str
        One line: what failed and on which quantities.
    message : str
        The assertion's whole message.
    report : Path or None
        The report written for the failing check.
    folder : Path
        The check's run folder (results, ``run.json``).
    """

    test: str | None
    scenario: str
    model: str
    headline: str
    message: str
    report: Path | None
    folder: Path
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass
class State:
    """The reports folder, the running test, and the failures collected so far."""

    root: Path | None = None
    root_factory: Callable[[], Path] | None = None
    keep: bool = False
    test: str | None = None
    checks: int = 0
    pending: list[Failure] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    repeats: dict[str, int] = field(default_factory=dict)


STATE = State()


def reset() -> None:
    """Forget everything: a new test session starts."""
    STATE.__dict__.update(State().__dict__)


def reports_root() -> Path:
    """The folder every check without an explicit ``out`` writes under (created on use)."""
    if STATE.root is None and STATE.root_factory is not None:
        STATE.root = STATE.root_factory()
    if STATE.root is None:
        STATE.root = Path(tempfile.mkdtemp(prefix="sbc-checks-"))
    STATE.root.mkdir(parents=True, exist_ok=True)
    return STATE.root


def slug(text: str, limit: int = 80) -> str:
    """``text`` as a safe folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("._") or "check"
    return cleaned[:limit]


def new_folder(scenario: str, model: str) -> Path:
    """A fresh folder for one check: ``ROOT/<test>/<scenario>-<model>-<k>``."""
    STATE.checks += 1
    parent = reports_root() / slug(STATE.test) if STATE.test else reports_root()
    parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while True:
        folder = parent / f"{slug(scenario)}-{slug(model)}-{k:03d}"
        try:
            folder.mkdir()
        except FileExistsError:
            k += 1
            continue
        return folder


def record(failure: Failure) -> None:
    """Note a failed assertion: kept at once outside a test, else when its test fails."""
    if STATE.test is None:
        STATE.failures.append(failure)
    else:
        STATE.pending.append(failure)


def begin_test(nodeid: str) -> None:
    """A test starts: its checks go under its own folder."""
    STATE.test = nodeid
    STATE.pending.clear()


def end_test(nodeid: str, failed: bool, raised: BaseException | None = None) -> None:
    """A test ends: if it failed on a calibration assertion, keep that failure.

    The failure kept is the one whose ``AssertionError`` the test raised (directly, as the
    cause of another error, or in an exception group): a hypothesis test's last failing
    example, the one it reports. Assertions a test caught itself are dropped; how many
    failed before the kept one is counted.
    """
    if failed and raised is not None:
        errors = _exceptions(raised)
        kept = [f for f in STATE.pending if any(f.error is e for e in errors)]
        if kept:
            STATE.failures.append(kept[-1])
            STATE.repeats[nodeid] = STATE.pending.index(kept[-1])
    STATE.pending.clear()
    STATE.test = None


def _exceptions(error: BaseException) -> list[BaseException]:
    """``error``, the errors it was raised from, and those of an exception group."""
    found: list[BaseException] = []
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or any(current is f for f in found):
            continue
        found.append(current)
        stack += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            stack += list(current.exceptions)
    return found
