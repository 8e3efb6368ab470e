"""sbc.results.calibration: per-quantity and per-model tables, verdicts, figure data."""

import numpy as np
import pandas as pd
import pytest

from sbc import registry
from sbc.backends import Sampling
from sbc.results.calibration import (
    coverage_curve,
    estimand_group,
    estimand_table,
    interval_columns,
    model_table,
    panel_data,
    verdict,
)
from tests.helpers import run


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    scenario = registry.get("conjugate")
    return run(
        scenario,
        scenario.defaults,
        ["exact", "biased"],
        150,
        tmp_path_factory.mktemp("calibration"),
        seed=4,
        sampling=Sampling(chains=1, draws=300),
    )


def test_exact_model_is_calibrated_and_the_biased_one_is_not(results):
    """The analytic posterior passes; the biased one is flagged, on the same data sets."""
    models = model_table(results).set_index("model")
    assert models.loc["exact", "verdict"] == "calibrated"
    assert models.loc["biased", "verdict"] == "not calibrated"
    assert abs(models.loc["exact", "coverage90"] - 0.9) < 0.1


def test_estimand_table_has_one_row_per_model_and_quantity(results):
    """Every (model, quantity) gets p-values in [0, 1] and Holm-adjusted ones not smaller."""
    table = estimand_table(results)
    assert len(table) == results.groupby(["model", "estimand"]).ngroups
    for column in ("p_ecdf", "p_pot", "p_chi2", "p_holm"):
        assert table[column].between(0, 1).all()
    assert (table["p_holm"] >= table["p_pot"] - 1e-12).all()


def test_coverage_curve_rises_with_the_nominal_level(results):
    """Empirical coverage of the exact model is monotone in the level, within its intervals."""
    curve = coverage_curve(results[results["model"] == "exact"])
    assert np.all(np.diff(curve["coverage"]) >= 0)
    assert ((curve["lower"] <= curve["level"]) & (curve["level"] <= curve["upper"])).mean() >= 0.75


def test_panel_data_holds_what_the_figures_draw(results):
    """ECDF bands, histogram counts summing to the fits, coverage, estimates per quantity."""
    quantity = results["estimand"].iloc[0]
    data = panel_data(results, "exact", [quantity])
    assert data["hist"][quantity].sum() == 150
    band = data["ecdf"][quantity]
    assert np.all(band["lower"] <= band["upper"]) and len(band["x"]) == len(band["ecdf"])
    assert len(data["estimates"][quantity]["truth"]) == 150


def test_verdict_is_failed_when_most_fits_raised():
    """More than half the fits raised: 'failed' with the first error, not a calibration."""
    fits = pd.DataFrame({"simulation": [0, 1, 2], "error": ["Boom: x", "Boom: y", None]})
    assert verdict(fits, True) == "failed: 2 of 3 fits raised Boom: x"
    assert verdict(fits.iloc[1:], False) == "not calibrated"


def test_names_of_groups_and_interval_columns():
    """country_mean[3] belongs to country_mean; the 90% interval is q5..q95."""
    assert estimand_group("country_mean[3]") == "country_mean"
    assert estimand_group("sigma") == "sigma"
    assert interval_columns(0.9) == ("q5", "q95")
