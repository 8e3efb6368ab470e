"""Detection of planted bugs: flagged mutants, the first N that flags them, the report."""

import scenarios
from sbc.backends import Sampling
from sbc.mutants import detection_table
from sbc.report.mutants_html import write_detection_report
from sbc.runner import run


def test_detection_flags_bugs_and_spares_the_correct_model(tmp_path):
    """On exact posteriors, the biased and prior-only models are flagged, the exact one not."""
    conjugate = scenarios.get("conjugate")
    models = ["exact", "biased", "prior_only"]
    results = run(
        conjugate, conjugate.defaults, models, 200, tmp_path, seed=4, sampling=Sampling(draws=200)
    )
    table = detection_table(results, models, step=50).set_index("model")
    assert not table.loc["exact", "flagged"]
    assert table.loc["biased", "flagged"] and table.loc["biased", "first_flagged_at"] == 50
    assert table.loc["prior_only", "flagged"]
    assert table.loc["prior_only", "revealed_by"].startswith("loglik")
    html = write_detection_report(tmp_path, table.reset_index(), {}).read_text()
    assert html.count('class="ok"') == 3  # all three outcomes are the expected ones
    assert (tmp_path / "mutants.csv").is_file()


def test_every_scenario_marks_its_mutants_and_keeps_them_out_of_default_runs():
    """Each scenario with a partial model ships mutants, never among the default models."""
    for name in scenarios.names():
        scenario = scenarios.get(name)
        if "partial" not in {m.name for m in scenario.models}:
            continue  # conjugate (the exact test scenario) and school (one school) pool nothing
        assert len(scenario.mutants) >= 2, name
        assert not set(scenario.mutants) & set(scenario.default_models)
        assert all(m.startswith("mutant_") for m in scenario.mutants)
