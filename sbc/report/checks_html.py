"""The index of a test session's failed calibration checks (``index.html``, ``failures.csv``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from sbc.report.html import CSS


def write_failure_index(
    root: str | os.PathLike[str], failures: Sequence[Any], repeats: Mapping[str, int]
) -> Path:
    """Write ``root/index.html`` and ``root/failures.csv`` listing ``failures``.

    Parameters
    ----------
    root : path
        The session's reports folder (links are relative to it where possible).
    failures : sequence of sbc.testing.session.Failure
        The failed assertions, in the order their tests ran.
    repeats : mapping of str to int
        Per test, how many earlier failing examples (hypothesis) preceded the one kept.

    Returns
    -------
    Path
        The index file.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in failures:
        target = f.report or f.folder
        rows.append(
            {
                "test": f.test or "",
                "scenario": f.scenario,
                "model": f.model,
                "headline": f.headline,
                "earlier_failing_examples": repeats.get(f.test or "", 0),
                "report": str(target),
                "message": f.message,
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(root / "failures.csv", index=False)
    body = []
    for row in rows:
        link = _relative(Path(row["report"]), root)
        body.append(
            f"<tr><td class=l>{escape(row['test'])}</td>"
            f"<td class=l><b>{escape(row['scenario'])}/{escape(row['model'])}</b></td>"
            f"<td class=l>{escape(row['headline'])}</td>"
            f"<td>{row['earlier_failing_examples']}</td>"
            f'<td class=l><a href="{escape(link, quote=True)}">report</a></td></tr>'
            f"<tr><td></td><td colspan=4 class=l><details><summary>message</summary>"
            f"<pre>{escape(row['message'])}</pre></details></td></tr>"
        )
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SBC: failed calibration checks</title>
<style>{CSS}</style></head><body>
<h1>Failed calibration checks</h1>
<p class="sub">{len(rows)} failed assertions of sbc.testing in this test session; each links
the report written for its failing check.</p>
<table><tr><th class=l>test</th><th class=l>scenario/model</th><th class=l>failure</th>
<th>earlier failing examples</th><th></th></tr>{"".join(body)}</table>
</body></html>
"""
    path = root / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.resolve().as_uri()
