"""Errors of bad input, and how any exception reads on one line.

:class:`SettingError` is the base of every error the user can fix (an unknown scenario,
model or setting, an impossible value, a broken scenario file, a folder holding another
run): the command line prints it in one line and exits with code 2.
"""

from __future__ import annotations

import traceback


class SettingError(ValueError):
    """Bad input: a setting, model, scenario or option is unknown or has an impossible value."""


def one_line(exc: BaseException) -> str:
    """The exception as ``Type: message`` on one line."""
    text = "".join(traceback.format_exception_only(exc)).strip()
    return " ".join(text.split())
