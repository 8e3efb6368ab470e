"""Reliability of a run folder: overwrite, corrupt folders, fit timeouts, kill -9 and resume."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbc import registry
from sbc.backends import Sampling
from sbc.cli import main
from sbc.results.schema import TIMING_COLUMNS
from sbc.results.store import RunStore
from tests.helpers import run

CONJUGATE = registry.get("conjugate")
SAMPLING = Sampling(chains=2, draws=100)


def _run(out, n=6, seed=3, **kwargs):
    return run(
        CONJUGATE, CONJUGATE.defaults, ["exact"], n, out, seed=seed, sampling=SAMPLING, **kwargs
    )


def _comparable(frame):
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    """The HTML report is not under test here; skipping it keeps these tests fast."""
    monkeypatch.setattr("sbc.report.html.write_report", lambda out, *a, **k: out / "report.html")


def _cli(out, *extra):
    argv = ["run", "conjugate", "-n", "4", "-j", "1", "--draws", "50", "--models", "exact"]
    return main([*argv, "--quiet", "--out", str(out), *extra])


def test_overwrite_starts_afresh_and_keeps_foreign_files(tmp_path, capsys):
    """--overwrite deletes only sbc's files, so a run with other settings can start there."""
    assert _cli(tmp_path) == 0
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "parts" / "sim-000099.arrow").write_text("stale")
    (tmp_path / "parts" / "sim-000098.parquet").write_text("stale, of an earlier version")
    assert _cli(tmp_path, "--seed", "5") == 2
    assert "other seed" in capsys.readouterr().err
    assert _cli(tmp_path, "--seed", "5", "--overwrite") == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert RunStore(tmp_path).finished() == {0, 1, 2, 3}
    assert json.loads((tmp_path / "run.json").read_text())["identity"]["seed"] == 5


