"""sbc as a library for test suites: calibration assertions and property-based model tests.

::

    from sbc.testing import assert_calibrated, assert_miscalibrated, scenario_settings

    def test_partial_is_calibrated():
        assert_calibrated("heights", "partial", simulations=100, seed=1)

* :func:`check_calibration` runs SBC for one model and returns a
  :class:`~sbc.testing.check.CalibrationResult`; :func:`assert_calibrated` and
  :func:`assert_miscalibrated` turn it into an assertion whose message a person can act on
  (:mod:`sbc.testing.check`);
* :func:`scenario_settings` is a hypothesis strategy of valid settings of any scenario,
  and :func:`property_settings` hypothesis settings that keep such tests affordable
  (:mod:`sbc.testing.strategies`, needs ``hypothesis``);
* the pytest plugin ``sbc`` (:mod:`sbc.testing.plugin`, registered as a ``pytest11``
  entry point) collects the reports of failed assertions in one folder with an index,
  and lists them at the end of the session.

Names are imported on first use, so the plugin costs pytest nothing until a check runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sbc.testing.check import assert_calibrated as assert_calibrated
    from sbc.testing.check import assert_miscalibrated as assert_miscalibrated
    from sbc.testing.check import bonferroni as bonferroni
    from sbc.testing.check import check_calibration as check_calibration
    from sbc.testing.result import CalibrationResult as CalibrationResult
    from sbc.testing.strategies import property_settings as property_settings
    from sbc.testing.strategies import scenario_settings as scenario_settings

_EXPORTS = {
    "CalibrationResult": "sbc.testing.result",
    "assert_calibrated": "sbc.testing.check",
    "assert_miscalibrated": "sbc.testing.check",
    "bonferroni": "sbc.testing.check",
    "check_calibration": "sbc.testing.check",
    "property_settings": "sbc.testing.strategies",
    "scenario_settings": "sbc.testing.strategies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sbc.testing' has no attribute {name!r}")
