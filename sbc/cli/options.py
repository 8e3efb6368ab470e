"""The ``sbc`` command's parser, built from option groups each declared once.

Every group is an argparse parent parser (:data:`GROUPS`); a command lists the groups it
takes, so an option reads and checks the same way in every command that has it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from sbc.backends import ADAPTATIONS, DEFAULTS


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        raise UsageError(message)


def count(minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum``, from command-line text."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def thin(text: str) -> int | None:
    """``ess`` (``None``: thin by the ESS) or a fixed thinning factor."""
    return None if text == "ess" else count(1)(text)


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def number(text: str) -> float:
    """A number (its range is checked where it is used)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def size(text: str) -> int:
    """A memory size in bytes: ``2G``, ``500M``, ``1.5GB``, ``800MiB`` or plain bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size (such as 2G or 500M)")
    value = float(match.group(1)) * 1024 ** "bkmgt".index((match.group(2) or "b").lower())
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive size, got {text}")
    return int(value)


def folder(text: str) -> Path:
    """A folder path (not checked for existence)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder path")
    return Path(text)


def _group(build: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    build(parent)
    return parent


def _settings(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a scenario setting (repeatable)",
    )
    p.add_argument(
        "--data",
        type=folder,
        default=None,
        metavar="FILE",
        help="data file, for scenarios with a real design (same as --set data=FILE)",
    )
    p.add_argument("--course", default=None, help="same as --set course=...")
    p.add_argument("--year", default=None, help="same as --set year=...")
    p.add_argument("--min-students", default=None, help="same as --set min_students=...")


def _size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--simulations", "-n", type=count(1), default=200, help="default: 200")
    p.add_argument("--seed", type=count(0), default=0, help="run seed (default: 0)")


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=folder, default=None, help="output folder (default: reports/...)")


def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=None, help="comma-separated models (default: all)")


def _inference(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inference",
        default=None,
        metavar="METHODS",
        help="comma-separated inference methods, each model fitted by each: nuts (default), "
        "advi, fullrank_advi, dadvi, laplace, pathfinder, and any of these with +psis (importance "
        "resampled); approximate fits are the models MODEL+METHOD",
    )


