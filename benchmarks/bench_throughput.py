"""Throughput of sbc against simuk, end to end as a user runs it, and across scenarios.

simuk runs the heights ``partial_centred`` model, the hierarchy written out (simuk needs an
observed variable; sbc's default ``partial`` integrates the normal levels out and has
none), at the sampler settings sbc uses for ``partial`` by default. sbc runs the same
``partial_centred`` model end to end (the like-for-like ratio) and its default ``partial``
(the ratio a user gets). Each
configuration runs in its own child process, one after the other, in this one invocation.

Printed and saved to ``benchmarks/results/throughput-DATE-HOST.csv``:

* simuk 0.3: seconds per simulation;
* end to end, as a user runs it: ``sbc run heights --models partial -n 200 --jobs 2``
  (start-up, compile, fits, report), its fixed cost (the same command with one simulation;
  also with empty compile caches, as on a machine's first run) and marginal cost per
  simulation, and the ratio to simuk per simulation (target >= 40);
  the same for ``--models partial_centred`` (simuk's model);
* the share of wall time outside the sampler at 1000 simulations, ``--jobs 1``, compile
  included (target < 0.10), and the per-fit cost outside the sampler in milliseconds;
  the same for a floor that only simulates and fits (no ranks, diagnostics or storage);
* seconds per simulation of every default model of heights, schools and districts
  (``--jobs 2``, the same number of simulations): schools and districts at most 3x heights;
* 200 districts simulations with ``--jobs 2`` (target < 180 s);
* ``--jobs 2`` over ``--jobs 1``, peak memory, and how the cost grows with the design;
* sbc's own per-fit work outside the fit (target <= 3 ms at the 12 quantities of heights),
  part by part (:data:`BREAKDOWN_PARTS`: trace reading, estimands, test quantities,
  R-hat and ESS, ranks, summaries, result rows, the part file ...), for NUTS (heights
  ``partial``) and Laplace (``partial+laplace``), each without and with prediction, the
  median of :data:`BREAKDOWN_REPEATS` child processes, also saved on its own to
  ``benchmarks/results/throughput-breakdown-DATE-HOST.csv``; ``--breakdown-only`` runs
  just this (a few minutes).

Usage: ``python benchmarks/bench_throughput.py [--simulations 1000] [--simuk 10] [--quick]
[--breakdown 200] [--breakdown-only]``
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent


def _sampling(model: str = "partial"):
    """The sampler settings sbc uses for a heights model by default (resolved)."""
    from sbc.backends import Sampling
    from scenarios import heights

    return Sampling().resolve(heights.SCENARIO.model(model).sampling)


def _child(config: dict) -> dict:
    """Run one configuration in this (child) process and measure it."""
    out: dict = {}
    if config["kind"] == "simuk":
        out |= _simuk(config["simulations"])
    elif config["kind"] == "floor":
        out |= _floor(config["simulations"])
    elif config["kind"] == "breakdown":
        out |= _breakdown(config["model"], config["simulations"], config.get("prediction", True))
    else:
        out |= _sbc(config)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["peak_mb"] = max(self_kb, children_kb) / 1024
    return out


def _simuk(simulations: int) -> dict:
    import logging
    import warnings

    import simuk

    from sbc import seeding
    from scenarios import heights

    logging.getLogger("pymc").setLevel(logging.ERROR)
    scenario = heights.SCENARIO
    design = scenario.design(scenario.defaults)
    example = scenario.simulate(design, seeding.example_rng()).data
    model = heights._build_partial_centred(design, example)  # an observed variable for simuk
    sampling = _sampling()
    sbc_run = simuk.SBC(
        model,
        num_simulations=simulations,
        sample_kwargs={
            "chains": sampling.chains,
            "tune": sampling.tune,
            "draws": sampling.draws,
            "cores": 1,
            "target_accept": sampling.target_accept,
        },
        seed=1,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sbc_run.run_simulations()
    return {"wall": time.perf_counter() - start}


def _floor(simulations: int) -> dict:
    """The least any SBC run can spend outside the sampler: heights ``partial``, ``--jobs 1``.

    Compile, then per simulation only simulate and fit (:meth:`NutpieFitter.fit`: swap the
    data in, sample, read the draws into arrays): no rank, no diagnostic, no test quantity,
    nothing stored.
    """
    from sbc import seeding
    from sbc.backends import Sampling
    from sbc.engine import task as fitting
    from scenarios import heights

    scenario = heights.SCENARIO
    settings = scenario.defaults
    design = scenario.design(settings)
    model = scenario.model("partial")
    sampler = _time_sampler()  # imports nutpie before the compile is timed, as in _sbc
    start = time.perf_counter()
    fitter = fitting.compiled(scenario, settings, model, design)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(simulations):
        data = scenario.simulate(design, seeding.data_rng(0, i)).data
        fitter.fit(data, i, Sampling().resolve(model.sampling))
    return {
        "wall": time.perf_counter() - start,
        "compile": compile_seconds,
        "sampler_seconds": sampler["seconds"],
    }


BREAKDOWN_MODELS = ("partial", "partial+laplace")
"""Models whose per-fit work outside the fit is broken down: NUTS and one approximation."""


class _Clock:
    """Wall time spent in named functions, each wrapped where the per-fit path calls it.

    Times are inclusive, except that a part of :data:`BREAKDOWN_PARTS` (or ``lazy trace``)
    called inside another (draws read lazily inside the estimand function) counts for
    itself only: its time is taken off the enclosing one.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._active: list[str] = []

    def wrap(self, part: str, function: Any) -> Any:
        """``function``, its wall time added to ``part`` at every call."""
        leaves = {key for key, _ in BREAKDOWN_PARTS} | {"lazy trace"}

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._active.append(part)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                took = time.perf_counter() - start
                self._active.pop()
                self.seconds[part] = self.seconds.get(part, 0.0) + took
                if part in leaves:
                    outer = next((p for p in reversed(self._active) if p in leaves), None)
                    if outer is not None:
                        self.seconds[outer] -= took

        return timed

    def patch(self, owner: Any, name: str, part: str) -> None:
        """Time ``owner.name`` (a module's function or a class's method) as ``part``."""
        setattr(owner, name, self.wrap(part, getattr(owner, name)))


