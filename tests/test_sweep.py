"""Sweeps: a grid of settings, one resumable run per cell, and a report across cells."""

import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbc.cli import main
from sbc.results.calibration import MODEL_TIMING_COLUMNS
from sbc.results.store import RunStore
from sbc.workflows.sweep import SpecError, load_spec, run_sweep

SWEEPS = Path(__file__).parents[1] / "scenarios" / "sweeps"

SPEC = """
scenario = "conjugate"
models = ["exact", "biased"]
simulations = 12
seed = 1

[sampling]
draws = 50

[settings]
sigma = 2.0

[grid]
n = [1, 8]
prior_sd = [1.0, 3.0]
"""


def _spec(tmp_path, text=SPEC):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _stub_report(out, *args, **kwargs):
    """Stand-in for the run report (tested in test_report.py; slow to draw)."""
    path = Path(out) / "report.html"
    path.write_text("report")
    return path


def test_sweep_runs_every_cell_and_writes_a_self_contained_report(tmp_path, monkeypatch):
    """Each cell is a run with the files of `sbc run` (strata.csv too); index.html compares them."""
    monkeypatch.setattr("sbc.report.html.write_report", _stub_report)
    out = tmp_path / "out"
    assert main(["sweep", str(_spec(tmp_path)), "-j", "1", "--out", str(out), "--quiet"]) == 0
    cells = ["n=1,prior_sd=1.0", "n=1,prior_sd=3.0", "n=8,prior_sd=1.0", "n=8,prior_sd=3.0"]
    for cell in cells:
        for name in ("report.html", "summary.csv", "strata.csv", "results.parquet"):
            assert (out / cell / name).exists(), (cell, name)
        record = RunStore(out / cell).record()["identity"]
        assert record["settings"]["sigma"] == 2.0 and record["sampling"]["draws"] == 50
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["cell"].unique()) == cells and len(table) == 4 * 2
    assert {"coverage90", "rel_rmse", "rel_width90", "min_p_holm"} <= set(table.columns)
    html = (out / "index.html").read_text()
    assert "<svg" in html and "<script" not in html
    assert all(f'href="{cell}/report.html"' in html for cell in cells)
    assert re.search(r"<(img|link|iframe)\b", html) is None  # nothing loaded from elsewhere
    from sbc.results.calibration import model_table

    cell = model_table(pd.read_parquet(out / cells[2] / "results.parquet"))
    assert table.loc[4:5, "rel_rmse"].tolist() == pytest.approx(cell["rel_rmse"].tolist())


