"""Hypothesis strategies for property-based model tests: valid settings of any scenario.

::

    from hypothesis import given
    from sbc.testing import assert_calibrated, bonferroni, property_settings, scenario_settings

    @property_settings(max_examples=5)
    @given(settings=scenario_settings("heights", n_groups=(2, 12)))
    def test_partial_stays_calibrated(settings):
        assert_calibrated("heights", "partial", settings=settings, simulations=50,
                          alpha=bonferroni(0.01, 5))

A setting is drawn from the bound given for it, or else around its default within the
values the scenario accepts; every drawn combination is validated like ``--set`` values
(each setting's check, then the scenario's cross-setting check), so only valid settings
reach the test.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from sbc import registry
from sbc.scenario import Scenario, Setting, SettingError

# PyMC raises the recursion limit to 10000 when first imported (pymc.sampling.mcmc). If that
# import happens inside a hypothesis example, hypothesis warns that it cannot restore the
# limit; raised here, before any example runs, PyMC's change is a no-op.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

Bound = tuple[float, float] | Iterable[Any] | st.SearchStrategy | int | float | str
"""A bound: ``(low, high)`` (closed range), a list of values, a strategy, or one value."""

FLOAT_SPAN = 4.0
"""An unbounded float setting is drawn from ``[default / 4, default * 4]`` (a default of 0:
``[-1, 1]``), within the values the scenario accepts."""

INT_SPAN = 2
"""An unbounded integer setting is drawn from ``[0, max(2 * default, 4)]``, within the values
the scenario accepts."""

MARGIN = 0.1
"""Share of the distance from the default to a float setting's limit (found by bisection)
kept free, so that draws stay off the edge (``0.999999`` for a mean in ``(0, 1)``)."""


def scenario_settings(
    scenario: str | Scenario | types.ModuleType,
    *,
    others: Literal["drawn", "default"] = "drawn",
    **bounds: Bound,
) -> st.SearchStrategy[dict[str, Any]]:
    """A hypothesis strategy of valid settings of a scenario.

    Parameters
    ----------
    scenario : str, Scenario or module
        A scenario name, file or ``module:OBJECT``, a scenario object, or a module
        defining ``SCENARIO``.
    others : {"drawn", "default"}
        Settings without a bound: drawn around their defaults (``"drawn"``; shrinking
        returns them to their defaults) or kept at their defaults (``"default"``).
        Text settings always keep their defaults unless bounded.
    **bounds
        Per setting: ``(low, high)`` draws from that closed range (integers for an integer
        setting; shrinks towards ``low``); a list (or set, range) draws one of its values;
        a hypothesis strategy is used as given; any other value fixes the setting.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Dictionaries of every setting's value, valid as ``check_calibration(settings=...)``
        or ``--set`` values.

    Raises
    ------
    sbc.scenario.SettingError
        For an unknown setting, a malformed bound, or a bound value the setting refuses.
    """
    if others not in ("drawn", "default"):
        raise SettingError(f"others must be 'drawn' or 'default', got {others!r}")
    resolved = registry.resolve(scenario)
    by_name = {s.name: s for s in resolved.settings}
    name = registry.display_name(resolved)
    unknown = [k for k in bounds if k not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise SettingError(f"scenario {name} has no setting {unknown[0]!r} (known: {known})")
    parts = {}
    for setting in resolved.settings:
        if setting.name in bounds:
            parts[setting.name] = _bounded(setting, bounds[setting.name], name)
        elif others == "default" or isinstance(setting.default, str):
            parts[setting.name] = st.just(setting.default)
        else:
            parts[setting.name] = _around_default(resolved, setting)
    return (
        st.fixed_dictionaries(parts)
        .map(lambda values: _valid_or_none(resolved, values))
        .filter(lambda values: values is not None)
    )


def property_settings(
    max_examples: int = 10,
    *,
    shrink: bool = False,
    derandomize: bool = True,
    **kwargs: Any,
) -> settings:
    """Hypothesis settings for tests whose every example is an SBC run.

    Parameters
    ----------
    max_examples : int
        Designs tried (each one a calibration check: seconds to minutes).
    shrink : bool
        Shrink a failing design to a simpler one. Every shrinking step is another SBC
        run, so it is off by default: the failing design is reported as found.
    derandomize : bool
        Draw the same designs every run (reproducible in CI; no example database). With
        ``False`` hypothesis stores failing designs in its database and tries them first
        on the next run.
    **kwargs
        Other :class:`hypothesis.settings` (``database``, ``verbosity`` ...).

    Returns
    -------
    hypothesis.settings
        No deadline, no too-slow health check, the phases above.
    """
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=max_examples,
        deadline=None,
        phases=phases,
        derandomize=derandomize,
        suppress_health_check=[HealthCheck.too_slow],
        **kwargs,
    )


def _valid_or_none(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return registry.resolve_settings(scenario, values)
    except SettingError:
        return None


def _check(setting: Setting, value: Any, scenario: str) -> Any:
    try:
        setting.validate(value)
    except (SettingError, TypeError) as exc:
        raise SettingError(f"scenario {scenario}: bound of {setting.name}: {exc}") from None
    return value


def _bounded(setting: Setting, bound: Bound, scenario: str) -> st.SearchStrategy:
    """The strategy of one bounded setting."""
    if isinstance(bound, st.SearchStrategy):
        return bound
    kind = type(setting.default)
    if isinstance(bound, tuple) and len(bound) == 2 and all(_is_number(b) for b in bound):
        if kind is str:
            raise SettingError(
                f"scenario {scenario}: {setting.name} is text; give a list of values, not a range"
            )
        low, high = bound
        if low > high:
            raise SettingError(f"scenario {scenario}: bound of {setting.name}: {low} > {high}")
        _check(setting, kind(low), scenario)
        _check(setting, kind(high), scenario)
        if kind is int:
            if low != int(low) or high != int(high):
                raise SettingError(
                    f"scenario {scenario}: {setting.name} is an integer; got bounds {bound}"
                )
            return st.integers(int(low), int(high))
        return st.floats(float(low), float(high), allow_nan=False, allow_infinity=False)
    if isinstance(bound, list | set | frozenset | range | tuple):
        values = [_check(setting, v, scenario) for v in bound]
        if not values:
            raise SettingError(f"scenario {scenario}: bound of {setting.name} holds no value")
        return st.sampled_from(sorted(values) if not isinstance(bound, list) else values)
    return st.just(_check(setting, bound, scenario))


def _around_default(scenario: Scenario, setting: Setting) -> st.SearchStrategy:
    """Default first (shrinking returns to it), else the accepted values near the default."""
    default = setting.default
    if isinstance(default, int):
        low, high = (0, max(INT_SPAN * default, 4)) if default >= 0 else (min(2 * default, -4), 0)
    elif default > 0:
        low, high = default / FLOAT_SPAN, default * FLOAT_SPAN
    elif default < 0:
        low, high = default * FLOAT_SPAN, default / FLOAT_SPAN
    else:
        low, high = -1.0, 1.0

    def valid(value: Any) -> bool:
        return _valid_or_none(scenario, {setting.name: value}) is not None

    if not valid(default):  # no anchor to search from: the range as is, filtered later
        spread = st.integers(low, high) if isinstance(default, int) else _floats(low, high)
        return spread
    high = _limit(valid, default, high, isinstance(default, int))
    low = _limit(valid, default, low, isinstance(default, int))
    if isinstance(default, int):
        return st.one_of(st.just(default), st.integers(low, high))
    return st.one_of(st.just(default), _floats(low, high))


def _floats(low: float, high: float) -> st.SearchStrategy:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _limit(valid: Callable[[Any], bool], inside: Any, outside: Any, integer: bool) -> Any:
    """The value nearest ``outside`` still accepted, between a valid ``inside`` and ``outside``.

    Assumes the accepted values form an interval around ``inside`` (bisection); a float
    limit found inside the span keeps :data:`MARGIN` of the distance free.
    """
    if valid(outside):
        return outside
    good, bad = inside, outside
    if integer:
        while abs(bad - good) > 1:
            middle = (good + bad) // 2
            good, bad = (middle, bad) if valid(middle) else (good, middle)
        return good
    for _ in range(60):
        middle = (good + bad) / 2
        good, bad = (middle, bad) if valid(middle) else (good, middle)
        if math.isclose(good, bad, rel_tol=1e-12):
            break
    return inside + (1 - MARGIN) * (good - inside)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
