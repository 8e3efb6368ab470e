"""What each ``sbc`` command does with its parsed options: build the run, call a workflow.

Every command that runs simulations builds a :class:`~sbc.engine.spec.RunSpec` and an
:class:`~sbc.engine.spec.Execution` from its options (the same checks as a sweep spec's
and ``check_calibration``'s) and calls a workflow of :mod:`sbc.workflows`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sbc import registry
from sbc.backends import DEFAULTS, FIELDS, Sampling
from sbc.cli.options import UsageError
from sbc.engine.spec import Execution, RunSpec, default_jobs
from sbc.results.store import RunStore

SHORTCUTS = ("data", "course", "year", "min_students")
"""Options that stand for ``--set KEY=VALUE`` (scenarios built on a data file)."""


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """The ``--set`` values and their shortcuts, as text by setting name."""
    values = {k: str(getattr(args, k)) for k in SHORTCUTS if getattr(args, k, None) is not None}
    for pair in args.overrides:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set needs KEY=VALUE, got {pair!r}")
        values[key.strip()] = value.strip()
    return values


def names(text: str | None, option: str) -> list[str] | None:
    """Comma-separated names, or ``None``; one line if one is empty or repeated."""
    if text is None:
        return None
    found = [n.strip() for n in text.split(",")]
    if not all(found):
        raise UsageError(f"{option} needs comma-separated names, got {text!r}")
    twice = [n for n in found if found.count(n) > 1]
    if twice:
        raise UsageError(f"{option} names {twice[0]} twice")
    return found


def sampling(args: argparse.Namespace, chains: int | None = None) -> Sampling:
    """The sampler options (checked by :class:`~sbc.backends.Sampling` itself)."""
    return Sampling(
        chains=args.chains or chains,
        tune=args.tune,
        draws=args.draws,
        target_accept=args.target_accept,
        adaptation=args.adaptation,
    )


def execution(args: argparse.Namespace) -> Execution:
    """Where and how the command's simulations run.

    Local runs always use worker processes (``--jobs 1`` too), so that a fit that kills
    its process or outgrows ``--max-worker-memory`` costs that simulation, not the run.
    """
    return Execution(
        jobs=args.jobs or default_jobs(),
        backend=args.backend,
        scheduler=args.scheduler,
        fit_timeout=getattr(args, "fit_timeout", None),
        max_worker_memory=args.max_worker_memory,
        isolate=True,
        progress=not args.quiet,
    )


def spec(args: argparse.Namespace, models: Sequence[str] | None = None) -> RunSpec:
    """The run the options describe."""
    return RunSpec.build(
        args.scenario,
        settings=overrides(args),
        models=models if models is not None else names(getattr(args, "models", None), "--models"),
        simulations=args.simulations,
        seed=args.seed,
        sampling=sampling(args),
        thin=getattr(args, "thin", None),
        test_quantities=getattr(args, "test_quantities", True),
        inference=names(getattr(args, "inference", None), "--inference"),
        prediction=getattr(args, "prediction", True),
    )


def run(args: argparse.Namespace) -> None:
    """``sbc run``: check, run (or resume), write the folder, print the summary."""
    from sbc.workflows.run import check, run_sbc

    built = spec(args)
    run_execution = execution(args)
    parameters = _posterior(args, built)
    out = args.out or Path("reports") / (built.name + ("-posterior" if parameters else ""))
    check(built)
    _import_in_background("sbc.results.calibration", "sbc.results.strata", "sbc.report.html")
    try:
        outcome = run_sbc(
            built,
            out,
            run_execution,
            overwrite=args.overwrite,
            strata=args.strata,
            parameters=parameters,
        )
    except KeyboardInterrupt:
        done = len(RunStore(out).finished())
        print(
            f"sbc: interrupted; {done} simulations are saved in {out}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    if not args.quiet:
        print_summary(outcome.results, outcome.strata, outcome.quantities)
        print(f"\nresults: {out / 'results.parquet'}\nreport:  {outcome.report}")


def _posterior(args: argparse.Namespace, built: RunSpec):
    """Posterior SBC's parameter source (checked), or ``None`` for prior SBC."""
    if not args.posterior:
        if args.reference is not None or args.reference_draws is not None:
            raise UsageError("--reference and --reference-draws need --posterior")
        return None
    from sbc.workflows import posterior

    name = args.reference or posterior.default_reference(built.scenario)
    reference_sampling = Sampling(
        chains=4,
        tune=args.tune,
        draws=args.reference_draws or DEFAULTS.draws,
        target_accept=args.target_accept,
    )
    return posterior.parameters(built, posterior.Reference(name, reference_sampling))


def _import_in_background(*modules: str) -> None:
    """Import what the end of a run needs while the workers fit (the main process waits)."""
    import importlib
    import threading

    def load() -> None:
        for module in modules:
            importlib.import_module(module)

    threading.Thread(target=load, daemon=True).start()


