"""Alberta: the xlsx loader, the real-data fit, and SBC on the real design."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scenarios
from sbc.backends import Sampling
from sbc.realfit import fit_real, write_fit
from sbc.runner import run
from sbc.scenario import SettingError
from scenarios.alberta_data import DataError, load, select, tidy

XLSX = (
    Path(__file__).resolve().parents[2]
    / "shared/data/alberta/diploma-multiyear-sch-list-annual.xlsx"
)
needs_data = pytest.mark.skipif(
    not XLSX.is_file(), reason="../shared/data/alberta is not beside the repo"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SBC_CACHE_DIR", str(folder))
        yield folder


@needs_data
def test_loader_reproduces_the_known_counts_and_first_rows(cache):
    """Mathematics 30-1, 2016: 318 schools with writers, 141 with 30+, in 56 authorities."""
    table = load(XLSX)
    math = table[(table["course"] == "Mathematics 30-1") & (table["year"] == 2016)]
    assert math["writers"].notna().sum() == 318
    chosen = select(table, "Mathematics 30-1", 2016, 30)
    assert len(chosen) == 141 and chosen["authority_code"].nunique() == 56
    first = chosen.iloc[:2][["school_name", "school_code", "writers", "exam_mean", "exam_sd"]]
    assert first.values.tolist() == [
        ["FFCA High School Campus", "0012", 113, 63.9, 20.0],
        ["Webber Academy", "0021", 59, 84.8, 10.8],
    ]
    assert list(cache.glob("alberta-*.parquet"))  # the extract is cached


def test_tidy_reads_the_older_spelling_suppressed_cells_and_footnotes():
    """'2016Sch Students Writing' columns, n/a cells, unpadded codes and footnotes are handled."""
    raw = pd.DataFrame(
        {
            "Diploma Course": ["Physics 30", "Physics 30", "1. Footnote text"],
            "Authority Type": ["Public", "Public", None],
            "Authority Code": ["9", "0010", None],
            "Authority Name": ["A", "B", None],
            "School Code": ["12", "0044", None],
            "School Name": ["S1", "S2", None],
            "2016Sch Students Writing": ["40", "n/a", None],
            "2016Sch Exam Average %": ["70.5", "n/a", None],
            "2016Sch Exam Standard Deviation %": ["12.0", "n/a", None],
        }
    )
    table = tidy(raw)
    assert table["school_code"].tolist() == ["0012", "0044"]
    assert table["authority_code"].tolist() == ["0009", "0010"]
    assert table["writers"].iloc[0] == 40 and np.isnan(table["writers"].iloc[1])
    assert len(select(table, "Physics 30", 2016, 30)) == 1


def test_a_file_that_is_not_the_table_is_refused(tmp_path):
    """A foreign table or a non-xlsx file gives a DataError naming the problem."""
    with pytest.raises(DataError, match="not Alberta's school-level"):
        tidy(pd.DataFrame({"a": [1]}), "x.xlsx")
    bogus = tmp_path / "bogus.xlsx"
    bogus.write_text("not a spreadsheet")
    with pytest.raises(DataError, match="cannot read"):
        load(bogus)
    with pytest.raises(DataError, match="no data file"):
        load(tmp_path / "missing.xlsx")


def test_alberta_settings_need_a_readable_data_file(tmp_path):
    """Without --set data=FILE, or with an unknown course, the settings are refused up front."""
    scenario = scenarios.get("alberta")
    with pytest.raises(SettingError, match="needs its data file"):
        scenario.resolve_settings({})
    if XLSX.is_file():
        with pytest.raises(SettingError, match="no course 'Astrology 30'"):
            scenario.resolve_settings({"data": str(XLSX), "course": "Astrology 30"})


@needs_data
def test_unpooled_fit_agrees_with_the_seed(cache, tmp_path):
    """The unpooled model gives FFCA High School Campus a posterior mean near 0.639."""
    scenario = scenarios.get("alberta")
    settings = scenario.resolve_settings({"data": str(XLSX)})
    table = fit_real(scenario, settings, ["none"], Sampling(chains=2, tune=300, draws=300))
    ffca = table.set_index("estimand").loc["school_mean[0012]"]
    assert ffca["post_mean"] == pytest.approx(0.639, abs=0.004)
    html = write_fit(tmp_path, scenario, settings, table).read_text()
    assert "FFCA High School Campus" in html and "<svg" in html


@needs_data
def test_sbc_runs_on_the_real_design(cache, tmp_path):
    """SBC simulates scores on the real schools and ranks every school's mean."""
    scenario = scenarios.get("alberta")
    settings = scenario.resolve_settings({"data": str(XLSX)})
    results = run(
        scenario, settings, ["partial"], 2, tmp_path, sampling=Sampling(tune=200, draws=200)
    )
    assert results["error"].isna().all()
    assert len(results) == 2 * (2 + 141 + 1)  # pop_mean, nu, 141 schools, loglik
