"""Write a run's self-contained HTML report: this is where HTML is written.

``write_report(out)`` reads only the stored results (``results.parquet``, ``run.json``) and
writes ``out/report.html``: inline CSS and SVG figures, no scripts and no network access
needed to view it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from sbc.registry import split_method
from sbc.report import figures
from sbc.report.prediction_html import prediction_section
from sbc.report.strata_html import health_section, mode_note, strata_section
from sbc.results.calibration import (
    ALPHA,
    ESS_MIN,
    KHAT_MAX,
    RHAT_MAX,
    estimand_groups,
    estimand_table,
    model_table,
    panel_data,
)
from sbc.results.schema import HELDOUT_REPLICATES
from sbc.results.store import RunStore
from sbc.stats.strata import STRATA

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto;
       max-width: 1400px; padding: 0 1.5rem; color: #1a1a1a; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 0.8rem 0; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e5e5e5; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
.ok { background: #e3f4e1; color: #145214; font-weight: 600; }
.bad { background: #fbe3e1; color: #8a1c12; font-weight: 600; }
.warn { color: #8a5a00; }
td.note { color: #555; font-size: 0.82rem; font-style: italic; }
.fail { background: #ececec; color: #5a1a5a; font-weight: 600; max-width: 28rem; }
figure { margin: 0.6rem 0 1.4rem; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.85rem; }
details { margin: 0.8rem 0; } summary { cursor: pointer; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; font-size: 0.9rem; }
dt { color: #555; } dd { margin: 0; font-family: ui-monospace, monospace; }
"""

CAPTIONS = {
    "ECDF difference": (
        "ECDF of the fractional ranks minus the uniform CDF. A calibrated model stays inside "
        "the shaded 99% simultaneous band; a curve above it means the truth tends to sit low "
        "in the posterior (overestimation), below means underestimation, a wave means wrong width."
    ),
    "Rank histogram": (
        "Ranks in equal bins; a calibrated model gives a flat histogram within the shaded "
        "range. A U shape means over-confident posteriors, a hump under-confident ones."
    ),
    "Coverage": (
        "Share of simulations whose true value lies in the central posterior interval, "
        "against the interval's nominal level, with 95% Clopper-Pearson intervals."
    ),
    "Estimates vs truth": (
        "Posterior mean and 90% interval against the true value, every simulation: points "
        "on the diagonal are recovered; flat clouds show shrinkage."
    ),
    "Z-score vs contraction": (
        "Posterior z-score, (mean - truth) / sd, against posterior contraction, 1 - "
        "posterior / prior variance, every simulation. A calibrated posterior keeps about 95% "
        "of its points between the lines at +/-2 at any contraction; points beyond them, "
        "most at high contraction, show an over-confident posterior (an approximation that "
        "is too narrow)."
    ),
}


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "&ndash;"
        return f"{value:.{digits}g}"
    return escape(str(value))


def _share(value: float, warn_above: float = 0.1, warn_below: float = -1.0) -> str:
    text = "&ndash;" if value != value else f"{100 * value:.1f}%"
    warn = value > warn_above or value < warn_below
    return f'<td class="warn">{text}</td>' if warn else f"<td>{text}</td>"


HEALTHY_MIN = 0.95
"""Share of healthy fits below which the report marks a model's health."""

DIVERGENT_MAX = 0.02
"""Share of fits with a divergence above which the report marks it."""


def _sampler(settings: dict[str, Any] | None, model: str = "") -> str:
    if not settings:
        return "&ndash;"
    method = split_method(model)[1]
    if method is not None:  # an approximation: independent draws, no warm-up or step size
        return f"{method}: {settings['chains'] * settings['draws']} independent draws"
    return (
        f"{settings['chains']}&times;{settings['draws']} (+{settings['tune']}), "
        f"{settings['target_accept']:g}"
    )


