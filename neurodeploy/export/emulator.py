"""Bit-accurate numpy emulator of the fixed-point network (Lava ``fixed_pt`` LIF + Dense).

Batched over observations. Per-action reset: every layer starts from zero state
and runs T steps; layer l at its step j sees layer l-1's spikes of step j (on
Lava the same happens L steps later per layer, and each layer is reset just
before its window). Stateful: the state carries over and each layer sees the
previous layer's spikes one step late, as on Lava (``neurodeploy.export.timing``).
Tests check both spike for spike against Lava.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.export.loihi2 import FixedLayer
from neurodeploy.export.timing import delayed

UV_MAX = 2**23


def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> 12)


def _exact_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Integer ``x @ w`` (int64). A float64 (BLAS) product is exact while every partial sum
    stays below 2**53, which max|x| * max column sum of |w| bounds; it is many times faster
    than numpy's integer matmul. Past the bound, the integer matmul."""
    xf = x.astype(np.float64)
    bound = float(np.abs(xf).max(initial=0)) * float(np.abs(w).sum(axis=0).max(initial=0))
    if bound < 2**53:
        return (xf @ w.astype(np.float64)).astype(np.int64)
    return x.astype(np.int64) @ w


def lif_layer(fixed: FixedLayer, spikes_in: np.ndarray, state=None):
    """spikes_in [T, B, in] (0/1) -> spikes [T, B, out] (0/1) and the final (u, v).

    ``state`` None starts from zero.
    """
    # every step's synaptic input at once (the input trains are known in full): one matmul
    return lif_dynamics(fixed, _exact_matmul(spikes_in, fixed.weight.T.astype(np.int64)), state)


def lif_dynamics(fixed: FixedLayer, synaptic: np.ndarray, state=None):
    """The neurons alone: ``synaptic`` [T, B, out], the integer product input @ weight.T
    (before the weight exponent) -> spikes [T, B, out] (0/1) and the final (u, v)."""
    T, B = synaptic.shape[:2]
    bias = fixed.effective_bias().astype(np.int64)
    if state is None:
        state = (np.zeros((B, fixed.size), np.int64), np.zeros((B, fixed.size), np.int64))
    u, v = (x.copy() for x in state)
    out = np.zeros((T, B, fixed.size), np.int8)
    vth = fixed.vth << 6
    a_all = np.asarray(synaptic, np.int64)
    exp = fixed.weight_exp
    a_all = (a_all << exp if exp >= 0 else a_all >> -exp) << 6
    for t in range(T):
        u = _decay(u, 4096 - (fixed.du + 1)) + a_all[t]
        u = np.where(u > UV_MAX, u - 2 * UV_MAX, u)
        u = np.where(u <= -UV_MAX, u + 2 * UV_MAX, u)
        v = np.clip(_decay(v, 4096 - fixed.dv) + u + bias, -UV_MAX + 1, UV_MAX - 1)
        s = v > vth
        v[s] = 0
        out[t] = s
    return out, (u, v)


def run(layers: list[FixedLayer], spikes_in: np.ndarray, stateful: bool = False) -> list:
    """Spike trains of every layer, [T, B, n] each, for input spike trains [T, B, n_in].

    ``stateful``: one continuous run from zero state with Lava's one-step delay per layer.
    """
    return Emulator(layers, stateful).step(spikes_in)


def empty_steps(layers: list[FixedLayer], spikes_in: np.ndarray, steps: int) -> list:
    """Per-action reset on Lava: after its T-step window each layer runs ``steps`` more Lava
    steps (the schedule's empty steps) until its reset, driven by its bias and by the
    previous layer's spikes there, the input being zero. Its spike trains there, [steps, B,
    n] per layer: they leave the action unchanged but cost the chip synaptic operations.
    Equal to Lava ``fixed_pt`` spike for spike (``benchmarks/window_activity.py``)."""
    T = spikes_in.shape[0]
    x = np.concatenate([spikes_in, np.zeros((steps, *spikes_in.shape[1:]), spikes_in.dtype)])
    trains = []
    for fixed in layers:
        x, _ = lif_layer(fixed, x)
        trains.append(x[T:])
    return trains


class Emulator:
    """The emulator as a closed-loop core: ``step`` one action at a time, ``reset`` per episode."""

    def __init__(self, layers: list[FixedLayer], stateful: bool):
        self.layers, self.stateful = layers, stateful
        self.reset()

    def reset(self) -> None:
        self.states = [None] * len(self.layers)
        self.frames = [None] * len(self.layers)  # last input frame per layer (stateful)

    def step(self, spikes_in: np.ndarray) -> list[np.ndarray]:
        """Input spike trains [T, B, n_in] -> every layer's spike trains [T, B, n]."""
        trains, x = [], spikes_in
        for i, fixed in enumerate(self.layers):
            if self.stateful:
                x, self.frames[i] = delayed(x, self.frames[i]), x[-1]
                x, self.states[i] = lif_layer(fixed, x, self.states[i])
            else:
                x, _ = lif_layer(fixed, x)
            trains.append(x)
        return trains

    def close(self) -> None:
        """Nothing to release (the Lava cores stop their runtime here)."""
