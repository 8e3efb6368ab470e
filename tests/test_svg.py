"""sbc.report.svg: the one SVG writer of every page (axes, marks, legend)."""

import re

import numpy as np

from sbc.report import svg


def test_log_axis_places_decades_evenly_and_labels_them():
    """On a log x axis 1, 10, 100 are equally spaced ticks; non-positive values are dropped."""
    panel = svg.Panel(xscale="log")
    panel.line([1, 10, 100, 0], [0, 1, 2, 3])
    text = svg.Row([panel]).to_svg()
    ticks = [
        float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">1', text)
    ]
    assert len(ticks) == 3 and np.isclose(ticks[1] - ticks[0], ticks[2] - ticks[1], atol=0.2)


def test_dashed_lines_reference_lines_and_given_ticks():
    """Dashes, vertical lines and given x ticks are drawn; a dashed series' legend is dashed."""
    panel = svg.Panel(xticks=(2.0, 4.0, 8.0))
    panel.line([2, 8], [0, 1], "red", 1.0, "a", dash="4 3")
    panel.line([2, 8], [1, 0], "blue", 1.0, "b")
    panel.vline(4.0)
    text = svg.Row([panel]).to_svg()
    assert text.count('stroke-dasharray="4 3"') == 2  # the line and its legend swatch
    assert ">8</text>" in text and ">4</text>" in text
    assert "V" in text.split("</g>")[0]  # the vertical line's path


def test_log_ticks_fall_back_to_one_two_five_within_a_decade():
    """A range inside one decade gets 1-2-5 ticks, not a single power of ten."""
    np.testing.assert_allclose(svg.log_ticks(1.5, 9), [2, 5])
    np.testing.assert_allclose(svg.log_ticks(0.5, 200), [1, 10, 100])
