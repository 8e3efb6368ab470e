"""The HTML report of a run: :mod:`sbc.report.figures` draws, :mod:`sbc.report.html` writes."""