def verdict_table(models: pd.DataFrame, record: dict[str, Any]) -> str:
    """The verdict table: one row per model with calibration, health and cost columns."""
    sampling = record["identity"].get("model_sampling", {})
    notes = record.get("model_notes", {})
    approximate = "khat_share" in models and bool(models["khat_share"].notna().any())
    head = (
        "<tr><th class=l>model</th><th>calibrated</th><th class=l>worst estimands "
        "(Holm-adjusted p)</th><th>coverage 90%<br>mean / min</th><th>RMSE / prior sd</th>"
        "<th>90% width / prior sd</th><th>fits</th><th>errors</th><th>healthy</th>"
        f"<th>divergent</th><th>R-hat &gt; {RHAT_MAX}</th><th>ESS &lt; {ESS_MIN:.0f}</th>"
        + (f"<th>k-hat &gt; {KHAT_MAX}</th><th>not converged</th>" if approximate else "")
        + "<th>s / fit</th><th>s / 100 ESS</th><th>gradients / draw</th>"
        "<th class=l>sampler: chains&times;draws (+warm-up), target accept</th></tr>"
    )
    rows = []
    for m in models.itertuples():
        verdict = '<td class="ok">yes</td>' if m.calibrated else '<td class="bad">no</td>'
        note = notes.get(m.model)
        if m.verdict.startswith("failed"):  # too few fits to judge: a crash, not a verdict
            verdict = f'<td class="fail l">{escape(m.verdict)}</td>'
        rows.append(
            f"<tr><td class=l><b>{escape(m.model)}</b></td>{verdict}"
            f"<td class=l>{escape(m.worst) or '&ndash;'}</td>"
            f"<td>{_fmt(m.coverage90, 2)} / {_fmt(m.coverage90_min, 2)}</td>"
            f"<td>{_fmt(m.rel_rmse, 2)}</td><td>{_fmt(m.rel_width90, 2)}</td><td>{m.fits}</td>"
            f"{_share(m.error_share, 0)}"
            f"{_share(m.healthy_share, warn_above=1.0, warn_below=HEALTHY_MIN)}"
            f"{_share(m.divergent_share, DIVERGENT_MAX)}{_share(m.rhat_share, 1 - HEALTHY_MIN)}"
            f"{_share(m.low_ess_share, 1 - HEALTHY_MIN)}"
            + (
                f"{_share(m.khat_share, 1 - HEALTHY_MIN)}{_share(m.unconverged_share, 0)}"
                if approximate
                else ""
            )
            + f"<td>{_fmt(m.median_fit_seconds, 2)}</td>"
            f"<td>{_fmt(m.seconds_per_100_ess, 2)}</td><td>{_fmt(m.grad_evals, 3)}</td>"
            f"<td class=l>{_sampler(sampling.get(m.model), m.model)}</td></tr>"
        )
        if note:
            span = 17 if approximate else 15
            rows.append(f'<tr><td></td><td colspan={span} class="l note">{escape(note)}</td></tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def _frame_table(frame: pd.DataFrame) -> str:
    head = "".join(
        f"<th{' class=l' if frame[c].dtype == object else ''}>{escape(c)}</th>" for c in frame
    )
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            cls = " class=l" if isinstance(value, str) else ""
            cells.append(f"<td{cls}>{_fmt(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _run_info(record: dict[str, Any], results: pd.DataFrame) -> str:
    identity = record["identity"]
    fits = results.drop_duplicates(["simulation", "model"])
    items = {
        "scenario": scenario_name(record),
        "reference": identity["scenario"],
        "mode": (
            f"posterior SBC (reference {identity['reference']['model']})"
            if identity.get("mode") == "posterior"
            else "prior SBC"
        ),
        "settings": json.dumps(identity["settings"]),
        "models": ", ".join(identity["models"]),
        "seed": identity["seed"],
        "sampler": json.dumps(identity["sampling"]),
        "thinning": identity["thin"],
        "simulations": f"{results['simulation'].nunique()} of {record.get('simulations', '?')}",
        "failed fits": f"{int(fits['error'].notna().sum())} of {len(fits)}",
        "sampling time": f"{fits['fit_seconds'].sum():.1f} s (sum over fits)",
        "wall time": f"{record.get('wall_seconds', float('nan')):.1f} s",
        "versions": ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items()),
    }
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items.items())
    return f"<dl>{rows}</dl>"


def scenario_name(record: dict[str, Any]) -> str:
    """The scenario's declared name in a ``run.json`` record (older runs: its reference)."""
    name = record.get("name")
    return name if isinstance(name, str) and name else str(record["identity"]["scenario"])


