"""The detection report of ``sbc mutants``: which planted bugs SBC flags (HTML and CSV)."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import pandas as pd

from sbc.calibration import ALPHA
from sbc.report.html import CSS


def write_detection_report(
    out: str | os.PathLike[str], table: pd.DataFrame, descriptions: dict[str, str]
) -> Path:
    """Write ``out/mutants.csv`` and a self-contained ``out/mutants.html`` of ``table``."""
    out = Path(out)
    table.to_csv(out / "mutants.csv", index=False)
    rows = []
    for r in table.itertuples():
        expected = r.flagged == r.mutant
        verdict = "flagged" if r.flagged else "not flagged"
        first = "&ndash;" if pd.isna(r.first_flagged_at) else str(r.first_flagged_at)
        rows.append(
            f"<tr><td class=l><b>{escape(r.model)}</b><br><small>"
            f"{escape(descriptions.get(r.model, ''))}</small></td>"
            f"<td>{'mutant' if r.mutant else 'correct'}</td>"
            f'<td class="{"ok" if expected else "bad"}">{verdict}</td>'
            f"<td>{first}</td><td>{r.min_p_holm:.2g}</td>"
            f"<td class=l>{escape(r.revealed_by) or '&ndash;'}</td></tr>"
        )
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SBC mutant detection</title>
<style>{CSS}</style></head><body>
<h1>Does SBC catch the planted bugs?</h1>
<p>{int(table["simulations"].max())} simulations. A model is flagged when the Holm-adjusted
uniformity test (arviz-stats' pot_c) rejects uniform ranks for any estimand or test quantity at
family-wise level {ALPHA}. Green: the outcome SBC should give (mutants flagged, the correct
model not). "First flagged at" is the smallest number of simulations, checked in steps of
10, from which on the model stays flagged.</p>
<table><tr><th class=l>model</th><th>kind</th><th>verdict</th><th>first flagged at</th>
<th>min adjusted p</th><th class=l>revealed by</th></tr>{"".join(rows)}</table>
<p>Full results and per-model reports: <code>results.parquet</code>,
<a href="report.html">report.html</a>.</p>
</body></html>
"""
    path = out / "mutants.html"
    path.write_text(html, encoding="utf-8")
    return path
