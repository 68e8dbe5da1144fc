"""Plots people read: a sweep trial with one evaluation still shows up in curves.png."""

import numpy as np
from PIL import Image

from neurodeploy.sweep.report import TrialRun, plot_curves

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