def _broken_legacy_part(parts):
    """Simulation 1 stored only as a damaged Parquet part (the format of earlier versions)."""
    (parts / "sim-000001.arrow").unlink()
    (parts / "sim-000001.parquet").write_bytes(b"PAR1 broken")


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (lambda d: (d / "run.json").write_text("{not json"), "run.json", "cannot read"),
        (lambda d: (d / "run.json").write_text("[1, 2]"), "run.json", "not an sbc run record"),
        (lambda d: (d / "run.json").write_text('{"identity": 3}'), "run.json", "not an sbc run"),
        (
            lambda d: (d / "parts" / "sim-000001.arrow").write_bytes(b"ARROW1 broken"),
            "sim-000001.arrow",
            "cannot read",
        ),
        (
            lambda d: _broken_legacy_part(d / "parts"),
            "sim-000001.parquet",
            "cannot read",
        ),
        (lambda d: (d / "run.json").unlink(), "run.json is missing", "holds simulations"),
    ],
)
def test_corrupt_folder_is_a_one_line_error_suggesting_overwrite(
    tmp_path, capsys, damage, file, message
):
    """A damaged or foreign folder names the file, suggests --overwrite, and exits 2."""
    assert _cli(tmp_path) == 0
    damage(tmp_path)
    assert _cli(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and file in err and message in err and "--overwrite" in err
    assert _cli(tmp_path, "--overwrite") == 0


def test_orphaned_temporary_files_are_ignored_and_removed(tmp_path):
    """Half-written parts of a killed writer do not count, break nothing, and are cleaned up."""
    whole = _run(tmp_path / "whole")
    out = tmp_path / "resumed"
    _run(out, n=3)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = out / "parts" / f".sim-000004.arrow.{dead.stdout.strip()}.tmp"
    orphan.write_bytes(b"ARROW1 half")
    legacy = out / "parts" / f".sim-000005.parquet.{dead.stdout.strip()}.tmp"
    legacy.write_bytes(b"PAR1 half")
    (out / "parts" / "sim-junk.arrow").write_text("not a part name")
    (out / "parts" / "sim-junk.parquet").write_text("not a part name")
    assert RunStore(out).finished() == {0, 1, 2}
    resumed = _run(out)
    assert not orphan.exists() and not legacy.exists()
    pd.testing.assert_frame_equal(_comparable(whole), _comparable(resumed))


SLOW = '''
import dataclasses
import time

from scenarios.conjugate import SCENARIO as BASE
from sbc.backends.exact import ExactNormal


@dataclasses.dataclass(frozen=True)
class Slow:
    """The exact posterior, but stuck for a minute when the data mean is positive."""

    def compile(self, design, example):
        return self

    def fit(self, data, seed, sampling):
        if data["y"].mean() > 0:
            time.sleep(60)
        return ExactNormal(0.0, 1.0, 1.0).fit(data, seed, sampling)


SCENARIO = dataclasses.replace(
    BASE,
    name="slow",
    models=(BASE.models[0], dataclasses.replace(BASE.models[0], name="slow", backend=Slow())),
)
'''


@pytest.mark.parametrize("jobs", [1, 2])
def test_fit_timeout_records_the_stuck_fit_as_its_error(tmp_path, jobs):
    """A fit over --fit-timeout is stopped and recorded; other models and fits are unaffected."""
    path = tmp_path / "slow.py"
    path.write_text(textwrap.dedent(SLOW))
    scenario = registry.get(str(path))
    start = time.perf_counter()
    results = run(
        scenario,
        scenario.defaults,
        ["exact", "slow"],
        6,
        tmp_path / "out",
        sampling=SAMPLING,
        jobs=jobs,
        fit_timeout=0.3,
    )
    assert time.perf_counter() - start < 30
    slow = results[(results["model"] == "slow") & (results["estimand"] == "theta")]
    stuck = slow["true_value"].notna() & slow["error"].notna()
    assert 0 < stuck.sum() < len(slow)
    assert slow.loc[stuck, "error"].str.contains("FitTimeout: fit stopped after").all()
    assert results.loc[results["model"] == "exact", "error"].isna().all()


def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL of the whole run at a random moment, then the same command, gives the same table."""
    out = tmp_path / "killed"
    n = 150
    argv = ["run", "conjugate", "-n", str(n), "-j", "2", "--draws", "100", "--seed", "4"]
    argv += ["--models", "exact,biased", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbc.cli", *argv],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = out / "parts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("sim-*.arrow"))) >= 10:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(RunStore(out).finished())
    assert 10 <= done < n, done  # killed part-way
    assert not (out / "results.parquet").exists()
    sampling = Sampling(draws=100)
    models = ["exact", "biased"]
    rerun = run(CONJUGATE, CONJUGATE.defaults, models, n, out, seed=4, sampling=sampling, jobs=2)
    whole = run(
        CONJUGATE, CONJUGATE.defaults, models, n, tmp_path / "whole", seed=4, sampling=sampling
    )
    pd.testing.assert_frame_equal(_comparable(whole), _comparable(rerun))


class _Accepted(Exception):
    """Raised by the stubbed runner: the command line was valid."""


def _accept(*args, **kwargs):
    raise _Accepted


WORDS = st.sampled_from(
    [
        "run", "sweep", "list", "summary", "report", "frobnicate", "conjugate", "nope",
        "x.py", "os:path", "pkg.mod:OBJ", "-n", "--simulations", "-j", "--jobs", "--seed",
        "--out", "--set", "--models", "--chains", "--tune", "--draws", "--target-accept",
        "--thin", "--fit-timeout", "--backend", "--scheduler", "--overwrite", "--quiet",
        "--no-test-quantities", "0", "-1", "3", "1e9", "nan", "inf", "ess", "dask", "loky",
        "n=0", "n=2", "prior_sd=nan", "prior_sd=-1", "=", "n", "x=1", "exact,", "exact,magic",
        "n=100000000000000000000000000", "/", "", "\n", "a\nb", "\x00",
    ]
)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(argv=st.lists(WORDS | st.text(max_size=8), max_size=8))
def test_random_command_lines_never_give_a_traceback(argv, monkeypatch, tmp_path):
    """Any command line either is accepted or gets one `sbc: error:` line and exit 2."""
    monkeypatch.setattr("sbc.engine.runner.run", _accept)
    monkeypatch.setattr("sbc.workflows.sweep.run_sweep", _accept)
    monkeypatch.chdir(tmp_path)
    argv = [a for a in argv if a not in ("-h", "--help") and not a.startswith("--h")]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except _Accepted:
            return
    assert code in (0, 2)
    if code == 2:
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("sbc: error: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "conjugate", "--backend", "dask"],
            "the dask backend needs a scheduler address (--scheduler)",
        ),
        (
            ["run", "conjugate", "--scheduler", "tcp://x:1"],
            "a scheduler address needs the dask backend (--backend dask)",
        ),
        (["run", "conjugate", "--fit-timeout", "0"], "must be a positive number of seconds"),
        (["run", "conjugate", "--fit-timeout", "soon"], "'soon' is not a number of seconds"),
        (["run", "conjugate", "--models", "exact,,biased"], "--models needs comma-separated names"),
        (["run", "conjugate", "--models", "exact,exact"], "--models names exact twice"),
        (["run", "conjugate", "--set", "n=" + "9" * 30], "a setting value is out of range"),
        (["run", "conjugate", "--out", "a\x00b"], "is not a folder path"),
        (["run", "a\nb"], "unknown scenario 'a\\nb'"),
        (["run", "conjugate", "x\ny"], "unrecognized arguments: x\\ny"),
        (["sweep", "/nonexistent/spec.toml"], "cannot read sweep spec /nonexistent/spec.toml"),
    ],
)
def test_more_bad_input_gives_one_line_error_and_exit_2(argv, message, capsys):
    """Backend, timeout, model list, overflowing settings and line breaks: one line, exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sbc: error: ") and message in err, err


def test_out_folder_that_is_a_file_is_refused(tmp_path, capsys):
    """--out naming an existing file is an error, not a traceback."""
    (tmp_path / "file").write_text("x")
    assert _cli(tmp_path / "file") == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_bad_sweep_spec_in_a_subprocess_has_no_traceback(tmp_path):
    """The installed command reports a malformed spec file in one line, exit 2."""
    spec = tmp_path / "bad.toml"
    spec.write_text('scenario = "conjugate"\nsimulations = "many"\n[grid]\nn = [1]\n')
    proc = subprocess.run(
        [sys.executable, "-m", "sbc.cli", "sweep", str(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"sbc: error: {spec}: simulations must be a whole number of at least 1, got 'many'\n"
    )
