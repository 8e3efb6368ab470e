"""Command line: ``sbc run``, ``sweep``, ``mutants``, ``fit``, ``list``, ``summary``, ``report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pandas as pd

import scenarios
from sbc.backends import ADAPTATIONS, DEFAULTS, Sampling
from sbc.scenario import Scenario, SettingError
from sbc.store import RunStore, StoreError

if TYPE_CHECKING:
    from sbc.posterior_sbc import Reference


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _folder(text: str) -> Path:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder path")
    return Path(text)


def _parser() -> _Parser:
    parser = _Parser(prog="sbc", description="Simulation-based calibration of hierarchical models.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) an SBC run")
    run.add_argument(
        "scenario",
        help="scenario: a name (see `sbc list`), a file my_scenario.py defining SCENARIO, "
        "or package.module:OBJECT",
    )
    run.add_argument("--simulations", "-n", type=_count(1), default=200, help="default: 200")
    run.add_argument("--jobs", "-j", type=_count(1), default=None, help="default: all cores")
    run.add_argument("--seed", type=_count(0), default=0, help="run seed (default: 0)")
    run.add_argument("--out", type=_folder, default=None, help="default: reports/SCENARIO")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a scenario setting (repeatable)",
    )
    run.add_argument("--models", default=None, help="comma-separated models (default: all)")
    _add_sampling(run)
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
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="delete sbc's files in the --out folder first (parts/, results, run.json, report)",
    )
    run.add_argument(
        "--fit-timeout",
        type=_seconds,
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
        type=_count(1),
        default=None,
        metavar="N",
        help="posterior SBC: draws per chain (4 chains) of the reference fit (default: 1000)",
    )
    _add_strata(run, "tertiles")
    _add_backend(run)
    _add_data(run)
    mutants = commands.add_parser(
        "mutants",
        help="run a correct model with its hand-written and generated mutants; report "
        "detection power and the simulations needed",
    )
    mutants.add_argument("scenario", help="scenario name, file or module:OBJECT")
    mutants.add_argument("--simulations", "-n", type=_count(1), default=200, help="default: 200")
    mutants.add_argument("--jobs", "-j", type=_count(1), default=None, help="default: all cores")
    mutants.add_argument("--seed", type=_count(0), default=0, help="run seed (default: 0)")
    mutants.add_argument(
        "--out", type=_folder, default=None, help="default: reports/SCENARIO-mutants"
    )
    mutants.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )
    _add_mutation(mutants)
    mutants.add_argument(
        "--no-generated",
        dest="generated",
        action="store_false",
        help="run the hand-written mutants only",
    )
    _add_sampling(mutants)
    mutants.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data(mutants)
    fit = commands.add_parser("fit", help="fit the models to a scenario's real data (alberta)")
    fit.add_argument("scenario", help="scenario with real data (alberta)")
    fit.add_argument("--out", type=_folder, default=None, help="default: reports/SCENARIO-fit")
    fit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    fit.add_argument("--models", default=None, help="comma-separated models (default: all)")
    _add_sampling(fit, chains=4)
    _add_data(fit)
    listing = commands.add_parser(
        "list", help="show scenarios, models and settings with defaults (and generated mutants)"
    )
    listing.add_argument("scenario", nargs="?", default=None, help="only this scenario")
    listing.add_argument(
        "--mutants", action="store_true", help="also list the mutants generated from its model"
    )
    listing.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )
    _add_mutation(listing)
    _add_data(listing)
    show = commands.add_parser("summary", help="print the calibration summary of a run folder")
    show.add_argument("out", type=_folder)
    report = commands.add_parser("report", help="(re)write DIR/report.html from stored results")
    report.add_argument("out", type=_folder)
    _add_strata(report, "the run's own")
    sweep = commands.add_parser(
        "sweep", help="run (or resume) one SBC run per cell of a grid of settings"
    )
    sweep.add_argument("spec", type=_folder, help="sweep specification (TOML)")
    sweep.add_argument("--jobs", "-j", type=_count(1), default=None, help="default: all cores")
    sweep.add_argument("--out", type=_folder, default=None, help="default: reports/sweeps/SPEC")
    sweep.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_backend(sweep)
    return parser


def _add_sampling(command: argparse.ArgumentParser, chains: int | None = None) -> None:
    """Sampler options; unset ones take each model's own setting, else the default."""
    d = DEFAULTS
    command.add_argument(
        "--chains", type=_count(1), default=chains, help=f"default: {chains or d.chains}"
    )
    command.add_argument("--tune", type=_count(0), default=None, help=f"default: {d.tune}")
    command.add_argument("--draws", type=_count(1), default=None, help=f"default: {d.draws}")
    command.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help=f"NUTS target acceptance rate, in (0, 1) (default: {d.target_accept})",
    )
    command.add_argument(
        "--adaptation",
        choices=ADAPTATIONS,
        default=None,
        help=f"mass-matrix adaptation (default: {d.adaptation})",
    )


