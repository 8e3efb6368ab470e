"""Alberta: the xlsx loader, the shipped extract, the real-data fit, SBC on the real design."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scenarios
from sbc import registry
from sbc.cli import main
from sbc.scenario import SettingError
from scenarios.alberta_data import (
    EXTRACT,
    DataError,
    load,
    read_extract,
    select,
    tidy,
    write_extract,
)

# The full workbook, beside the repository (../shared) or beside a worktree's parent.
XLSX = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[i]
            / "shared/data/alberta/diploma-multiyear-sch-list-annual.xlsx"
            for i in (2, 3)
        )
        if p.is_file()
    ),
    Path("../shared/data/alberta/diploma-multiyear-sch-list-annual.xlsx"),
)
needs_data = pytest.mark.skipif(
    not XLSX.is_file(), reason="../shared/data/alberta is not beside the repo"
)
FIRST_ROWS = [
    ["FFCA High School Campus", "0012", 113, 63.9, 20.0, 77.9],
    ["Webber Academy", "0021", 59, 84.8, 10.8, 100.0],
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SBC_CACHE_DIR", str(folder))
        yield folder


def _check_known_counts(table):
    math = table[(table["course"] == "Mathematics 30-1") & (table["year"] == 2016)]
    assert math["writers"].notna().sum() == 318
    chosen = select(table, "Mathematics 30-1", 2016, 30)
    assert len(chosen) == 141 and chosen["authority_code"].nunique() == 56
    columns = ["school_name", "school_code", "writers", "exam_mean", "exam_sd", "acceptable_pct"]
    assert chosen.iloc[:2][columns].values.tolist() == FIRST_ROWS


@pytest.mark.parametrize("source", ["shipped extract", pytest.param("workbook", marks=needs_data)])
def test_loader_reproduces_the_known_counts_and_first_rows(source, cache):
    """Mathematics 30-1, 2016: 318 schools with writers, 141 with 30+, in 56 authorities."""
    table = load() if source == "shipped extract" else load(XLSX)
    _check_known_counts(table)
    if source == "workbook":
        assert list(cache.glob("alberta-v2-*.parquet"))  # the parsed workbook is cached
    else:
        assert len(table) == 318 and set(table["year"]) == {2016}


def test_an_official_layout_workbook_is_read_and_cached(cache, tmp_path):
    """A workbook in the official layout (made from the extract) loads to the same schools."""
    extract = load()
    sheet = pd.DataFrame(
        {
            "Diploma Course": extract["course"],
            "Authority Type": extract["authority_type"],
            "Authority Code": extract["authority_code"].str.lstrip("0"),
            "Authority Name": extract["authority_name"],
            "School Code": extract["school_code"],
            "School Name": extract["school_name"],
            "2016 Sch Students Writing": extract["writers"].astype("Int64").astype(str),
            "2016 Sch Exam Mark % Acc": extract["acceptable_pct"].map("{:.1f}".format),
            "2016 Sch Exam Average %": extract["exam_mean"].map("{:.1f}".format),
            "2016 Sch Exam Standard Deviation %": extract["exam_sd"].map("{:.1f}".format),
        }
    ).replace({"<NA>": "n/a", "nan": "n/a"})
    footnote = pd.DataFrame({"Diploma Course": ["1. Results are suppressed below six writers."]})
    path = tmp_path / "official.xlsx"
    pd.concat([sheet, footnote], ignore_index=True).to_excel(path, index=False)
    read = load(path)
    assert len(list(cache.glob("alberta-v2-*.parquet"))) >= 1
    pd.testing.assert_frame_equal(read, load(path))  # the second read comes from the cache
    pd.testing.assert_frame_equal(
        select(read, "Mathematics 30-1", 2016, 30), select(extract, "Mathematics 30-1", 2016, 30)
    )


@needs_data
def test_shipped_extract_is_the_workbook_it_names(cache, tmp_path):
    """The workbook has the SHA-256 the data README notes and still gives the extract exactly."""
    readme = (Path(scenarios.__file__).parent / "data" / "README.md").read_text()
    noted = re.search(r"SHA-256\*\*:\s*`([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256(XLSX.read_bytes()).hexdigest() == noted
    made = write_extract(XLSX, tmp_path / "extract.csv")
    assert made.read_bytes() == EXTRACT.read_bytes()
    pd.testing.assert_frame_equal(read_extract(made), load())


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
    assert table["acceptable_pct"].isna().all()  # an edition without that optional column
    raw["2016Sch Exam Mark % Acc"] = ["85.0", "n/a", None]
    assert tidy(raw)["acceptable_pct"].iloc[0] == 85.0
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


def test_alberta_settings_read_the_extract_or_a_named_file(tmp_path):
    """No data setting uses the shipped extract; a missing file or unknown course is refused."""
    scenario = registry.get("alberta")
    assert scenario.design(scenario.resolve_settings({})).n == 141
    assert scenario.design(scenario.resolve_settings({"min_students": 1})).n == 318
    with pytest.raises(SettingError, match="no data file"):
        scenario.resolve_settings({"data": str(tmp_path / "missing.xlsx")})
    with pytest.raises(SettingError, match=r"no course 'Astrology 30'.*--data FILE"):
        scenario.resolve_settings({"course": "Astrology 30"})
    if XLSX.is_file():
        with pytest.raises(SettingError, match="no course 'Astrology 30' in the data \\("):
            scenario.resolve_settings({"data": str(XLSX), "course": "Astrology 30"})


def test_unpooled_fit_agrees_with_the_seed(tmp_path, capsys):
    """`sbc fit alberta` with no --data: the unpooled FFCA posterior mean is near 0.639."""
    argv = ["fit", "alberta", "--models", "none", "--chains", "2", "--tune", "300"]
    assert main([*argv, "--draws", "300", "--replicates", "100", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "fit.csv", dtype={"estimand": str})
    ffca = table.set_index("estimand").loc["school_mean[0012]"]
    assert ffca["post_mean"] == pytest.approx(0.639, abs=0.004)
    html = (tmp_path / "fit.html").read_text()
    assert "FFCA High School Campus" in html and "<svg" in html
    assert "<h1>Model validation on real data: alberta</h1>" in html


def test_sbc_runs_on_the_real_design(tmp_path, monkeypatch):
    """`sbc run alberta` with no --data simulates on the real schools and ranks each mean."""
    monkeypatch.setattr("sbc.report.html.write_report", lambda out, *a, **k: out / "report.html")
    argv = ["run", "alberta", "--models", "partial", "-n", "2", "-j", "1", "--tune", "200"]
    assert main([*argv, "--draws", "200", "--quiet", "--out", str(tmp_path)]) == 0
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert results["error"].isna().all()
    assert len(results) == 2 * (2 + 141 + 1)  # pop_mean, nu, 141 schools, loglik
