"""sbc.load and the Python API's run object: tables, record, report, reprs, ArviZ data."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import sbc
from sbc.backends import Sampling
from sbc.cli import main
from sbc.results.arviz import to_arviz
from sbc.results.store import StoreError

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def conjugate(tmp_path_factory):
    out = tmp_path_factory.mktemp("loaded") / "run"
    return sbc.run(
        "conjugate",
        models=["exact", "biased"],
        simulations=40,
        out=out,
        sampling=Sampling(chains=1, draws=200),
        progress=False,
    )


def test_load_gives_the_run_that_the_api_returned(conjugate):
    """sbc.load on the folder reads the same results, record and verdicts."""
    loaded = sbc.load(conjugate.out)
    pd.testing.assert_frame_equal(loaded.results, conjugate.results)
    assert loaded.record == conjugate.record
    assert list(loaded.verdicts["model"]) == ["exact", "biased"]
    assert loaded.simulations == 40 and loaded.models == ["exact", "biased"]
    assert {"model", "estimand", "statistic"} <= set(loaded.strata.columns)


def test_repr_is_one_line_and_html_holds_the_verdict_table(conjugate):
    """The plain repr is one readable line; the HTML view is the verdict table and figures."""
    text = repr(conjugate)
    assert "\n" not in text and "conjugate" in text and "40 simulations" in text
    html = conjugate._repr_html_()
    assert "sbc-inline" in html and "<table>" in html and "<svg" in html
    assert "exact" in html and "biased" in html and "<script" not in html


def test_report_rewrites_the_report(conjugate):
    """run.report() writes report.html into the folder."""
    path = conjugate.report()
    assert path == conjugate.out / "report.html" and "Verdict by model" in path.read_text()


def test_a_folder_that_is_not_a_run_is_refused_in_the_cli_words(tmp_path, capsys):
    """sbc.load of an empty folder raises the one-line error `sbc summary` prints."""
    with pytest.raises(StoreError) as caught:
        sbc.load(tmp_path)
    assert main(["summary", str(tmp_path)]) == 2
    assert str(caught.value) in capsys.readouterr().err


def test_to_arviz_feeds_arviz_plots(conjugate):
    """run.to_arviz(model) is a prior_sbc DataTree that plot_ecdf_pit draws without error."""
    import arviz_plots

    tree = conjugate.to_arviz("exact")
    data = tree["prior_sbc"].to_dataset()
    assert data.sizes["chain"] == 1 and data.sizes["draw"] == 40
    assert json.loads(tree.attrs["sbc_models"]) == ["exact", "biased"]
    assert tree.attrs["sbc_mode"] == "prior" and tree.attrs["sbc_model"] == "exact"
    arviz_plots.plot_ecdf_pit(tree, backend="matplotlib")
    matplotlib.pyplot.close("all")


def _table(names, simulations=5):
    rng = np.random.default_rng(1)
    rows = [
        {"simulation": s, "model": "m", "estimand": name, "pit": rng.uniform()}
        for s in range(simulations)
        for name in names
    ]
    return pd.DataFrame(rows)


def test_indexed_quantities_become_one_variable_with_a_dimension():
    """country_mean[1..3] is one variable with labels; a plain name clashing gets a suffix."""
    names = ["mu", "country_mean[1]", "country_mean[2]", "country_mean[3]", "loglik", "loglik[a]"]
    results = _table(names)
    results = results[~((results["simulation"] == 2) & (results["estimand"] == "mu"))]
    record = {"identity": {"scenario": "x", "models": ["m"], "mode": "posterior"}}
    data = to_arviz(results, "m", record)["posterior_sbc"].to_dataset()
    assert data["country_mean"].dims == ("chain", "draw", "country_mean_dim_0")
    assert list(data["country_mean_dim_0"].values) == ["1", "2", "3"]
    assert "loglik" in data and list(data["loglik_indexed_dim_0"].values) == ["a"]
    assert np.isnan(data["mu"].values[0, 2]) and np.isfinite(data["mu"].values[0, 1])


def test_to_arviz_of_an_unknown_model_is_one_line():
    """A model the run does not have: a one-line error naming the run's models."""
    with pytest.raises(sbc.errors.SettingError, match=r"no model 'z'.*models: m"):
        to_arviz(_table(["mu"]), "z", {"identity": {}})
