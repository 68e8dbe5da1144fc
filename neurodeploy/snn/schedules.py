"""Surrogate slope schedules (adaptive-surrogate paper, Van den Berghe et al., NeurIPS 2025).

A schedule owns the current slope ``k``. The training loop calls ``step()`` once
per gradient update and ``observe_return(R)`` at the end of every episode, then
writes ``schedule.value`` into the actor's surrogates. ``state_dict`` /
``load_state_dict`` make it part of a checkpoint.

- ``fixed``     k never changes.
- ``interval``  k = min(k_max, k_start + increment * floor(updates / interval)).
- ``adaptive``  k follows an exponential moving average m of the normalised
                episode return r = clip((R - R_low) / (R_high - R_low), 0, 1):
                m <- (1 - beta) m + beta r ;  k = clamp(k_start + m (k_max - k_start), 1, 100).
                A policy that does badly trains with a shallow slope (large
                gradients in deep layers); as it improves the slope steepens
                towards the true gradient.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from neurodeploy.errors import ConfigError

SLOPE_MIN, SLOPE_MAX = 1.0, 100.0


@dataclass
class FixedSlope:
    k: float = 25.0

    @property
    def value(self) -> float:
        return self.k

    def step(self) -> None:
        pass

    def observe_return(self, episode_return: float) -> None:
        pass

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.k = float(state["k"])


@dataclass
class IntervalSlope:
    k_start: float = 2.0
    k_max: float = 100.0
    increment: float = 10.0
    interval: int = 10_000
    updates: int = 0

    @property
    def value(self) -> float:
        return min(self.k_max, self.k_start + self.increment * (self.updates // self.interval))

    def step(self) -> None:
        self.updates += 1

    def observe_return(self, episode_return: float) -> None:
        pass

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, val in state.items():
            setattr(self, key, type(getattr(self, key))(val))


@dataclass
class AdaptiveSlope:
    return_low: float
    return_high: float
    k_start: float = 2.0
    k_max: float = 100.0
    beta: float = 0.05
    average: float = 0.0

    @property
    def value(self) -> float:
        k = self.k_start + self.average * (self.k_max - self.k_start)
        return min(SLOPE_MAX, max(SLOPE_MIN, k))

    def step(self) -> None:
        pass

    def observe_return(self, episode_return: float) -> None:
        if not math.isfinite(episode_return):
            return
        r = (episode_return - self.return_low) / (self.return_high - self.return_low)
        r = min(1.0, max(0.0, r))
        self.average = (1.0 - self.beta) * self.average + self.beta * r

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, val in state.items():
            setattr(self, key, float(val))


SCHEDULES = {"fixed": FixedSlope, "interval": IntervalSlope, "adaptive": AdaptiveSlope}


def make_schedule(kind: str, **params) -> FixedSlope | IntervalSlope | AdaptiveSlope:
    """Build a schedule by name, e.g. ``make_schedule("interval", k_start=2, k_max=100)``."""
    if kind not in SCHEDULES:
        raise ConfigError(f"unknown slope schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
    state = {"updates", "average"} & set(params)  # counters a checkpoint restores
    if state:
        raise ConfigError(f"slope schedule {kind!r}: {', '.join(sorted(state))} is its state, "
                          "not a parameter")  # fmt: skip
    try:
        schedule = SCHEDULES[kind](**params)
    except TypeError as exc:
        raise ConfigError(f"slope schedule {kind!r}: {exc}") from None
    got = asdict(schedule)
    for name, value in got.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and math.isfinite(value)):
            raise ConfigError(f"slope schedule {kind!r}: {name} must be a number, not {value!r}")
    # a slope k <= 0 turns the surrogate's gradient over (arctan) or through a pole
    # (fast_sigmoid); the adaptive schedule clamps its k to [1, 100] itself
    slopes = {"fixed": ("k",), "interval": ("k_start", "k_max")}.get(kind, ())
    checks = [(f"{name} > 0", got[name] > 0) for name in slopes]
    if kind == "adaptive":
        checks += [
            ("return_high > return_low", got["return_high"] > got["return_low"]),
            ("0 < beta <= 1", 0 < got["beta"] <= 1),
        ]
    if kind == "interval":
        interval = got["interval"]
        checks += [
            ("a whole interval >= 1", interval >= 1 and interval == int(interval)),
            ("increment >= 0", got["increment"] >= 0),
        ]
    for rule, holds in checks:
        if not holds:
            raise ConfigError(f"{kind} slope schedule needs {rule} (got {params})")
    return schedule
