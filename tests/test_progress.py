"""Training progress for logs: plain lines when stderr is not a terminal, ETA without the
random-action phase."""

import io
import time

from test_train import tiny_config

from neurodeploy.train.loop import train
from neurodeploy.train.progress import ProgressLines, format_duration


def seconds(duration: str) -> int:
    minutes, _, rest = duration.rpartition("m")
    return 60 * int(minutes or 0) + int(rest.rstrip("s"))


def test_lines_come_every_interval_and_the_eta_skips_the_random_phase():
    out = io.StringIO()
    with ProgressLines(1000, learn_from=600, step=0, interval=0.1, stream=out) as lines:
        lines.update(600, float("nan"))  # the random phase: instant
        for step in range(601, 651):  # learning: 50 steps in over 0.5 s, under 100 steps/s
            time.sleep(0.01)
            lines.update(step, -750.0)
    printed = out.getvalue().splitlines()
    assert len(printed) >= 3  # intervals passed, and the closing line
    assert all(line.startswith("train: step ") for line in printed)
    eta = [line.split("ETA ")[1] for line in printed if "last eval -750.0, ETA" in line]
    # 350 steps left at under 100 steps/s; with the random phase counted it would say 0s
    assert eta and seconds(eta[-1]) >= 3, printed
    assert printed[-1].startswith("train: step 650/1,000 (65%), ")


def test_disabled_prints_nothing():
    out = io.StringIO()
    with ProgressLines(10, 0, 0, enabled=False, interval=0.01, stream=out) as lines:
        time.sleep(0.05)
        lines.update(10, 1.0)
    assert out.getvalue() == ""


def test_durations_read_well():
    assert [format_duration(s) for s in (5, 75, 3 * 3600 + 125)] == ["5s", "1m15s", "3h02m"]


def test_training_without_a_terminal_prints_progress_lines(tmp_path, capsys):
    train(tiny_config(steps=350, start_steps=300), tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert "train: step 350/350 (100%)" in err and "finished" in err
