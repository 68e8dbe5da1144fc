"""The two ways a spiking core is clocked on Lava / Loihi 2 (docs/stateful.md, "timing model").

Every Lava ``Dense`` delivers its output one step after the spikes arrive, so in a
chain of L layers layer l (1-based) answers l steps after the input.

- **Per-action reset** (``state_reset = "every action"``): one action takes
  P = T + L Lava steps; each layer is reset just before its T-step window, so
  each layer sees the previous layer's spikes of *its own* step j. The delay is
  compensated by the windows and the torch actor needs no model of it.
- **Stateful** (``state_reset = "never"``): one action takes T Lava steps and
  nothing is reset between actions. Layer l at step t sees layer l-1's spikes
  of step t-1 (the encoder's for the first layer). The actor is trained with that
  delay (``ActorConfig.synaptic_delay``), so Lava runs exactly what was trained:
  every layer's spikes at step t are the torch actor's spikes at step t.
"""

from __future__ import annotations

import numpy as np


def delayed(trains: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """Spike trains [T, ...] one step late: ``first`` (zeros) at step 0, then x[0..T-2]."""
    head = np.zeros_like(trains[:1]) if first is None else first[None].astype(trains.dtype)
    return np.concatenate([head, trains[:-1]])


def lava_steps_per_action(timesteps: int, layers: int, stateful: bool) -> int:
    """Lava steps one action takes: T for a stateful core, T + L with the per-action reset
    (T steps of input, then one empty step per layer for the Dense delays). A bundle's
    manifest records the value (``schedule.lava_steps_per_action``); bench-energy reads it
    from there and sweep, which has no bundle, computes it here."""
    return timesteps if stateful else timesteps + layers
