"""The HTML report: written from stored results alone, self-contained, renders in Chromium."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import sbc.engine.task
import sbc.engine.worker
from sbc import registry
from sbc.backends import Sampling
from sbc.cli import main
from sbc.results.calibration import model_table
from scenarios import heights
from tests.helpers import run


@pytest.fixture(scope="module")
def conjugate_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("conjugate")
    conjugate = registry.get("conjugate")
    run(
        conjugate,
        conjugate.defaults,
        ["exact", "biased", "flaky"],
        120,
        out,
        seed=3,
        sampling=Sampling(chains=2, draws=200),
    )
    return out


def test_report_is_regenerated_from_stored_results_alone(conjugate_run, monkeypatch):
    """`sbc report` rewrites report.html without fitting anything."""

    def no_fitting(*args, **kwargs):
        raise AssertionError("the report must not fit")

    monkeypatch.setattr(sbc.engine.worker, "run_task", no_fitting)
    monkeypatch.setattr(sbc.engine.task, "fit_model", no_fitting)
    assert main(["report", str(conjugate_run)]) == 0
    html = (conjugate_run / "report.html").read_text()
    assert "Verdict by model" in html and "<svg" in html


def test_report_verdicts_and_run_details(conjugate_run):
    """The verdict marks the exact model calibrated, the biased one not, and lists failures."""
    main(["report", str(conjugate_run)])
    html = (conjugate_run / "report.html").read_text()
    verdict = {
        m: v for m, v in re.findall(r"<td class=l><b>(\w+)</b></td><td class=\"(ok|bad)\">", html)
    }
    assert verdict == {"exact": "ok", "biased": "bad", "flaky": "ok"}
    assert re.search(r"failed fits</dt><dd>\d+ of 360</dd>", html)
    assert "seed</dt><dd>3</dd>" in html


def test_report_is_self_contained(conjugate_run):
    """No scripts and nothing loaded over the network: it opens offline."""
    main(["report", str(conjugate_run)])
    html = (conjugate_run / "report.html").read_text()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing on CI (.ci/run installs Debian's chromium package)")
    pytest.skip("Chromium not installed (apt-get install chromium)")


def test_report_renders_in_headless_chromium(conjugate_run, tmp_path):
    """Headless Chromium renders the report to a screenshot that is not blank."""
    main(["report", str(conjugate_run)])
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,1800",
            f"--screenshot={shot}",
            (conjugate_run / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1800, 1400)
    assert (pixels < 200).mean() > 0.02  # text, tables and figures, not a white page
    assert pixels.std() > 20


def test_heights_verdict_marks_partial_calibrated_and_complete_not(tmp_path):
    """On a heights run the verdict table separates partial from complete pooling."""
    results = run(
        heights.SCENARIO,
        heights.SCENARIO.defaults,
        ["complete", "partial"],
        60,
        tmp_path,
        seed=5,
        sampling=Sampling(tune=400, draws=400),
        jobs=2,
    )
    table = model_table(results).set_index("model")
    assert table.loc["partial", "calibrated"]
    assert not table.loc["complete", "calibrated"]
    assert table.loc["complete", "coverage90"] < 0.7 < table.loc["partial", "coverage90"]


def test_report_size_does_not_grow_with_the_number_of_simulations(conjugate_run):
    """Past a few thousand simulations a report stops growing: ECDFs on a grid, dots thinned."""
    import json

    import pandas as pd

    from sbc.report.html import render

    results = pd.read_parquet(conjugate_run / "results.parquet")
    record = json.loads((conjugate_run / "run.json").read_text())
    rng = np.random.default_rng(0)

    def enlarged(times):
        copies = []
        for k in range(times):
            copy = results.copy()
            copy["simulation"] = copy["simulation"] + k * (results["simulation"].max() + 1)
            copy["pit"] = np.clip(copy["pit"] + rng.uniform(-0.01, 0.01, len(copy)), 0, 1)
            copies.append(copy)
        return pd.concat(copies, ignore_index=True)

    big = enlarged(60)
    small_html, big_html = render(enlarged(20), record), render(big, record)
    assert len(big_html) <= 1.1 * len(small_html) and len(big_html) < 2e6
    assert f"of {big['simulation'].nunique()} simulations drawn" in big_html