def _add_data(command: argparse.ArgumentParser) -> None:
    """Shortcuts for scenarios built on a data file (alberta): --data, --course, ..."""
    command.add_argument(
        "--data",
        type=_folder,
        default=None,
        metavar="FILE",
        help="data file, for scenarios with a real design (same as --set data=FILE)",
    )
    command.add_argument("--course", default=None, help="same as --set course=...")
    command.add_argument("--year", default=None, help="same as --set year=...")
    command.add_argument("--min-students", default=None, help="same as --set min_students=...")


def _add_mutation(command: argparse.ArgumentParser) -> None:
    """Which correct models to mutate, with which operators (``sbc mutants``, ``sbc list``)."""
    command.add_argument(
        "--model",
        default=None,
        help="comma-separated correct models to mutate (default: partial, else the first "
        "PyMC or Bambi model)",
    )
    command.add_argument(
        "--operators", default=None, help="comma-separated mutation operators (default: all)"
    )


def _add_strata(command: argparse.ArgumentParser, shown: str) -> None:
    """``--strata K`` (unset: tertiles for a run, the run's own for a report)."""
    command.add_argument(
        "--strata",
        type=_count(2),
        default=None,
        metavar="K",
        help=f"equal-count strata of each data statistic (default: {shown})",
    )


def _add_backend(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="local worker processes (default) or an existing Dask cluster",
    )
    command.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler, tcp://host:port"
    )


def _check_backend(args: argparse.Namespace) -> None:
    if args.backend == "dask" and not args.scheduler:
        raise UsageError("--backend dask needs --scheduler ADDRESS")
    if args.backend != "dask" and args.scheduler:
        raise UsageError("--scheduler needs --backend dask")
    if args.backend == "dask" and getattr(args, "fit_timeout", None) is not None:
        raise UsageError("--fit-timeout is not available with --backend dask")


def _overrides(pairs: Sequence[str], args: argparse.Namespace | None = None) -> dict[str, str]:
    values = {}
    shortcuts = {"data": "data", "course": "course", "year": "year", "min_students": "min_students"}
    for attribute, key in shortcuts.items():
        if args is not None and getattr(args, attribute, None) is not None:
            values[key] = str(getattr(args, attribute))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set needs KEY=VALUE, got {pair!r}")
        values[key.strip()] = value.strip()
    return values


def _print_summary(
    results: pd.DataFrame,
    strata: pd.DataFrame | None = None,
    estimands: pd.DataFrame | None = None,
) -> None:
    from sbc.calibration import ALPHA, estimand_table, model_table
    from sbc.stratified import stratified_verdict

    if estimands is None:
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
        "verdict",
        "worst",
        "coverage90",
        "rel_rmse",
        "error_share",
        "healthy_share",
        "divergent_share",
        "seconds_per_100_ess",
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
        print(f"\nverdict (pot_c uniformity test, Holm-adjusted, family-wise level {ALPHA}):")
        print(models[verdict].to_string(index=False))
        if strata is not None and not strata.empty:
            print("\nby data stratum (Holm over every quantity, statistic and stratum):")
            print(stratified_verdict(strata).to_string(index=False))


def _sampling(args: argparse.Namespace) -> Sampling:
    if args.target_accept is not None and not 0 < args.target_accept < 1:
        raise UsageError(f"--target-accept must lie in (0, 1), got {args.target_accept}")
    return Sampling(
        chains=args.chains,
        tune=args.tune,
        draws=args.draws,
        target_accept=args.target_accept,
        adaptation=args.adaptation,
    )


def _models(scenario: Scenario, text: str | None) -> list[str]:
    if text is None:
        return scenario.default_models
    models = [m.strip() for m in text.split(",")]
    if not all(models):
        raise UsageError(f"--models needs comma-separated model names, got {text!r}")
    if len(set(models)) < len(models):
        raise UsageError(f"--models names a model twice: {text!r}")
    for name in models:
        scenario.model(name)
    return models


def _reference(
    args: argparse.Namespace, scenario: Scenario, settings: Mapping[str, object]
) -> Reference | None:
    """Posterior SBC's reference (checked), or ``None`` for prior SBC."""
    if not args.posterior:
        if args.reference is not None or args.reference_draws is not None:
            raise UsageError("--reference and --reference-draws need --posterior")
        return None
    from sbc import posterior_sbc

    name = args.reference or posterior_sbc.default_reference(scenario)
    sampling = Sampling(
        chains=4,
        tune=args.tune,
        draws=args.reference_draws or DEFAULTS.draws,
        target_accept=args.target_accept,
    )
    reference = posterior_sbc.Reference(name, sampling)
    posterior_sbc.check(scenario, settings, reference)
    return reference