def _sampling(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    p.add_argument("--chains", type=count(1), default=None, help=f"default: {d.chains}")
    p.add_argument("--tune", type=count(0), default=None, help=f"default: {d.tune}")
    p.add_argument("--draws", type=count(1), default=None, help=f"default: {d.draws}")
    p.add_argument(
        "--target-accept",
        type=number,
        default=None,
        help=f"NUTS target acceptance rate, in (0, 1) (default: {d.target_accept})",
    )
    p.add_argument(
        "--adaptation",
        choices=ADAPTATIONS,
        default=None,
        help=f"mass-matrix adaptation (default: {d.adaptation})",
    )


def _workers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", "-j", type=count(1), default=None, help="default: all cores")
    p.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="local worker processes (default) or an existing Dask cluster",
    )
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler, tcp://host:port"
    )
    p.add_argument(
        "--max-worker-memory",
        type=size,
        default=None,
        metavar="SIZE",
        help="resident memory a local worker may use (2G, 500M); a simulation whose fit "
        "goes above it is recorded as an error and the run goes on",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or printed summary")


def _mutation(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="comma-separated correct models to mutate (default: partial, else the first "
        "PyMC or Bambi model)",
    )
    p.add_argument(
        "--operators", default=None, help="comma-separated mutation operators (default: all)"
    )


def _strata(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strata",
        type=count(2),
        default=None,
        metavar="K",
        help="equal-count strata of each data statistic (default: the run's own, else 3)",
    )


GROUPS: dict[str, argparse.ArgumentParser] = {
    name: _group(build)
    for name, build in {
        "settings": _settings,
        "size": _size,
        "out": _out,
        "models": _models,
        "inference": _inference,
        "sampling": _sampling,
        "workers": _workers,
        "mutation": _mutation,
        "strata": _strata,
    }.items()
}
"""Option groups by name; each command takes some of them as parents."""

SCENARIO_HELP = (
    "scenario: a name (see `sbc list`), a file my_scenario.py defining SCENARIO, or "
    "package.module:OBJECT"
)


def parser() -> Parser:
    """The ``sbc`` command's parser."""
    top = Parser(prog="sbc", description="Simulation-based calibration of hierarchical models.")
    commands = top.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, help: str, *groups: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[GROUPS[g] for g in groups])

    run = command(
        "run", "run (or resume) an SBC run",
        "size", "out", "models", "inference", "settings", "sampling", "workers", "strata",
    )  # fmt: skip
    run.add_argument("scenario", help=SCENARIO_HELP)
    run.add_argument(
        "--thin",
        type=thin,
        default=None,
        help="thinning factor before ranking, or 'ess' (default): from the ESS",
    )
    run.add_argument(
        "--no-test-quantities",
        dest="test_quantities",
        action="store_false",
        help="rank only the estimands, not the log-likelihood and other test quantities",
    )
    run.add_argument(
        "--no-prediction",
        dest="prediction",
        action="store_false",
        help="no held-out data, elpd or PSIS-LOO per fit (saves their cost per fit)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="delete sbc's files in the --out folder first (parts/, results, run.json, report)",
    )
    run.add_argument(
        "--fit-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="stop a fit running longer and record it as that fit's error",
    )
    run.add_argument(
        "--posterior",
        action="store_true",
        help="posterior SBC: parameters from the posterior given the scenario's real data, models "
        "refitted on the real plus simulated data (default --out reports/SCENARIO-posterior)",
    )
    run.add_argument(
        "--reference",
        default=None,
        metavar="MODEL",
        help="posterior SBC: the model whose posterior supplies the parameters "
        "(default: the scenario's reference model)",
    )
    run.add_argument(
        "--reference-draws",
        type=count(1),
        default=None,
        metavar="N",
        help="posterior SBC: draws per chain (4 chains) of the reference fit (default: 1000)",
    )
    mutants = command(
        "mutants",
        "run a correct model with its hand-written and generated mutants; report detection "
        "power and the simulations needed",
        "size", "out", "settings", "mutation", "inference", "sampling", "workers",
    )  # fmt: skip
    mutants.add_argument("scenario", help=SCENARIO_HELP)
    mutants.add_argument(
        "--no-generated",
        dest="generated",
        action="store_false",
        help="run the hand-written mutants only",
    )
    fit = command(
        "fit", "fit the models to a scenario's real data and validate them (one HTML page)",
        "out", "models", "settings", "sampling", "workers",
    )  # fmt: skip
    fit.add_argument("scenario", help="scenario with real data (alberta, a file ...)")
    fit.add_argument(
        "--replicates",
        type=count(1),
        default=500,
        metavar="M",
        help="data sets per predictive check (prior, and each model's posterior; default: 500)",
    )
    source = fit.add_mutually_exclusive_group()
    source.add_argument(
        "--sbc-run",
        type=folder,
        default=None,
        metavar="FOLDER",
        help="show the SBC verdicts of this stored run (same scenario and settings)",
    )
    source.add_argument(
        "--sbc",
        type=count(1),
        default=None,
        metavar="N",
        help="run a new SBC of N simulations at the real design, in OUT/sbc (default: no SBC run)",
    )
    listing = command(
        "list",
        "show scenarios, models and settings with defaults (and generated mutants)",
        "settings",
        "mutation",
    )
    listing.add_argument("scenario", nargs="?", default=None, help="only this scenario")
    listing.add_argument(
        "--mutants", action="store_true", help="also list the mutants generated from its model"
    )
    summary = command("summary", "print the calibration summary of a run folder")
    summary.add_argument("out", type=folder)
    report = command("report", "(re)write DIR/report.html from stored results", "strata")
    report.add_argument("out", type=folder)
    sweep = command(
        "sweep", "run (or resume) one SBC run per cell of a grid of settings", "out", "workers"
    )
    sweep.add_argument("spec", type=folder, help="sweep specification (TOML)")
    return top