BREAKDOWN_PARTS: tuple[tuple[str, str], ...] = (
    ("simulate", "simulating the data set and the true values (prepare_design)"),
    ("truth", "test quantities at the truth, data statistics, model lookup"),
    ("data", "swapping the data set into the compiled model"),
    ("trace", "reading the draws (nutpie's Arrow trace; an approximation's stored variables)"),
    ("khat", "Pareto k-hat of an approximation's importance ratios"),
    ("estimands", "the model's estimand function"),
    ("test_quantities", "test quantities at every draw (Prepared.pointwise, .test_quantities)"),
    ("diagnose", "R-hat, bulk and tail ESS and the sort (sbc.stats.mcmc.diagnose_sorted)"),
    ("ranks", "thinning factor, thinning, ranks and PIT values"),
    ("summaries", "posterior summaries and the fit's health (summarize, diagnostics_summary)"),
    ("prediction", "held-out replicates' and in-sample elpd, PSIS-LOO, LOGO, RMSE (predict)"),
    ("rows", "result rows as an Arrow table (result_rows, concat_rows)"),
    ("part", "the simulation's part, an Arrow IPC file (RunStore.write_part)"),
)
"""The parts of the per-fit path the breakdown times, in the order a fit runs them."""


def _breakdown(model_name: str, simulations: int, prediction: bool = True) -> dict:
    """Per-fit time of each part of sbc's own work outside the fit, in milliseconds.

    Heights ``partial`` (default design, 12 quantities) fitted by ``model_name`` in this
    process as a worker runs it (allocator and thread pools set as in a worker): compiled
    once (not timed), then ``simulations`` data sets, each run by
    :func:`sbc.engine.task.run_task` and stored by :meth:`RunStore.write_part`. Every part
    of :data:`BREAKDOWN_PARTS` is timed where the per-fit path calls it; the fit itself is
    the sampler's call (``nutpie.sample``) or the optimiser's (the approximation's
    ``approximator``); ``other`` is the rest of the wall time (the results' ``fit_seconds``
    measure the backend's whole ``fit``, data swap and draws included).
    """
    import dataclasses

    import nutpie

    from sbc import registry
    from sbc.backends import Sampling, approximate, flat
    from sbc.backends import nutpie as nutpie_backend
    from sbc.engine import task as fitting
    from sbc.engine.worker import keep_freed_memory, one_blas_thread
    from sbc.results.store import RunStore

    keep_freed_memory()
    clock = _Clock()
    scenario = registry.get("heights")
    settings = tuple(sorted(registry.resolve_settings(scenario, {}).items()))

    def task(i: int) -> Any:
        return fitting.Task(
            "heights", settings, (model_name,), i, 0, Sampling(), prediction=prediction
        )

    with one_blas_thread(), tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        store.parts.mkdir(parents=True)
        store.write_part(fitting.run_task(task(simulations)))  # compiles; not timed
        fitter = next(iter(fitting._COMPILED.values()))
        clock.patch(nutpie, "sample", "fit")
        if isinstance(fitter, approximate.ApproximateFitter):
            object.__setattr__(fitter, "approximator", clock.wrap("fit", fitter.approximator))
            clock.patch(flat.FlatModel, "refill", "data")
            clock.patch(flat.FlatModel, "draws", "trace")
            clock.patch(flat.FlatModel, "logp", "khat")
            clock.patch(approximate, "pareto_smoothed", "khat")
        else:
            clock.patch(nutpie_backend, "arrow_posterior", "trace")
            clock.patch(nutpie_backend.ArrowDraws, "__getitem__", "lazy trace")
        clock.patch(type(fitter), "fit", "backend fit")
        clock.patch(fitting, "prepare_design", "simulate")
        clock.patch(fitting.Prepared, "test_quantities", "test_quantities")
        clock.patch(fitting.Prepared, "pointwise", "test_quantities")  # also prediction's
        clock.patch(fitting, "diagnose_sorted", "diagnose")
        for name in ("thinning_factor", "thin", "rank_statistic", "fractional_rank"):
            clock.patch(fitting, name, "ranks")
        for name in ("summarize", "diagnostics_summary"):
            clock.patch(fitting, name, "summaries")
        clock.patch(fitting, "_prediction", "prediction")
        clock.patch(fitting, "result_rows", "rows")
        clock.patch(fitting, "concat_rows", "concat_rows")
        clock.patch(fitting, "fit_model", "fit_model")
        clock.patch(store, "write_part", "part")
        model = registry.model(scenario, model_name)
        timed_model = dataclasses.replace(model, estimands=clock.wrap("estimands", model.estimands))
        lookup = registry.model
        registry.model = lambda s, name: timed_model if name == model_name else lookup(s, name)
        start = time.perf_counter()
        for i in range(simulations):
            store.write_part(fitting.run_task(task(i)))
        wall = time.perf_counter() - start
    s = clock.seconds
    parts = {key: s.get(key, 0.0) for key, _ in BREAKDOWN_PARTS}
    # the backend's fit beyond the sampler or optimiser, the data swap and the draws
    parts["data"] += s["backend fit"] - s["fit"] - parts["data"] - parts["trace"] - parts["khat"]
    parts["trace"] += s.get("lazy trace", 0.0)  # nutpie's draws, read when first used
    # run_task before fit_model: everything but simulating and the model's rows
    parts["truth"] = wall - s["fit_model"] - parts["simulate"] - parts["part"]
    parts["truth"] -= s["concat_rows"]
    parts["rows"] += s["concat_rows"]
    outside = wall - s["fit"]
    parts["other"] = outside - sum(parts.values())
    ms = {key: 1000 * value / simulations for key, value in parts.items()}
    return {
        "parts_ms": ms,
        "outside_ms": 1000 * outside / simulations,
        "fit_ms": 1000 * s["fit"] / simulations,
        "fit_seconds_ms": 1000 * s["backend fit"] / simulations,
    }


