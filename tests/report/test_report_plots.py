"""The report's curves: as wide as the page shows them, with step ticks that never run together."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gankit.report import plots


def test_step_labels_are_short() -> None:
    assert [plots.step_label(x) for x in (0, 800, 1500, 12_000, 120_000, 2_500_000)] == [
        "0", "800", "1.5k", "12k", "120k", "2.5M"]


def _tick_boxes(fig) -> list:
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    return [t.get_window_extent() for t, loc in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
            if t.get_text() and lo <= loc <= hi]


@pytest.mark.parametrize("last", [60, 2_000, 130_000, 3_000_000])
def test_x_tick_labels_do_not_collide(last: int) -> None:
    # "80001000012000": long plain step numbers used to run into each other
    steps = np.linspace(last / 50, last, 50)
    fig = plots.draw_curves("What D believes", [("D(x)", (steps, np.full(50, 0.6)), plots.C_REAL),
                                                ("D(G(z))", (steps, np.full(50, 0.4)), plots.C_FAKE)])
    boxes = _tick_boxes(fig)
    assert 3 <= len(boxes) <= 9
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert a.x1 + 10 < b.x0, (a, b)  # at least 10 px apart
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert all(len(t) <= 5 for t in labels), labels


def test_curves_are_as_wide_as_the_page_shows_them() -> None:
    x, y = [10.0, 20.0, 30.0], [1.0, 2.0, 1.5]
    for png in (plots.plot_curves("g", [("g", (x, y), "k")], marks=[20.0]),
                plots.plot_curves("g", [("g", (x, y), "k")], log=True)):
        with Image.open(io.BytesIO(png)) as im:
            assert im.width == plots.PLOT_WIDTH_PX and 200 <= im.height <= 400


def test_log_axes_name_few_ticks() -> None:
    x = np.arange(1.0, 31.0)
    fig = plots.draw_curves("Gradient norms", [("|grad G|", (x, np.linspace(3, 20, 30)), "k")], log=True)
    fig.canvas.draw()
    named = [t.get_text() for t in fig.axes[0].get_yticklabels(minor=True) if t.get_text()]
    assert set(named) <= {"2", "5", "20", "50", "0.2", "0.5"}, named
