"""Command line: ``sbc run``, ``sbc list``, ``sbc summary`` and ``sbc report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pandas as pd

import scenarios
from sbc.backends import Sampling
from sbc.calibration import ALPHA, estimand_table, model_table
from sbc.report.html import write_report
from sbc.scenario import SettingError
from sbc.store import RunStore, StoreError


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _thin(text: str) -> int | None:
    return None if text == "ess" else _count(1)(text)


def _parser() -> _Parser:
    parser = _Parser(prog="sbc", description="Simulation-based calibration of hierarchical models.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) an SBC run")
    run.add_argument("scenario", help="scenario name (see `sbc list`)")
    run.add_argument("--simulations", "-n", type=_count(1), default=200, help="default: 200")
    run.add_argument("--jobs", "-j", type=_count(1), default=None, help="default: all cores")
    run.add_argument("--seed", type=_count(0), default=0, help="run seed (default: 0)")
    run.add_argument("--out", type=Path, default=None, help="default: reports/SCENARIO")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a scenario setting (repeatable)",
    )
    run.add_argument("--models", default=None, help="comma-separated models (default: all)")
    run.add_argument("--chains", type=_count(1), default=Sampling.chains)
    run.add_argument("--tune", type=_count(0), default=Sampling.tune)
    run.add_argument("--draws", type=_count(1), default=Sampling.draws)
    run.add_argument(
        "--target-accept",
        type=float,
        default=Sampling.target_accept,
        help="NUTS target acceptance rate, in (0, 1)",
    )
    run.add_argument(
        "--thin",
        type=_thin,
        default=None,
        help="thinning factor before ranking, or 'ess' (default): from the ESS",
    )
    run.add_argument(
        "--no-test-quantities",
        dest="test_quantities",
        action="store_false",
        help="rank only the estimands, not the log-likelihood and other test quantities",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar or printed summary")
    commands.add_parser("list", help="show scenarios, models and settings with defaults")
    show = commands.add_parser("summary", help="print the calibration summary of a run folder")
    show.add_argument("out", type=Path)
    report = commands.add_parser("report", help="(re)write DIR/report.html from stored results")
    report.add_argument("out", type=Path)
    return parser


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set needs KEY=VALUE, got {pair!r}")
        values[key.strip()] = value.strip()
    return values


def _print_summary(results: pd.DataFrame) -> None:
    estimands = estimand_table(results)
    models = model_table(results, estimands)
    columns = [
        "model",
        "estimand",
        "fits",
        "errors",
        "divergent_share",
        "p_ecdf",
        "p_holm",
        "coverage90",
        "bias",
        "rmse",
    ]
    verdict = [
        "model",
        "calibrated",
        "worst",
        "coverage90",
        "rel_rmse",
        "divergent_share",
        "error_share",
    ]
    with pd.option_context(
        "display.width",
        200,
        "display.max_rows",
        500,
        "display.max_colwidth",
        80,
        "display.float_format",
        "{:.3g}".format,
    ):
        print(estimands[columns].to_string(index=False))
        print(f"\nverdict (Holm-adjusted simultaneous ECDF test at family-wise level {ALPHA}):")
        print(models[verdict].to_string(index=False))


def _sampling(args: argparse.Namespace) -> Sampling:
    if not 0 < args.target_accept < 1:
        raise UsageError(f"--target-accept must lie in (0, 1), got {args.target_accept}")
    return Sampling(
        chains=args.chains, tune=args.tune, draws=args.draws, target_accept=args.target_accept
    )


def _run(args: argparse.Namespace) -> None:
    from sbc.runner import default_jobs, run

    scenario = scenarios.get(args.scenario)
    settings = scenario.resolve_settings(_overrides(args.overrides))
    models = [m.strip() for m in args.models.split(",")] if args.models else scenario.default_models
    for name in models:
        scenario.model(name)
    out = args.out if args.out is not None else Path("reports") / scenario.name
    try:
        results = run(
            scenario,
            settings,
            models,
            args.simulations,
            out,
            seed=args.seed,
            sampling=_sampling(args),
            thin=args.thin,
            jobs=args.jobs or default_jobs(),
            progress=not args.quiet,
            test_quantities=args.test_quantities,
        )
    except KeyboardInterrupt:
        done = len(RunStore(out).finished())
        print(
            f"sbc: interrupted; {done} simulations are saved in {out}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    estimand_table(results).to_csv(out / "summary.csv", index=False)
    report = write_report(out)
    if not args.quiet:
        _print_summary(results)
        print(f"\nresults: {out / 'results.parquet'}\nreport:  {report}")


def _list() -> None:
    for name in scenarios.names():
        scenario = scenarios.get(name)
        print(f"{scenario.name}: {scenario.description}")
        print("  models:")
        for model in scenario.models:
            mark = " (mutant: planted bug)" if model.mutant else ""
            print(f"    {model.name:<16} {model.description}{mark}")
        print("  settings (--set KEY=VALUE):")
        for s in scenario.settings:
            print(f"    {s.name:<18} {s.default!s:<8} {s.description}")


def _summary(out: Path) -> None:
    _print_summary(RunStore(out).results())


def _report(out: Path) -> None:
    print(write_report(out))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sbc`` command; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            _run(args)
        elif args.command == "list":
            _list()
        elif args.command == "report":
            _report(args.out)
        else:
            _summary(args.out)
    except (UsageError, SettingError, StoreError) as exc:
        print(f"sbc: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