def _time_sampler() -> dict:
    """Time every ``nutpie.sample`` call of this process; the total is in ``["seconds"]``."""
    import nutpie

    sampler = {"seconds": 0.0}
    original = nutpie.sample

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sampler["seconds"] += time.perf_counter() - t0

    nutpie.sample = timed
    return sampler


def _sbc(config: dict) -> dict:

    from sbc import registry
    from sbc.engine import task as fitting
    from sbc.engine.runner import run
    from sbc.engine.spec import Execution, RunSpec

    scenario = registry.get(config.get("scenario", "heights"))
    settings = scenario.resolve_settings(config.get("settings", {}))
    models = config.get("models") or scenario.default_models
    out: dict = {"compile": 0.0}
    sampler = {"seconds": 0.0}
    if config["jobs"] == 1:
        sampler = _time_sampler()  # and nutpie imported: imports are not compile time
        start = time.perf_counter()  # compile outside the timed run: reported apart
        for name in models:
            model = registry.model(scenario, name)
            fitting.compiled(scenario, settings, model, scenario.design(settings))
        out["compile"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        spec = RunSpec.build(
            scenario,
            settings=settings,
            models=models,
            simulations=config["simulations"],
            test_quantities=config.get("test_quantities", True),
        )
        results = run(spec, folder, Execution(jobs=config["jobs"]))
        out["wall"] = time.perf_counter() - start
    fits = results.drop_duplicates(["simulation", "model"])
    out["fit_seconds"] = float(fits["fit_seconds"].sum())
    out["sampler_seconds"] = sampler["seconds"] if config["jobs"] == 1 else None
    out["fits"] = len(fits)
    from sbc.engine.execute import release_workers

    release_workers(wait=True)  # the workers exit and are waited for: peak memory counts them
    return out


def _measure(config: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed: {config}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _command(simulations: int, model: str = "partial", cold: bool = False) -> float:
    """Wall time of ``sbc run heights --models MODEL -n N --jobs 2``, as a user runs it.

    With ``cold``, PyTensor's compile directory (its numba cache and sbc's cached nutpie
    wrappers, :mod:`sbc.backends.nutpie_cache`) and numba's own cache directory (the R-hat
    and ESS kernels, :mod:`sbc.stats._mcmc_kernels`) are new, empty ones: a first run.
    """
    sbc = Path(sys.executable).parent / "sbc"
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "SBC_CACHE_DIR": str(Path(folder) / "cache")}
        if cold:
            flags = os.environ.get("PYTENSOR_FLAGS", "")
            compiledir = f"base_compiledir={Path(folder) / 'pytensor'}"
            env["PYTENSOR_FLAGS"] = f"{flags},{compiledir}" if flags else compiledir
            env["NUMBA_CACHE_DIR"] = str(Path(folder) / "numba")
        start = time.perf_counter()
        subprocess.run(
            [
                str(sbc),
                "run",
                "heights",
                "--models",
                model,
                "-n",
                str(simulations),
                "--jobs",
                "2",
                "--quiet",
                "--out",
                folder,
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        return time.perf_counter() - start


def _machine() -> str:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown cpu"
    return f"{platform.node()} ({cpu}, {len(os.sched_getaffinity(0))} cores)"


def _load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    """Run every configuration and print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--simuk", type=int, default=20, help="simulations for simuk")
    parser.add_argument("--scenario-sims", type=int, default=40, help="per scenario row")
    parser.add_argument("--districts", type=int, default=200, help="districts run length")
    parser.add_argument("--scaling", type=int, default=20, help="simulations per scaling row")
    parser.add_argument("--quick", action="store_true", help="shorter runs throughout")
    parser.add_argument("--breakdown", type=int, default=200, help="fits per breakdown model")
    parser.add_argument(
        "--breakdown-only",
        action="store_true",
        help="only the per-fit breakdown of the work outside the fit",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    if args.quick:
        args.simulations, args.simuk, args.scenario_sims, args.districts = 200, 5, 10, 40
    n = args.simulations
    rows: list[tuple[str, float, str, str]] = []

    def add(metric: str, value: float, unit: str, target: str = "") -> None:
        rows.append((metric, value, unit, target))
        print(f"{metric:<70} {value:>10.4g} {unit:<6} {target}", flush=True)

    sampling = _sampling()
    print(f"machine: {_machine()}, load average {_load():.1f}")
    print(f"heights/partial, {sampling}\n")
    breakdown = _breakdown_table(args.breakdown, add)
    if args.breakdown_only:
        _save([], breakdown)
        return
    simuk = _measure({"kind": "simuk", "simulations": args.simuk})
    simuk_per_sim = simuk["wall"] / args.simuk
    add(
        f"simuk 0.3, partial_centred: seconds per simulation ({args.simuk} sims)",
        simuk_per_sim,
        "s",
    )
    _command(1, "partial_centred")  # warm the file system and Python caches; not counted
    centred = _command(200, "partial_centred")
    add("sbc run heights --models partial_centred -n 200 --jobs 2: wall", centred, "s")
    add(
        "end to end, same model: simuk / sbc per simulation (partial_centred)",
        simuk_per_sim / (centred / 200),
        "x",
    )

    cold = _command(1, cold=True)
    _command(1)  # warm the file system and Python caches; not counted
    fixed = _command(1)
    whole = _command(200)
    add(
        "sbc run heights --models partial -n 1 --jobs 2: wall, empty compile caches (a first run)",
        cold,
        "s",
    )
    add("sbc run heights --models partial -n 1 --jobs 2: wall (fixed cost)", fixed, "s")
    add("sbc run heights --models partial -n 200 --jobs 2: wall", whole, "s")
    add("  marginal seconds per simulation", (whole - fixed) / 199, "s")
    add("  seconds per simulation, everything included", whole / 200, "s")
    add("end to end: simuk / sbc per simulation", simuk_per_sim / (whole / 200), "x", ">= 40")

    one = _measure({"kind": "sbc", "models": ["partial"], "simulations": n, "jobs": 1})
    total = one["wall"] + one["compile"]
    inside = one["sampler_seconds"]
    add("sbc --jobs 1: compile (once per worker)", one["compile"], "s")
    add(f"sbc --jobs 1: seconds per simulation ({n} sims, incl. compile)", total / n, "s")
    add(
        f"--jobs 1, {n} sims: share outside the sampler, compile included",
        1 - inside / total,
        "share",
        "< 0.10",
    )
    add(
        f"--jobs 1, {n} sims: share outside the sampler, compile excluded",
        1 - inside / one["wall"],
        "share",
    )
    add(
        "--jobs 1: milliseconds per fit outside the sampler (compile excluded)",
        1000 * (one["wall"] - inside) / n,
        "ms",
    )
    add("--jobs 1: milliseconds per fit inside the sampler", 1000 * inside / n, "ms")
    floor = _measure({"kind": "floor", "simulations": n})
    add(
        f"floor, {n} sims (simulate and fit only: no ranks, diagnostics, test quantities, "
        "storage): "
        "share outside the sampler, compile included",
        1 - floor["sampler_seconds"] / (floor["wall"] + floor["compile"]),
        "share",
    )
    add(
        "floor: milliseconds per fit outside the sampler (compile excluded)",
        1000 * (floor["wall"] - floor["sampler_seconds"]) / n,
        "ms",
    )
    two = _measure({"kind": "sbc", "models": ["partial"], "simulations": n, "jobs": 2})
    add(f"sbc --jobs 2: seconds per simulation ({n} sims, incl. compile)", two["wall"] / n, "s")
    add("speed-up --jobs 2 over --jobs 1", total / two["wall"], "x")
    add(f"peak memory, --jobs 1, {n} sims", one["peak_mb"], "MB")
    add(f"peak memory, --jobs 2, {n} sims (largest process)", two["peak_mb"], "MB")
    add("peak memory, simuk", simuk["peak_mb"], "MB")

    per_sim = {}
    for name in ("heights", "schools", "districts"):
        cell = _measure(
            {"kind": "sbc", "scenario": name, "simulations": args.scenario_sims, "jobs": 2}
        )
        per_sim[name] = cell["wall"] / args.scenario_sims
        add(f"{name}, every default model, --jobs 2: seconds per simulation", per_sim[name], "s")
    for name in ("schools", "districts"):
        add(
            f"{name} / heights, seconds per simulation",
            per_sim[name] / per_sim["heights"],
            "x",
            "<= 3",
        )
    districts = _measure(
        {"kind": "sbc", "scenario": "districts", "simulations": args.districts, "jobs": 2}
    )
    add(
        f"{args.districts} districts simulations, every default model, --jobs 2: wall",
        districts["wall"],
        "s",
        "< 180" if args.districts == 200 else "",
    )

    for groups, per in ((4, 20), (40, 20), (400, 20), (4, 200)):
        cell = _measure(
            {
                "kind": "sbc",
                "models": ["partial"],
                "simulations": args.scaling,
                "jobs": 1,
                "settings": {"n_groups": groups, "n_per_group": per},
            }
        )
        label = f"--jobs 1, heights partial, {groups} countries x {per} people"
        add(f"{label}: compile", cell["compile"], "s")
        add(f"{label}: s per simulation (no compile)", cell["wall"] / args.scaling, "s")

    _save(rows, breakdown)


BREAKDOWN_REPEATS = 3
"""Child processes per breakdown configuration; the median of each part is reported.

On the shared 2-core VM, one 200-fit measurement of the same commit read 4.5 to 6.4 ms
outside a NUTS fit (and 2.9 to 3.8 ms outside Laplace's) within an hour: every part moved
together, with the machine. The configurations are measured in turn, each repeat of
one after a repeat of every other, so that a slow spell does not fall on one of them."""


def _breakdown_table(fits: int, add: Any, repeats: int = BREAKDOWN_REPEATS) -> list[dict]:
    """Measure :func:`_breakdown` for every model of :data:`BREAKDOWN_MODELS`; print it.

    Each model twice: without prediction (``--no-prediction``: the work SBC itself needs,
    the one the 3 ms target is about, set before prediction existed) and with it (a run's
    default, which adds the held-out replicates and PSIS-LOO of :mod:`sbc.engine.predict`).
    Each configuration is measured ``repeats`` times in turn (:data:`BREAKDOWN_REPEATS`);
    printed are the medians, saved are every repeat and the medians (``repeat`` "median").
    """
    configs = [(m, p) for m in BREAKDOWN_MODELS for p in (False, True)]
    cells: dict[tuple[str, bool], list[dict]] = {c: [] for c in configs}
    for _ in range(repeats):
        for model, prediction in configs:
            config = {"kind": "breakdown", "model": model, "simulations": fits}
            cells[model, prediction].append(_measure(config | {"prediction": prediction}))
    table = []
    for (model, prediction), measured in cells.items():
        runs = [
            {**cell["parts_ms"], "outside": cell["outside_ms"], "fit": cell["fit_ms"]}
            for cell in measured
        ]
        median = {part: statistics.median(run[part] for run in runs) for part in runs[0]}
        label = "with prediction" if prediction else "no prediction"
        spread = ", ".join(f"{run['outside']:.2f}" for run in runs)
        add(
            f"per-fit work outside the fit, ms: heights {model}, {label} "
            f"(median of {repeats} x {fits} fits: {spread})",
            median["outside"],
            "ms",
            "" if prediction else "<= 3",
        )
        add(f"  the fit itself (sampler or optimiser), heights {model}", median["fit"], "ms")
        for part, description in (*BREAKDOWN_PARTS, ("other", "everything else")):
            print(f"    {part:<16} {median[part]:>7.3f} ms  {description}")
        for repeat, values in [*enumerate(runs), ("median", median)]:
            table += [
                {
                    "model": model,
                    "prediction": prediction,
                    "repeat": repeat,
                    "part": part,
                    "ms": ms,
                    "fits": fits,
                }
                for part, ms in values.items()
            ]
    return table


def _save(rows: list[tuple[str, float, str, str]], breakdown: list[dict]) -> None:
    """Write the table and the breakdown to ``benchmarks/results/`` as CSV."""
    print(f"\nload average at the end {_load():.1f}")
    RESULTS.mkdir(exist_ok=True)
    day, machine = dt.date.today().isoformat(), _machine()
    if rows:  # not with --breakdown-only
        path = RESULTS / f"throughput-{day}-{platform.node()}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["metric", "value", "unit", "target", "machine", "date"])
            for metric, value, unit, target in rows:
                writer.writerow([metric, f"{value:.6g}", unit, target, machine, day])
        print(f"saved {path}")
    path = RESULTS / f"throughput-breakdown-{day}-{platform.node()}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["model", "prediction", "repeat", "part", "ms_per_fit", "fits", "machine", "date"]
        )
        for row in breakdown:
            writer.writerow(
                [
                    row["model"],
                    row["prediction"],
                    row["repeat"],
                    row["part"],
                    f"{row['ms']:.4g}",
                    row["fits"],
                    machine,
                    day,
                ]
            )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
