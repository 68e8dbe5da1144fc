"""Progress for logs: when stderr is not a terminal (nohup, CI), the training loop prints
one plain line every ``interval`` seconds instead of a progress bar.

    train: step 12,000/100,000 (12%), 85.3 steps/s, last eval -432.1, ETA 17m12s

Steps/s is the rate since the previous line. The ETA uses the rate of the learning phase
only: the random-action steps before ``learn_from`` run many times faster, and counting
them would promise an early finish. A background thread prints, so a line comes even
while an evaluation runs.
"""

from __future__ import annotations

import math
import sys
import threading
import time


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class ProgressLines:
    """A context manager; call :meth:`update` every step. Prints nothing when disabled."""

    def __init__(
        self,
        total: int,
        learn_from: int,
        step: int,
        enabled: bool = True,
        interval: float = 30.0,
        stream=None,
    ):
        self.total, self.learn_from, self.enabled = total, learn_from, enabled
        self.interval, self.stream = interval, stream
        self.step, self.last_eval = step, math.nan
        self.line_time, self.line_step = time.perf_counter(), step
        self.learn_start: tuple[float, int] | None = None
        if step >= learn_from:
            self.learn_start = (self.line_time, step)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._every_interval, daemon=True)

    def update(self, step: int, last_eval: float) -> None:
        self.step, self.last_eval = step, last_eval
        if self.learn_start is None and step >= self.learn_from:
            self.learn_start = (time.perf_counter(), step)

    def line(self) -> str:
        """The progress line now; resets the steps/s window."""
        now, step = time.perf_counter(), self.step
        sps = (step - self.line_step) / max(now - self.line_time, 1e-9)
        self.line_time, self.line_step = now, step
        eta = "ETA after the random-action phase"
        if self.learn_start is not None and step > self.learn_start[1]:
            rate = (step - self.learn_start[1]) / max(now - self.learn_start[0], 1e-9)
            eta = f"ETA {format_duration((self.total - step) / rate)}"
        if step >= self.total:
            eta = "finished"
        return (
            f"train: step {step:,}/{self.total:,} ({100 * step / max(self.total, 1):.0f}%), "
            f"{sps:.1f} steps/s, last eval {self.last_eval:.1f}, {eta}"
        )

    def _print(self) -> None:
        with self._lock:
            print(self.line(), file=self.stream or sys.stderr, flush=True)

    def _every_interval(self) -> None:
        while not self._stop.wait(self.interval):
            self._print()

    def __enter__(self) -> ProgressLines:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            if exc[0] is None:
                self._print()