def test_interrupted_sweep_resumes_only_what_is_missing(tmp_path, monkeypatch):
    """Re-running a stopped sweep computes only missing simulations; tables match a clean run."""
    import sbc.engine.execute

    monkeypatch.setattr("sbc.report.html.write_report", _stub_report)
    spec = load_spec(_spec(tmp_path))
    run_sweep(spec, tmp_path / "whole")
    calls = {"n": 0}
    original = RunStore.write_part

    def write_then_stop(self, frame):
        original(self, frame)
        calls["n"] += 1
        if calls["n"] == 20:  # in the second cell
            raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "write_part", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "resumed")
    monkeypatch.setattr(RunStore, "write_part", original)
    fitted = []
    real = sbc.engine.execute.work
    monkeypatch.setattr(sbc.engine.execute, "work", lambda job: fitted.append(job) or real(job))
    run_sweep(spec, tmp_path / "resumed")
    assert len(fitted) == 4 * 12 - 20
    timing = list(MODEL_TIMING_COLUMNS)
    whole = pd.read_csv(tmp_path / "whole" / "sweep.csv").drop(columns=timing)
    resumed = pd.read_csv(tmp_path / "resumed" / "sweep.csv").drop(columns=timing)
    pd.testing.assert_frame_equal(whole, resumed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenario = ", "invalid TOML"),
        ('scenario = "conjugate"\nsimulations = 5\n', "missing key 'grid'"),
        ('scenario = "conjugate"\n[grid]\nn = [1]\n', "missing key 'simulations'"),
        ('scenario = "nope"\nsimulations = 5\n[grid]\nn = [1]\n', "unknown scenario 'nope'"),
        ('scenario = "conjugate"\nsimulations = 5\ncolour = 1\n[grid]\nn = [1]\n', "unknown key"),
        ('scenario = "conjugate"\nsimulations = 0\n[grid]\nn = [1]\n', "simulations must be"),
        ('scenario = "conjugate"\nsimulations = true\n[grid]\nn = [1]\n', "simulations must be"),
        ('scenario = "conjugate"\nsimulations = 5\nseed = -1\n[grid]\nn = [1]\n', "seed must"),
        ('scenario = "conjugate"\nsimulations = 5\nthin = 0\n[grid]\nn = [1]\n', "thin must"),
        ('scenario = "conjugate"\nsimulations = 5\nmodels = []\n[grid]\nn = [1]\n', "models must"),
        (
            'scenario = "conjugate"\nsimulations = 5\nmodels = ["magic"]\n[grid]\nn = [1]\n',
            "no model 'magic'",
        ),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\n', "grid needs at least one"),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\nn = 3\n', "grid.n must be a non-empty"),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\nn = ["a"]\n', "grid.n must be"),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\nn = [1, 1]\n', "repeats a value"),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\nn = [0]\n', "n=0: must be at least 1"),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\nn = [1.5]\n', "needs an integer"),
        ('scenario = "conjugate"\nsimulations = 5\n[grid]\nsides = [1]\n', "no setting 'sides'"),
        (
            'scenario = "conjugate"\nsimulations = 5\n[sampling]\nwarmup = 3\n[grid]\nn = [1]\n',
            "unknown sampler setting warmup",
        ),
        (
            'scenario = "conjugate"\nsimulations = 5\n[sampling]\ntarget_accept = 1\n'
            "[grid]\nn = [1]\n",
            "sampler setting target_accept must lie in (0, 1)",
        ),
        (
            'scenario = "conjugate"\nsimulations = 5\n[settings]\nn = 2\n[grid]\nn = [1]\n',
            "both fixed",
        ),
        ('scenario = "conjugate"\nsimulations = 5\nx = "m"\n[grid]\nn = [1]\n', "x must be one"),
        ('scenario = "conjugate"\nsimulations = 5\ngrid = 3\n', "grid must be a table"),
    ],
)
def test_bad_spec_is_a_one_line_error_naming_the_file(tmp_path, capsys, text, message):
    """Malformed specs, unknown keys and wrong types exit 2 with one line naming the file."""
    path = _spec(tmp_path, text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sbc: error: {path}: ") and message in err, err
    assert not (tmp_path / "out").exists()


SCALARS = (
    st.integers(-3, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.booleans()
    | st.sampled_from(["conjugate", "nope", "ess", "x.py", "os:path", "exact", ""])
)
VALUES = SCALARS | st.lists(SCALARS, max_size=4)
KEYS = st.sampled_from(
    ["scenario", "models", "simulations", "seed", "thin", "test_quantities", "x", "bogus"]
)
SUBKEYS = st.sampled_from(["n", "prior_sd", "sigma", "chains", "draws", "target_accept", "zz"])


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return repr(value)


@st.composite
def specs(draw):
    lines = [f"{k} = {_toml(draw(VALUES))}" for k in draw(st.sets(KEYS, max_size=6))]
    for table in draw(st.sets(st.sampled_from(["settings", "sampling", "grid", "other"]))):
        lines.append(f"[{table}]")
        lines += [f"{k} = {_toml(draw(VALUES))}" for k in draw(st.sets(SUBKEYS, max_size=3))]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=12)))
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(text=specs())
def test_random_spec_files_are_accepted_or_refused_in_one_line(text):
    """Any spec text either loads or raises SpecError with a one-line message."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_spec(path)
        except SpecError as exc:
            assert "\n" not in str(exc) or "invalid TOML" in str(exc)


@pytest.mark.parametrize("name", ["heights", "schools"])
def test_shipped_sweep_specs_load(name):
    """The sweep specs shipped with the project are valid."""
    spec = load_spec(SWEEPS / f"{name}.toml")
    assert len(spec.cells()) == 4 and spec.simulations == 100
    assert spec.models == ("complete", "none", "partial")
