"""The text of ``sbc mutants`` and ``sbc list --mutants``: what a run shows, what to do.

:func:`recommendation` turns an :class:`sbc.results.detection.Analysis` into the sentences printed
on the command line and shown at the top of ``mutants.html``: the mutation score, the
escapes and the number of simulations each would need, and how that number is projected.
:func:`listing` lists the mutants of a :class:`sbc.results.detection.Plan`.
"""

from __future__ import annotations

import numpy as np

from sbc.results.detection import POWER, PROJECTED_UP_TO, Analysis, Plan, score_curve, scores


def listing(chosen: Plan) -> list[str]:
    """Lines of ``sbc list SCENARIO --mutants``: every mutant of the plan and what it does."""
    lines = []
    catalogue = chosen.catalogue
    for base in catalogue.loc[catalogue["role"] == "correct", "model"]:
        mine = catalogue[(catalogue["role"] == "generated") & (catalogue["base"] == base)]
        lines.append(f"  generated mutants of {base} ({len(mine)}; run by sbc mutants):")
        if base in chosen.reasons:
            lines.append(f"    ({base} is mutated as {chosen.reasons[base]})")
        width = max((len(m) for m in mine["model"]), default=0) + 2
        for r in mine.itertuples():
            note = f"  [equivalent: {r.equivalent}]" if r.equivalent else ""
            lines.append(f"    {r.model:<{width}}{r.description}{note}")
        skipped = chosen.skipped.get(base) or {}
        if skipped:
            names = ", ".join(f"{v} ({d})" for v, d in skipped.items())
            lines.append(f"    not mutated: {names}")
    return lines


def _n(value: float, n: int = 0) -> str:
    """A number of simulations for a sentence, to two significant digits.

    Past the projection's end (``inf``): "more than" its limit for a run of ``n``.
    """
    if not np.isfinite(value):
        return f"more than {PROJECTED_UP_TO * n}" if n else "no finite number"
    rounded = float(f"{value:.2g}")
    return f"{max(int(rounded), 1)}"


def recommendation(analysis: Analysis) -> list[str]:
    """What the run shows and what to do, in a few sentences (printed and in the report)."""
    table, n = analysis.table, analysis.simulations
    lines = []
    for r in table[table["role"] == "correct"].itertuples():
        if r.flagged:
            lines.append(
                f"The correct model {r.model} is itself flagged (adjusted p = "
                f"{r.min_p_holm:.2g}, by {r.revealed_by}): fix it first; the scores below "
                "say nothing about power."
            )
    for s in scores(table).itertuples():
        kind = "generated" if s.role == "generated" else "hand-written"
        if not s.counted:
            continue
        line = (
            f"With N = {n}, {s.flagged} of {s.counted} {kind} mutants are flagged "
            f"(mutation score {s.score:.0%}; with estimands alone {s.flagged_estimands_only} "
            f"of {s.counted}, {s.score_estimands_only:.0%})"
        )
        extra = [
            f"{s.equivalent} equivalent" if s.equivalent else "",
            f"{s.failed} whose fits all failed" if s.failed else "",
        ]
        extra = [e for e in extra if e]
        lines.append(line + (f"; left out: {' and '.join(extra)}." if extra else "."))
    curve = score_curve(analysis).dropna()
    if len(curve) and (table["status"] == "escaped").any():
        shown = ", ".join(
            f"{int(m)}: {v:.0%}" for m, v in zip(curve["simulations"], curve["score"], strict=True)
        )
        lines.append(f"Expected mutation score (generated) against N: {shown}.")
    escapes = table[table["status"] == "escaped"].sort_values("needed")
    seen = escapes[escapes["departure"].str.startswith("visible")]
    unseen = escapes[~escapes["departure"].str.startswith("visible")]
    if len(seen):
        named = "; ".join(
            (
                f"{r.model} needs about N = {_n(r.needed)} "
                f"(90% interval {_n(r.needed_low)} to {_n(r.needed_high, n)})"
                if np.isfinite(r.needed)
                else f"{r.model} needs {_n(r.needed, n)} (at least {_n(r.needed_low, n)})"
            )
            for r in seen.itertuples()
        )
        lines.append(f"Escapes that depart from the correct model: {named}.")
        worst = float(seen["needed"].max())
        if np.isfinite(worst):
            lines.append(
                f"To flag each of them with {POWER:.0%} probability, run about N = {_n(worst)} "
                "simulations."
            )
    if len(unseen):
        named = "; ".join(
            f"{r.model} (if it departs at all, it needs N = {_n(r.needed_low, n)} or more)"
            for r in unseen.itertuples()
        )
        lines.append(
            f"Escapes whose ranks do not depart visibly from the correct model's on the same "
            f"{n} data sets, so practically undetectable by SBC (e.g. a prior change the data "
            f"overrule): {named}."
        )
    dropped = escapes[escapes["operator"] == "drop_likelihood"]
    if len(dropped) and "loglik" not in analysis.reveals.columns:
        lines.append(
            f"{', '.join(dropped['model'])} cannot be caught by these quantities: without the "
            "likelihood the posterior is the prior, whose ranks are exactly uniform. Declare "
            "the scenario's likelihood (Scenario(likelihood=...)) to rank the log-likelihood "
            "as a test quantity."
        )
    if len(escapes):
        lines.append(
            "How N is projected: each escape's ranks are compared with its correct model's on "
            "the same data sets (probit scale: shift and excess second moment, the shared "
            "sampling noise cancelling), and the power of the same Holm-adjusted pot_c test "
            "under that departure is simulated for larger N; the interval moves the departure "
            "by 1.645 standard errors."
        )
    elif len(table[table["status"] == "flagged"]):
        lines.append(f"Every non-equivalent mutant is flagged with N = {n}.")
    return lines
