import re
import subprocess
import sys

import pandas as pd
import pytest

from sbc.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "unknown scenario 'nope'"),
        (["run", "conjugate", "--simulations", "0"], "must be at least 1, got 0"),
        (["run", "conjugate", "--simulations", "-3"], "must be at least 1, got -3"),
        (["run", "conjugate", "--jobs", "two"], "'two' is not a whole number"),
        (["run", "conjugate", "--set", "sides=3"], "no setting 'sides'"),
        (["run", "conjugate", "--set", "n"], "--set needs KEY=VALUE"),
        (["run", "conjugate", "--set", "prior_sd=-1"], "prior_sd=-1.0: must be positive"),
        (["run", "conjugate", "--models", "exact,magic"], "no model 'magic'"),
        (["run", "conjugate", "--target-accept", "1.5"], "target_accept must lie in (0, 1)"),
        (["run", "conjugate", "--thin", "0"], "must be at least 1"),
        (["frobnicate"], "invalid choice"),
        (["summary", "/nonexistent/run"], "no results in /nonexistent/run"),
        (["report", "/nonexistent/run"], "no results in /nonexistent/run"),
    ],
)
def test_bad_input_gives_one_line_error_and_exit_2(argv, message, capsys, tmp_path):
    """Bad input is refused with exit code 2 and one line on stderr naming the problem."""
    assert main([*argv, "--out", str(tmp_path)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sbc: error: ")
    assert message in err


def test_unreadable_results_file_is_a_one_line_error(tmp_path, capsys):
    """A corrupt results file is reported, not a traceback."""
    (tmp_path / "results.parquet").write_text("not parquet")
    assert main(["summary", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_run_writes_results_and_summary_and_list_shows_settings(tmp_path, capsys):
    """`sbc run` stores results and a summary; `sbc list` shows models and defaults."""
    out = tmp_path / "run"
    argv = ["run", "conjugate", "-n", "20", "-j", "1", "--draws", "50", "--out", str(out)]
    argv += ["--models", "exact,biased,overconfident,flaky,prior_only"]  # not the PyMC one
    assert main([*argv, "--quiet", "--set", "n=3"]) == 0
    assert len(pd.read_parquet(out / "results.parquet")) == 20 * 5 * 2  # theta, loglik
    assert set(pd.read_csv(out / "summary.csv")["model"]) == {
        "exact",
        "biased",
        "overconfident",
        "flaky",
        "prior_only",
    }
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "heights:" in listing and "partial_bambi" in listing
    assert re.search(r"n_per_group +20 +people per country", listing)


def test_command_line_error_has_no_traceback(tmp_path):
    """The installed command reports bad input without a Python traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbc.cli",
            "run",
            "heights",
            "--set",
            "n_groups=0",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "sbc: error: setting n_groups=0: must be at least 1\n"


def test_interrupt_of_any_command_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    """Ctrl-C during `sbc mutants` says the finished simulations are saved, no traceback."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sbc.engine.runner.run", interrupted)
    assert main(["mutants", "heights", "--out", str(tmp_path), "-n", "5"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "finished simulations are saved" in err
