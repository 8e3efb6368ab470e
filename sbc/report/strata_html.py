"""Report sections: calibration by data stratum, by sampler health, and the run's mode.

Written from the stored results and ``run.json`` alone, like the rest of the report
(:mod:`sbc.report.html` places these sections).
"""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from sbc.report import figures
from sbc.report.strata_figures import split_panels
from sbc.results.calibration import ALPHA, KHAT_MAX, RHAT_MAX
from sbc.results.strata import (
    health_panels,
    health_table,
    strata_panels,
    strata_table,
    stratified_verdict,
)
from sbc.stats.strata import STRATA


def _p(value: float) -> str:
    return "&ndash;" if value != value else f"{value:.2g}"


def _verdict_cell(ok: Any) -> str:
    if ok is None or ok != ok:
        return "<td>&ndash;</td>"
    return '<td class="ok">yes</td>' if ok else '<td class="bad">no</td>'


def _figure(panels: list[dict], caption: str) -> str:
    svg = figures.to_svg(split_panels(panels))
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def strata_section(
    results: pd.DataFrame,
    record: dict[str, Any],
    marginal: pd.DataFrame,
    k: int = STRATA,
    table: pd.DataFrame | None = None,
) -> str:
    """HTML of the calibration-by-data-stratum section (empty note for runs without statistics).

    Parameters
    ----------
    results : pandas.DataFrame
        The run's results.
    record : dict
        Its ``run.json`` (data statistic descriptions under ``data_statistics``).
    marginal : pandas.DataFrame
        The marginal verdict (:func:`sbc.results.calibration.model_table`), shown beside.
    k : int
        Number of strata per statistic.
    table : pandas.DataFrame, optional
        The results' :func:`~sbc.results.strata.strata_table` with ``k`` strata, if computed.
    """
    head = "<h2>Calibration by data stratum</h2>"
    strata = strata_table(results, k) if table is None else table
    names = list(dict.fromkeys(strata["statistic"]))
    if not names:
        return (
            f"{head}<p>This run stored no data statistics (the scenario declares none, they are "
            "undefined for its design, or the run was made before sbc stored them), so it "
            "cannot be split by the data.</p>"
        )
    verdict = stratified_verdict(strata).set_index("model")
    described = record.get("data_statistics", {})
    items = "".join(
        f"<li><b>{escape(n)}</b>: {escape(described.get(n, 'a function of the data'))}</li>"
        for n in names
    )
    rows = []
    for m in marginal.itertuples():
        v = verdict.loc[m.model] if m.model in verdict.index else None
        worst = escape(v["stratified_worst"]) if v is not None else ""
        rows.append(
            f"<tr><td class=l><b>{escape(m.model)}</b></td>{_verdict_cell(m.calibrated)}"
            f"<td>{_p(m.min_p_holm)}</td>"
            f"{_verdict_cell(v['stratified_calibrated'] if v is not None else None)}"
            f"<td>{_p(v['stratified_min_p_holm']) if v is not None else '&ndash;'}</td>"
            f"<td class=l>{worst or '&ndash;'}</td></tr>"
        )
    table = (
        "<table><tr><th class=l>model</th><th>calibrated<br>(marginal)</th><th>min p</th>"
        "<th>calibrated<br>in every stratum</th><th>min p</th><th class=l>flagged strata "
        "(quantity in statistic stratum, Holm-adjusted p)</th></tr>"
        f"{''.join(rows)}</table>"
    )
    coverage = _coverage_table(strata, k)
    figs = []
    flagged = set(verdict.index[verdict["stratified_calibrated"].eq(False)])
    for model in marginal["model"]:
        inner = "".join(
            _figure(
                strata_panels(results, model, name, k),
                f"{model}: ranks and coverage of the simulations in each {name} stratum.",
            )
            for name in names
        )
        state = " open" if model in flagged else ""
        figs.append(f"<details{state}><summary>{escape(model)}</summary>{inner}</details>")
    return f"""{head}
<p>For a correct model and exact inference the ranks are uniform not only over all
simulations but also conditionally on the data, so within any stratum of a function of the
simulated data. Each simulation's data statistics are split into {k} equal-count strata
(cut at quantiles over the run's simulations) and the ranks of every quantity are tested in
each stratum; a model is <b>calibrated in every stratum</b> when no Holm-adjusted p-value
(over all of its quantities, statistics and strata) is below {ALPHA}. Where the marginal
verdict averages over the data sets, this finds a model that fails in one part of the data
space only. (Splitting by the <i>true parameter values</i> instead would not be valid: a
truth in the prior's tail tends to lie beyond its posterior, which shrinks towards the
prior, so its ranks are not uniform even for a correct model.) Statistics:</p>
<ul>{items}</ul>
{table}
<details><summary>Coverage and uniformity by stratum</summary>{coverage}</details>
<p>Per model, one column per stratum: the ECDF difference of every quantity (the four that
stray furthest in colour, the range of the others in grey; the shaded band is the 99%
simultaneous band for the stratum's size) and the coverage of central intervals of each
group of estimands.
Models flagged in some stratum are open.</p>
{"".join(figs)}
"""