def render(
    results: pd.DataFrame,
    record: dict[str, Any],
    strata: int = STRATA,
    estimands: pd.DataFrame | None = None,
    strata_table: pd.DataFrame | None = None,
) -> str:
    """HTML text of the report for a results table and its ``run.json`` record.

    ``strata`` is the number of equal-count strata of each data statistic; ``estimands``
    and ``strata_table`` are the results' :func:`~sbc.results.calibration.estimand_table` and
    :func:`~sbc.results.strata.strata_table`, if already computed.
    """
    scenario = scenario_name(record)
    reference = str(record["identity"]["scenario"])
    if estimands is None:
        estimands = estimand_table(results)
    models = model_table(results, estimands)
    names = list(models["model"])
    sections = []
    kinds = (
        dict(zip(results["estimand"], results["kind"], strict=True)) if "kind" in results else {}
    )
    for group, members in estimand_groups(results).items():
        panels = {m: panel_data(results, m, members) for m in names}
        figs = []
        for kind, draw in figures.KINDS.items():
            svg = figures.to_svg(draw(panels))
            figs.append(
                f"<figure><h3>{escape(kind)}</h3>{svg}"
                f"<figcaption>{escape(CAPTIONS[kind])}</figcaption></figure>"
            )
        label = "test quantity" if kinds.get(members[0]) == "test_quantity" else "estimand"
        count = f"{len(members)} {label}s" if len(members) > 1 else label
        title = f"{escape(group)} <small>({count})</small>"
        sections.append(f"<h2>{title}</h2>{''.join(figs)}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    posterior = record["identity"].get("mode") == "posterior"
    kind = "Posterior SBC" if posterior else "Simulation-based calibration"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{"Posterior SBC" if posterior else "SBC"} report: {escape(scenario)}</title>
<style>{CSS}</style></head>
<body>
<h1>{kind}: {escape(scenario)}</h1>
<p class="sub ref">scenario <code>{escape(reference)}</code></p>
<p class="sub">{results["simulation"].nunique()} simulations, {len(names)} models,
report written {stamp}</p>
{mode_note(record)}
<h2>Verdict by model</h2>
<p>A model is <b>calibrated</b> when none of its estimands' or test quantities' ranks
departs from uniform: arviz-stats' pot_c test, Holm-adjusted over all of the model's
quantities at family-wise level {ALPHA}. A model more than half of whose fits raised is
<b>failed</b> (with the first error), not judged. Test quantities (the log-likelihood of the
simulated data, per group too, and other functions of parameters and data) catch errors
that leave every parameter's ranks uniform (Modrák et al. 2023). RMSE and interval width
are divided by the prior sd of each quantity and averaged (1 = no better than the prior).
Health columns give the share of fits affected: a fit is <b>healthy</b> when it has no
divergent transition and every estimand has rank-normalised R-hat &le; {RHAT_MAX} and bulk
and tail ESS &ge; {ESS_MIN:.0f} (Vehtari et al. 2021); an approximate fit
(<code>MODEL+METHOD</code>: ADVI, Laplace, Pathfinder; independent draws, so no R-hat or
ESS), when its optimiser converged and the Pareto k-hat of its importance ratios is at most
{KHAT_MAX} (Yao et al. 2018); shares are marked when fewer than
{100 * HEALTHY_MIN:.0f}% of fits are healthy or more than {100 * DIVERGENT_MAX:.0f}% diverge.
Cost: the sampler's seconds per fit, its seconds per 100 effective draws of the fit's worst
estimand (what a usable posterior costs), and gradient evaluations per draw (why: a model
that needs long trajectories is slow whatever the machine).</p>
{verdict_table(models, record)}
<details><summary>Every estimand</summary>
<p>p_ecdf: simultaneous ECDF test; p_pot: arviz-stats pot_c test; p_chi2: rank histogram;
p_holm: p_pot adjusted over the model's quantities (the verdict).
z: (posterior mean &minus; truth) / posterior
sd, whose sd is 1 for a calibrated model. contraction: 1 &minus; posterior / prior variance.</p>
{_frame_table(estimands)}
</details>
{strata_section(results, record, models, strata, strata_table)}
{health_section(results)}
{prediction_section(results, HELDOUT_REPLICATES)}
{"".join(sections)}
<h2>Run</h2>
{_run_info(record, results)}
</body></html>
"""


def write_report(
    out: str | os.PathLike[str],
    strata: int | None = None,
    *,
    results: pd.DataFrame | None = None,
    estimands: pd.DataFrame | None = None,
    strata_table: pd.DataFrame | None = None,
) -> Path:
    """Write ``out/report.html`` from the stored results of the run in ``out``.

    Parameters
    ----------
    out : path
        A run's output folder.
    strata : int, optional
        Number of equal-count strata of each data statistic; default the run's own (``sbc
        run --strata``, recorded in ``run.json``), else 3 (tertiles).
    results, estimands, strata_table : pandas.DataFrame, optional
        The stored results, their :func:`~sbc.results.calibration.estimand_table` and their
        :func:`~sbc.results.strata.strata_table`, when the caller already holds them (the end
        of a run); read and computed otherwise.

    Returns
    -------
    Path
        The report file.

    Raises
    ------
    sbc.results.store.StoreError
        If the folder holds no readable results.
    """
    store = RunStore(out)
    if results is None:
        results = store.results()  # first: a folder without a run says "no results"
    record = store.record()
    k = strata or int(record.get("strata", STRATA))
    text = render(results, record, k, estimands, strata_table)
    path = Path(out) / "report.html"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