def _run(args: argparse.Namespace) -> None:
    from sbc.checks import check_scenario
    from sbc.runner import default_jobs, run

    _check_backend(args)
    sampling = _sampling(args)
    scenario = scenarios.get(args.scenario)
    settings = scenarios.resolve_settings(scenario, _overrides(args.overrides, args))
    models = _models(scenario, args.models)
    check_scenario(scenario, settings, models)
    _check_generated(scenario, settings, models)
    reference = _reference(args, scenario, settings)
    name = scenarios.display_name(scenario) + ("-posterior" if reference else "")
    out = args.out if args.out is not None else Path("reports") / name
    _import_in_background("sbc.calibration", "sbc.stratified", "sbc.report.html")
    try:
        results = run(
            scenario,
            settings,
            models,
            args.simulations,
            out,
            seed=args.seed,
            sampling=sampling,
            thin=args.thin,
            jobs=args.jobs or default_jobs(),
            progress=not args.quiet,
            test_quantities=args.test_quantities,
            fit_timeout=args.fit_timeout,
            backend=args.backend,
            scheduler=args.scheduler,
            overwrite=args.overwrite,
            posterior=reference,
        )
    except KeyboardInterrupt:
        done = len(RunStore(out).finished())
        print(
            f"sbc: interrupted; {done} simulations are saved in {out}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    from sbc.calibration import estimand_table
    from sbc.report.html import write_report
    from sbc.stats.strata import STRATA
    from sbc.stratified import strata_table

    estimands = estimand_table(results)
    estimands.to_csv(out / "summary.csv", index=False)
    k = args.strata or STRATA
    strata = strata_table(results, k)
    strata.to_csv(out / "strata.csv", index=False)
    RunStore(out).annotate("strata", k)  # the report (and its rewrites) use it too
    report = write_report(out, results=results, estimands=estimands, strata_table=strata)
    if not args.quiet:
        _print_summary(results, strata, estimands)
        print(f"\nresults: {out / 'results.parquet'}\nreport:  {report}")


def _import_in_background(*modules: str) -> None:
    """Import what the end of a run needs while the workers fit (the main process waits)."""
    import importlib
    import threading

    def load() -> None:
        for module in modules:
            importlib.import_module(module)

    threading.Thread(target=load, daemon=True).start()


def _list(args: argparse.Namespace) -> None:
    if args.mutants and args.scenario is None:
        raise UsageError("--mutants needs a SCENARIO: sbc list SCENARIO --mutants")
    for name in [args.scenario] if args.scenario else scenarios.names():
        scenario = scenarios.get(name)
        print(f"{scenarios.display_name(scenario)}: {scenario.description}")
        print("  models:")
        width = max(len(m.name) for m in scenario.models) + 2
        for model in scenario.models:
            mark = " (mutant: planted bug)" if model.mutant else ""
            print(f"    {model.name:<{width}}{model.description}{mark}")
        if scenario.data_statistics:
            stats = ", ".join(s.name for s in scenario.data_statistics)
            print(f"  data statistics (report strata): {stats}")
        if scenario.real_data is not None and scenario.augment is not None:
            print(f"  posterior SBC (--posterior): reference model {scenario.reference_model}")
        print("  settings (--set KEY=VALUE):")
        width = max(len(s.name) for s in scenario.settings) + 2
        value = max(len(str(s.default)) for s in scenario.settings) + 2
        for s in scenario.settings:
            print(f"    {s.name:<{width}}{s.default!s:<{value}}{s.description}")
        if args.mutants:
            from sbc.report.mutants_text import listing

            settings = scenarios.resolve_settings(scenario, _overrides(args.overrides, args))
            print("\n".join(listing(_plan(scenario, settings, args))))


def _check_generated(scenario: Scenario, settings: Mapping[str, object], models: list[str]) -> None:
    """Generated mutants named in ``--models`` must apply to their model: one line if not."""
    from sbc.mutate import MutationError, check_generated

    try:
        check_generated(scenario, settings, models)
    except MutationError as exc:
        raise UsageError(f"scenario {scenarios.display_name(scenario)}: {exc}") from None


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names) or len(set(names)) < len(names):
        raise UsageError(f"{option} needs distinct comma-separated names, got {text!r}")
    return names


def _plan(scenario: Scenario, settings: Mapping[str, object], args: argparse.Namespace):
    """The models of a mutants run (correct, hand-written, generated), as bad input in one line."""
    from sbc.mutants import plan
    from sbc.mutate import MutationError

    try:
        return plan(
            scenario,
            settings,
            _names(args.model, "--model"),
            _names(args.operators, "--operators"),
            getattr(args, "generated", True),
        )
    except MutationError as exc:
        raise UsageError(f"scenario {scenarios.display_name(scenario)}: {exc}") from None


