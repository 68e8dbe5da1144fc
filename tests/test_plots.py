"""Plots people read: a sweep trial with one evaluation still shows up in curves.png."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurodeploy.sweep.report import TrialRun, plot_curves

RESULTS = Path(__file__).resolve().parent.parent / "results"
LINE = np.array([31, 119, 180])  # matplotlib's first colour, C0


def line_pixels(png) -> int:
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(image - LINE).sum(axis=-1) < 30).sum())


def curves(tmp_path, steps, returns):
    point = {"neuron": "lif"}
    report = {"recipe": "pendulum", "sweep": str(tmp_path), "groups": [{"point": point}]}
    runs = [TrialRun("t0", point, 0, steps, returns, True, {})]
    path = tmp_path / f"curves-{len(steps)}.png"
    plot_curves(report, runs, path)
    return path


def test_one_evaluation_is_drawn_as_a_marker(tmp_path):
    one = curves(tmp_path, [1000], [-500.0])
    two = curves(tmp_path, [1000, 2000], [-500.0, -300.0])
    # the legend's swatch alone is about 50 pixels of C0; without the marker that was all
    assert line_pixels(one) > 100
    assert line_pixels(two) > 100


def test_pareto_legends_sit_beside_the_panels_not_over_them():
    import matplotlib.pyplot as plt

    from neurodeploy.sweep.pareto import pareto_figure

    pareto = json.loads((RESULTS / "pendulum-pareto" / "report.json").read_text())["pareto"]
    fig = pareto_figure(pareto)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1  # one environment: one legend, for every profile's panel
    box = legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()
    labels = [t.get_text() for t in legends[0].get_texts()]
    assert len(labels) == len(pareto["groups"]) + 1  # every grid point and the ANN line
    plt.close(fig)

    # a line the last panel does not draw (a profile without an ANN figure) is still listed
    for ref in pareto["ann_reference"]:
        ref["nj"][pareto["profiles"][-1]] = None
    fig = pareto_figure(pareto)
    (legend,) = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert [t.get_text() for t in legend.get_texts()] == labels
    plt.close(fig)


def test_a_narrow_log_axis_is_widened_and_labelled_at_1_2_5():
    import matplotlib.pyplot as plt

    from neurodeploy.sweep.pareto import log_axis

    fig, ax = plt.subplots()
    ax.scatter([430, 470], [1, 2])  # one point near the ANN line: a span of ~1.1x
    log_axis(ax)
    lo, hi = ax.get_xlim()
    assert hi / lo == pytest.approx(6.25)
    fig.canvas.draw()
    shown = [t for t, v in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True) if lo <= v <= hi]
    values = [float(v) for v in ax.get_xticks() if lo <= v <= hi]
    assert len(values) >= 2
    for v in values:  # 1, 2 or 5 times a power of ten
        mantissa = v / 10 ** np.floor(np.log10(v))
        assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9, v
    assert all(t.get_text() for t in shown)  # each labelled
    assert not any(t.get_text() for t in ax.get_xminorticklabels())
    plt.close(fig)

    # beyond two decades, the powers of ten alone (1-2-5 labels would run together)
    fig, ax = plt.subplots()
    ax.scatter([0.1, 300], [1, 2])
    log_axis(ax)
    lo, hi = ax.get_xlim()
    values = [float(v) for v in ax.get_xticks() if lo <= v <= hi]
    assert values == pytest.approx([0.1, 1, 10, 100])
    plt.close(fig)
