"""The sbc pytest plugin: failed calibration assertions collected in one place."""

import textwrap
from pathlib import Path

import pandas as pd

INNER = """
import pytest
from hypothesis import given

from sbc.backends import Sampling
from sbc.testing import assert_calibrated, property_settings, scenario_settings

FAST = Sampling(chains=2, draws=100)


def test_biased():
    assert_calibrated("conjugate", "biased", simulations=30, sampling=FAST)


def test_exact():
    assert_calibrated("conjugate", "exact", simulations=30, sampling=FAST)


def test_caught():
    with pytest.raises(AssertionError):
        assert_calibrated("conjugate", "overconfident", simulations=30, sampling=FAST, report=False)


def test_other_failure():
    with pytest.raises(AssertionError):
        assert_calibrated("conjugate", "overconfident", simulations=30, sampling=FAST, report=False)
    assert 1 == 2


@property_settings(max_examples=3)
@given(settings=scenario_settings("conjugate", n=(1, 20), others="default"))
def test_property(settings):
    assert_calibrated("conjugate", "biased", settings=settings, simulations=30, sampling=FAST)


def test_fixture(sbc_reports):
    assert sbc_reports.name == "collected"
"""


def test_failed_assertions_are_listed_with_their_reports_and_indexed(pytester, tmp_path):
    """Only failures that failed their test are summarised, each with a report, in an index."""
    pytester.makepyfile(test_inner=textwrap.dedent(INNER))
    reports = tmp_path / "collected"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sbc-reports", reports)
    result.assert_outcomes(passed=3, failed=3)
    out = result.stdout.str()
    summary = out[out.index("sbc calibration failures") : out.index("short test summary info")]
    assert "test_inner.py::test_biased\n" in summary
    assert "test_inner.py::test_property (after 1 earlier failing examples)" in summary
    assert "test_caught" not in summary and "test_other_failure" not in summary
    assert f"index of failed checks: {reports / 'index.html'}" in summary
    failures = pd.read_csv(reports / "failures.csv")
    assert [t.split("::")[1] for t in failures["test"]] == ["test_biased", "test_property"]
    for report in failures["report"]:
        assert report.endswith("report.html") and Path(report).is_file()
        assert Path(report).is_relative_to(reports)
    index = (reports / "index.html").read_text()
    assert index.count('">report</a>') == 2 and 'href="test_inner.py_test_biased/' in index
    exact = reports / "test_inner.py_test_exact"
    assert exact.is_dir() and not any(exact.iterdir())  # a passing check leaves nothing


def test_reports_go_to_pytests_base_temporary_folder_by_default(sbc_reports, tmp_path_factory):
    """Without --sbc-reports, checks write under sbc/ in pytest's base temporary folder."""
    assert sbc_reports == tmp_path_factory.getbasetemp() / "sbc" and sbc_reports.is_dir()