def print_summary(
    results: pd.DataFrame,
    strata: pd.DataFrame | None = None,
    estimands: pd.DataFrame | None = None,
) -> None:
    """Print the per-quantity table, the verdict per model and the stratified verdict."""
    from sbc.results.calibration import ALPHA, estimand_table, model_table
    from sbc.results.strata import stratified_verdict

    if estimands is None:
        estimands = estimand_table(results)
    models = model_table(results, estimands)
    columns = [
        "model", "estimand", "fits", "errors", "divergent_share",
        "p_ecdf", "p_holm", "coverage90", "bias", "rmse",
    ]  # fmt: skip
    verdict = [
        "model", "verdict", "worst", "coverage90", "rel_rmse", "error_share",
        "healthy_share", "divergent_share", "seconds_per_100_ess",
    ]  # fmt: skip
    if "khat_share" in models and models["khat_share"].notna().any():
        verdict.insert(verdict.index("divergent_share") + 1, "khat_share")
    with pd.option_context(
        "display.width", 200, "display.max_rows", 500, "display.max_colwidth", 80,
        "display.float_format", "{:.3g}".format,
    ):  # fmt: skip
        print(estimands[columns].to_string(index=False))
        print(f"\nverdict (pot_c uniformity test, Holm-adjusted, family-wise level {ALPHA}):")
        print(models[verdict].to_string(index=False))
        if strata is not None and not strata.empty:
            print("\nby data stratum (Holm over every quantity, statistic and stratum):")
            print(stratified_verdict(strata).to_string(index=False))


def listing(args: argparse.Namespace) -> None:
    """``sbc list``: scenarios, their models, settings and (with --mutants) generated mutants."""
    if args.mutants and args.scenario is None:
        raise UsageError("--mutants needs a SCENARIO: sbc list SCENARIO --mutants")
    for name in [args.scenario] if args.scenario else registry.names():
        scenario = registry.get(name)
        print(f"{registry.display_name(scenario)}: {scenario.description}")
        print("  models:")
        width = max(len(m.name) for m in scenario.models) + 2
        for model in scenario.models:
            mark = " (mutant: planted bug)" if model.mutant else ""
            mark += f" (run when named; needs the {model.extra} extra)" if model.extra else ""
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
            from sbc.report.mutants_text import listing as mutant_listing

            settings = registry.resolve_settings(scenario, overrides(args))
            print("\n".join(mutant_listing(_plan(scenario, settings, args))))


def _plan(scenario, settings, args: argparse.Namespace):
    """The models of a mutants run (correct, hand-written, generated)."""
    from sbc.workflows.mutants import plan

    return plan(
        scenario,
        settings,
        names(args.model, "--model"),
        names(args.operators, "--operators"),
        getattr(args, "generated", True),
    )


def mutants(args: argparse.Namespace) -> None:
    """``sbc mutants``: a correct model and its mutants on the same data sets; detection."""
    from sbc.report.mutants_text import recommendation
    from sbc.workflows.mutants import run_mutants, with_inference

    base = spec(args)
    chosen = with_inference(
        _plan(base.scenario, base.settings, args), names(args.inference, "--inference")
    )
    out = args.out or Path("reports") / f"{base.name}-mutants"
    outcome = run_mutants(base, chosen, out, execution(args))
    columns = ["model", "status", "min_p_holm", "revealed_by", "needed"]
    with pd.option_context(
        "display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.3g}".format
    ):
        print(outcome.analysis.table[columns].to_string(index=False))
    reasons = outcome.notes[: len(chosen.reasons)]
    print("\n" + "\n".join([*reasons, *recommendation(outcome.analysis)]))
    print(f"\ndetection report: {outcome.report}")


def fit(args: argparse.Namespace) -> None:
    """``sbc fit``: fit the models to the scenario's real data; write the validation page."""
    from sbc.workflows import validate as validation
    from sbc.workflows.realfit import fit_models

    scenario = registry.get(args.scenario)
    name = registry.display_name(scenario)
    if scenario.real_data is None:
        raise UsageError(f"scenario {name} has no real data to fit")
    settings = registry.resolve_settings(scenario, overrides(args))
    models = registry.models(scenario, names(args.models, "--models"))
    out = args.out or Path("reports") / f"{name}-fit"
    sbc = None
    if args.sbc_run is not None:  # checked before any fit
        sbc = validation.stored_sbc(args.sbc_run, scenario, settings, models)
    fit_sampling = sampling(args, chains=4)
    fits = fit_models(scenario, settings, models, fit_sampling)
    if args.sbc is not None:
        sbc = validation.new_sbc(
            scenario, settings, models, args.sbc, out / "sbc", execution(args), sampling(args)
        )
    result = validation.validate(scenario, settings, fits, args.replicates, sbc=sbc)
    defaults = {f: 4 if f == "chains" else getattr(DEFAULTS, f) for f in FIELDS}
    options = [
        ("models", ",".join(models), ",".join(scenario.default_models)),
        *(
            (f"fit {f}", getattr(fit_sampling, f) or f"model's own, else {defaults[f]}", default)
            for f, default in defaults.items()
        ),
        ("replicates", args.replicates, validation.REPLICATES),
        ("SBC", result.sbc_source or "none", "none"),
    ]
    print(validation.write_validation(out, scenario, settings, result, options))


def summary(args: argparse.Namespace) -> None:
    """``sbc summary``: print a run folder's calibration summary."""
    from sbc.results.strata import strata_table

    results = RunStore(args.out).results()
    print_summary(results, strata_table(results))


def report(args: argparse.Namespace) -> None:
    """``sbc report``: rewrite a run folder's summary, strata table and report."""
    from sbc.workflows.run import finish

    print(finish(args.out, strata=args.strata).report)


def sweep(args: argparse.Namespace) -> None:
    """``sbc sweep``: one run per cell of a grid of settings, and the sweep page."""
    from sbc.workflows.sweep import load_spec, run_sweep

    loaded = load_spec(args.spec)
    out = args.out if args.out is not None else Path("reports") / "sweeps" / args.spec.stem
    index = run_sweep(loaded, out, execution(args))
    if not args.quiet:
        print(f"sweep report: {index}")


COMMANDS = {
    "run": run,
    "sweep": sweep,
    "mutants": mutants,
    "fit": fit,
    "list": listing,
    "report": report,
    "summary": summary,
}
"""Command name -> what it does."""