def _coverage_table(strata: pd.DataFrame, k: int) -> str:
    """Per (model, statistic, stratum): fits, 90% coverage of the estimands, min adjusted p."""
    params = strata[strata["kind"] == "estimand"]
    grouped = params.groupby(["model", "statistic", "stratum"], sort=False)
    summary = grouped.agg(
        lower=("lower", "first"),
        upper=("upper", "first"),
        n=("n", "max"),
        coverage90=("coverage90", "mean"),
    )
    summary["min_p_holm"] = strata.groupby(["model", "statistic", "stratum"], sort=False)[
        "p_holm"
    ].min()
    rows = "".join(
        f"<tr><td class=l>{escape(str(m))}</td><td class=l>{escape(str(s))}</td><td>{st}</td>"
        f"<td>{r.lower:.3g} to {r.upper:.3g}</td><td>{r.n:.0f}</td><td>{r.coverage90:.2f}</td>"
        f"<td>{_p(r.min_p_holm)}</td></tr>"
        for (m, s, st), r in summary.iterrows()
    )
    return (
        "<table><tr><th class=l>model</th><th class=l>statistic</th><th>stratum</th>"
        "<th>range</th><th>fits</th><th>coverage 90%<br>(mean over estimands)</th>"
        f"<th>min Holm p</th></tr>{rows}</table>"
    )


def health_section(results: pd.DataFrame) -> str:
    """HTML of the sampler-health split: all fits, healthy ones, unhealthy ones."""
    table = health_table(results)
    if table.empty:
        return ""
    stats = [c for c in table if c.startswith("median_")]
    head = "".join(f"<th>{escape(c.replace('_', ' ', 1))}</th>" for c in stats)
    rows = []
    for r in table.itertuples(index=False):
        row = r._asdict()
        cells = "".join(f"<td>{row[c]:.3g}</td>" for c in stats)
        rows.append(
            f"<tr><td class=l><b>{escape(r.model)}</b></td><td class=l>{r.subset}</td>"
            f"<td>{r.fits}</td><td>{100 * r.share:.0f}%</td>{_verdict_cell(r.calibrated)}"
            f"<td>{_p(r.min_p_holm)}</td><td>{r.coverage90:.2f}</td><td>{r.z_sd:.2f}</td>"
            f"{cells}</tr>"
        )
    split = table[table["subset"] != "all"].groupby("model", sort=False)["fits"].min()
    figs = "".join(  # only where both subsets hold fits: otherwise the table says it all
        f"<details><summary>{escape(model)}</summary>"
        + _figure(health_panels(results, model), f"{model}: ranks and coverage by sampler health.")
        + "</details>"
        for model in split.index[split >= 2]
    )
    return f"""<h2>Calibration by sampler health</h2>
<p>A fit is <b>unhealthy</b> when it has a divergent transition or an R-hat above
{RHAT_MAX}; an approximate fit (<code>MODEL+METHOD</code>), when the Pareto k-hat of its
importance ratios is above {KHAT_MAX} or its optimiser did not converge (Yao et al. 2018:
does a high k-hat predict the miscalibration?). Discarding such fits before checking
calibration is a common habit; the table shows what it does: the verdict on the healthy
fits alone, on the unhealthy ones, and (median of each data statistic) which data sets the
discarded fits came from. For exact,
independent draws the split is nearly harmless (R-hat then exceeds 1.01 by chance only);
with a real sampler, health depends on the data, so discarding fits removes the data sets
where the sampler struggles (for a centred hierarchical model, those that call for strong
pooling): the verdict on the healthy fits no longer speaks for them, and the unhealthy
fits' own ranks show whether a sampler failure there biased the estimates.</p>
<table><tr><th class=l>model</th><th class=l>fits</th><th>n</th><th>share</th>
<th>calibrated</th><th>min Holm p</th><th>coverage 90%</th><th>z sd</th>{head}</tr>
{"".join(rows)}</table>
{figs}
"""


def mode_note(record: dict[str, Any]) -> str:
    """A paragraph saying which SBC this run is (posterior SBC: its reference fit)."""
    identity = record["identity"]
    if identity.get("mode") != "posterior":
        return (
            "<p><b>Prior SBC</b>: each simulation draws its parameters from the prior and "
            "simulates a data set from them.</p>"
        )
    info = record.get("reference_fit", {})
    reference = identity.get("reference", {})
    fit = (
        f"{info.get('chains', '?')} chains x {info.get('draws', '?')} draws, thinned by "
        f"{info.get('thin', '?')} to {info.get('size', '?')} draws, "
        f"{info.get('divergences', '?')} divergences, max R-hat "
        f"{info.get('max_rhat', float('nan')):.3f}"
    )
    warn = ""
    if info.get("divergences", 0) or info.get("max_rhat", 1.0) > RHAT_MAX:
        warn = (
            ' <span class="warn">The reference fit is not healthy: its draws may not be '
            "posterior draws, which would show as miscalibration of every model.</span>"
        )
    return (
        "<p><b>Posterior SBC</b> (Säilynoja et al. 2025): each simulation draws its "
        f"parameters from the posterior of the reference model "
        f"<b>{escape(str(reference.get('model', info.get('model', '?'))))}</b> given the "
        "scenario's real data, simulates a new data set from them, and refits every model "
        "on the real data joined with the new one; ranks are then uniform for a model that "
        "is calibrated near the real data. Reference fit: "
        f"{escape(fit)}.{warn}</p>"
    )
