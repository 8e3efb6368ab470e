"""The ``sbc`` pytest plugin: every failed calibration assertion's report, in one place.

Registered as the ``pytest11`` entry point ``sbc``, so it is active wherever the package is
installed (``-p no:sbc`` turns it off). During a session, :mod:`sbc.testing` checks write
their runs under one reports folder (``--sbc-reports DIR``, default ``sbc`` in pytest's
base temporary folder), one sub-folder per test; a passing check's folder is removed
unless ``--sbc-keep``. When a test fails on a calibration assertion, its report is kept
and listed in a summary at the end of the session and in ``DIR/index.html`` (and
``DIR/failures.csv``). The ``sbc_reports`` fixture gives the folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sbc.testing import session as checks


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--sbc-reports DIR`` and ``--sbc-keep``."""
    group = parser.getgroup("sbc", "calibration checks (sbc.testing)")
    group.addoption(
        "--sbc-reports",
        metavar="DIR",
        default=None,
        help="folder for the runs and reports of sbc.testing checks (default: a folder "
        "'sbc' in pytest's base temporary folder)",
    )
    group.addoption(
        "--sbc-keep",
        action="store_true",
        help="keep the runs of passing calibration checks too",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Start a fresh session state; the reports folder is chosen when a check first runs."""
    checks.reset()
    state = checks.STATE
    option = config.getoption("--sbc-reports", default=None)
    state.keep = bool(config.getoption("--sbc-keep", default=False))
    if option:
        state.root = Path(option).resolve()
    else:
        state.root_factory = lambda: _default_root(config)


def _default_root(config: pytest.Config) -> Path:
    """``sbc`` in pytest's base temporary folder (pytest keeps the last few sessions')."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:  # pytest's tmpdir plugin is disabled
        import tempfile

        return Path(tempfile.mkdtemp(prefix="sbc-checks-"))
    return factory.getbasetemp() / "sbc"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Checks of this test go into its own folder."""
    checks.begin_test(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """After a test's call: keep the calibration assertion it failed on, if any."""
    report = yield
    if report.when == "call":
        raised = call.excinfo.value if call.excinfo is not None else None
        checks.end_test(item.nodeid, failed=report.failed, raised=raised)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write ``index.html`` and ``failures.csv`` of the failed checks, if any."""
    state = checks.STATE
    if state.failures:
        from sbc.report.checks_html import write_failure_index

        write_failure_index(checks.reports_root(), state.failures, state.repeats)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """List every failed calibration assertion: test, headline, report; then the index."""
    state = checks.STATE
    if not state.failures:
        return
    write = terminalreporter.write_line
    terminalreporter.section("sbc calibration failures")
    for failure in state.failures:
        repeats = state.repeats.get(failure.test or "", 0)
        more = f" (after {repeats} earlier failing examples)" if repeats else ""
        write(f"{failure.test or '(outside a test)'}{more}")
        write(f"  {failure.headline}")
        write(f"  report: {failure.report or failure.folder}")
    write(f"index of failed checks: {checks.reports_root() / 'index.html'}")


@pytest.fixture
def sbc_reports() -> Path:
    """The folder the session's calibration checks write their runs and reports under."""
    return checks.reports_root()