def _mutants(args: argparse.Namespace) -> None:
    from sbc.checks import check_scenario
    from sbc.mutants import analyse
    from sbc.report.html import write_report
    from sbc.report.mutants_html import write_detection_report
    from sbc.report.mutants_text import recommendation
    from sbc.runner import default_jobs, run

    sampling = _sampling(args)
    scenario = scenarios.get(args.scenario)
    settings = scenarios.resolve_settings(scenario, _overrides(args.overrides, args))
    chosen = _plan(scenario, settings, args)
    catalogue = chosen.catalogue
    if not len(catalogue) or (catalogue["role"] == "correct").all():
        raise UsageError(f"scenario {scenarios.display_name(scenario)} has no mutants to run")
    check_scenario(scenario, settings, chosen.models)
    out = args.out or Path("reports") / f"{scenarios.display_name(scenario)}-mutants"
    results = run(
        scenario,
        settings,
        chosen.models,
        args.simulations,
        out,
        seed=args.seed,
        sampling=sampling,
        jobs=args.jobs or default_jobs(),
        progress=not args.quiet,
    )
    analysis = analyse(results, catalogue, seed=args.seed)
    drawn = set(catalogue.loc[catalogue["role"] != "generated", "model"])
    write_report(out, results=results[results["model"].isin(drawn)])
    notes = [f"mutated: {base}, as {why}" for base, why in chosen.reasons.items()]
    notes += [f"settings: {settings}", f"seed {args.seed}", f"sampler: {sampling}"]
    path = write_detection_report(
        out, analysis, chosen.skipped, scenarios.display_name(scenario), notes
    )
    columns = ["model", "status", "min_p_holm", "revealed_by", "needed"]
    with pd.option_context(
        "display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.3g}".format
    ):
        print(analysis.table[columns].to_string(index=False))
    print("\n" + "\n".join([*notes[: len(chosen.reasons)], *recommendation(analysis)]))
    print(f"\ndetection report: {path}")


def _fit(args: argparse.Namespace) -> None:
    from sbc.realfit import fit_real, write_fit

    scenario = scenarios.get(args.scenario)
    if scenario.real_data is None:
        raise UsageError(f"scenario {scenarios.display_name(scenario)} has no real data to fit")
    settings = scenarios.resolve_settings(scenario, _overrides(args.overrides, args))
    models = _models(scenario, args.models)
    table = fit_real(scenario, settings, models, _sampling(args))
    out = args.out or Path("reports") / f"{scenarios.display_name(scenario)}-fit"
    print(write_fit(out, scenario, settings, table))


def _summary(out: Path) -> None:
    from sbc.stratified import strata_table

    results = RunStore(out).results()
    _print_summary(results, strata_table(results))


def _report(out: Path, strata: int | None = None) -> None:
    from sbc.report.html import write_report

    print(write_report(out, strata))


def _sweep(args: argparse.Namespace) -> None:
    from sbc.runner import default_jobs
    from sbc.sweep import load_spec, run_sweep

    _check_backend(args)
    spec = load_spec(args.spec)
    out = args.out if args.out is not None else Path("reports") / "sweeps" / args.spec.stem
    index = run_sweep(
        spec,
        out,
        jobs=args.jobs or default_jobs(),
        progress=not args.quiet,
        backend=args.backend,
        scheduler=args.scheduler,
    )
    if not args.quiet:
        print(f"sweep report: {index}")


def _one_line(message: object) -> str:
    """The message on one line: line breaks shown escaped."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sbc`` command; returns the exit code."""
    from sbc.runner import RunError
    from sbc.sweep import SpecError

    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            _run(args)
        elif args.command == "sweep":
            _sweep(args)
        elif args.command == "mutants":
            _mutants(args)
        elif args.command == "fit":
            _fit(args)
        elif args.command == "list":
            _list(args)
        elif args.command == "report":
            _report(args.out, args.strata)
        else:
            _summary(args.out)
    except (UsageError, SettingError, StoreError, SpecError) as exc:
        print(f"sbc: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"sbc: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into a pager or `head` that closed early
        sys.stderr.close()
    except KeyboardInterrupt:  # every finished simulation is already on disk
        print(
            "sbc: interrupted; finished simulations are saved: run the same command again "
            "to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def console() -> NoReturn:
    """The ``sbc`` command: :func:`main`, then its idle workers stopped, then exit."""
    code = main()
    runner = sys.modules.get("sbc.runner")  # only commands that ran workers imported it
    if runner is not None:
        runner.release_workers()
    sys.exit(code)


if __name__ == "__main__":
    console()
